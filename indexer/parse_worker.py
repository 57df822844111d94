"""Parsing in a separate process with a time limit and a memory limit.

File parsers are large C libraries fed with whatever lies in a folder. One that loops, eats memory
or crashes must cost that file only: the indexer hands each file's bytes to a long-lived child
process (``python -m indexer.parse_worker``) and waits at most ``timeout`` seconds for its answer.
The child caps its own address space (``RLIMIT_AS``) before it parses anything. A child that runs
late is killed, one that dies is replaced, and the file is reported with the reason.

The child speaks over its stdin and stdout in length-prefixed frames: the parent sends the file's
path (as bytes) and its content; the child answers with one JSON object (its documents, or why
there are none). JSON, not pickle, so a child subverted by a malicious file cannot run code in
the indexer. While it reads a long scan by OCR it sends a short frame after each page: the time
limit is for a file that makes no progress, not for one with many pages.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO

from indexer.loaders import LoadedText, load_file
from indexer.ocr import OcrOptions, configure
from searchapp.errors import (
    InvalidOptionError,
    NotADocument,
    SearchappError,
    UnreadableFileError,
)

_HEADER = struct.Struct(">Q")
_EXIT_OUT_OF_MEMORY = 86
_READY = b"ready"
_PAGE_DONE = b"page"
_PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _write_frame(stream: BinaryIO, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)))
    stream.write(payload)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame's payload, or None at end of stream."""
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    return _read_exactly(stream, size) if size else b""


class ParseWorker:
    """Parses files in a child process; ``parse`` raises like ``load_file`` does.

    Example::

        with ParseWorker(timeout=60, memory_mb=2048) as worker:
            loaded = worker.parse(path, path.read_bytes())
    """

    def __init__(
        self, *, timeout: float = 60.0, memory_mb: int = 2048, ocr: OcrOptions | None = None
    ) -> None:
        if timeout <= 0 or memory_mb <= 0:
            raise InvalidOptionError("The parse timeout and memory limit must be positive.")
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.ocr = ocr or OcrOptions()
        self._process: subprocess.Popen[bytes] | None = None
        self._replies: queue.Queue[bytes | None] = queue.Queue()

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def parse(self, path: Path, data: bytes) -> list[LoadedText]:
        """The file's documents (most files hold one; a mailbox one per message)."""
        process = self._running()
        assert process.stdin is not None
        try:
            _write_frame(process.stdin, os.fsencode(path))
            _write_frame(process.stdin, data)
            process.stdin.flush()
        except BrokenPipeError:
            raise UnreadableFileError(self._death_reason()) from None
        reply = _PAGE_DONE
        while reply == _PAGE_DONE:  # each page OCRed restarts the clock
            try:
                reply = self._replies.get(timeout=self.timeout)
            except queue.Empty:
                self._stop()
                raise UnreadableFileError(
                    f"parser did not finish within {self.timeout:g} s (nor read a page by OCR "
                    "meanwhile) and was stopped "
                    "(the file may be malformed; a larger --parse-timeout allows more time)"
                ) from None
        if reply is None:
            raise UnreadableFileError(self._death_reason())
        try:
            answer = json.loads(reply)
            if answer["ok"]:
                return [LoadedText.from_json(document) for document in answer["documents"]]
            kind, reason = answer["kind"], str(answer["reason"])
        except (ValueError, KeyError, TypeError):
            self._stop()
            raise UnreadableFileError("the parsing process answered nonsense; stopped") from None
        if kind == "not-a-document":
            raise NotADocument(reason)
        raise UnreadableFileError(reason)

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        try:
            process.stdin.close()  # the child exits at end of input
            process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            _kill(process)

    def _running(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self._process.poll() is None:
            return self._process
        env = dict(os.environ)  # importable from a checkout too, after the installed packages
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (env.get("PYTHONPATH"), str(_PROJECT_ROOT)) if p
        )
        # -P: the folder being indexed (the working directory) must never shadow a module.
        command = [sys.executable, "-P", "-m", "indexer.parse_worker",
                   "--memory-mb", str(self.memory_mb), "--parent", str(os.getpid()),
                   "--ocr-lang", self.ocr.lang]  # fmt: skip
        if not self.ocr.enabled:
            command.append("--no-ocr")
        if self.ocr.cache_dir is not None:
            command += ["--ocr-cache", os.fspath(self.ocr.cache_dir)]
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
            start_new_session=os.name == "posix",  # its own group: a kill takes its children too
        )  # fmt: skip
        self._process = process
        self._replies = queue.Queue()
        threading.Thread(target=self._pump, args=(process.stdout, self._replies),
                         daemon=True).start()  # fmt: skip
        try:  # it says "ready" once its imports are done, so that they do not eat the time limit
            ready = self._replies.get(timeout=max(60.0, self.timeout))
        except queue.Empty:
            ready = None
        if ready != _READY:
            self._stop()
            raise SearchappError(
                "The file-parsing process did not start (see the messages above); "
                f"check that `{sys.executable} -m indexer.parse_worker --help` runs."
            )
        return process

    @staticmethod
    def _pump(stream: BinaryIO, replies: queue.Queue[bytes | None]) -> None:
        """Move the child's answers into ``replies``; None marks its end."""
        try:
            while (frame := _read_frame(stream)) is not None:
                replies.put(frame)
        except (OSError, ValueError, MemoryError):
            pass  # a broken stream ends like a closed one
        finally:
            replies.put(None)

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            _kill(process)

    def _death_reason(self) -> str:
        process, self._process = self._process, None
        assert process is not None
        code = process.wait()
        if code == _EXIT_OUT_OF_MEMORY:
            return f"parser ran out of memory (the limit is {self.memory_mb} MiB) and was stopped"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"parser crashed ({name}) on this file; the run went on without it"
        return f"parser process exited unexpectedly (exit code {code})"


def _kill(process: subprocess.Popen[bytes]) -> None:
    """Kill the worker and anything it started, and reap it."""
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    else:
        process.kill()
    process.wait()


def _limit_memory(megabytes: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: no address-space limit; the time limit still applies
        return
    limit = megabytes * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _die_with_parent(parent: int) -> None:
    """A worker whose indexer was killed must not go on parsing (Linux: PR_SET_PDEATHSIG)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the indexer's to handle
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above took effect
        sys.exit(0)


def _preload_parsers() -> None:
    """Import the parsers' libraries up front, so a file's time limit is its parsing only."""
    import importlib

    modules = ("pypdfium2", "docx", "pptx", "python_calamine", "striprtf.striprtf", "lxml.etree",
               "PIL.Image", "PIL.PngImagePlugin", "PIL.TiffImagePlugin", "PIL.JpegImagePlugin",
               "selectolax.lexbor", "charset_normalizer", "email.policy")  # fmt: skip
    for module in modules:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)


def _answer(path: Path, data: bytes) -> dict[str, object]:
    try:
        return {"ok": True, "documents": [loaded.to_json() for loaded in load_file(path, data)]}
    except NotADocument as error:
        return {"ok": False, "kind": "not-a-document", "reason": str(error)}
    except UnreadableFileError as error:
        return {"ok": False, "kind": "unreadable", "reason": str(error)}
    except MemoryError:
        raise
    except Exception as error:  # a parser bug costs this file only
        return {"ok": False, "kind": "error", "reason": f"parser error ({type(error).__name__}: "
                f"{error})"}  # fmt: skip


def serve(memory_mb: int, parent: int, ocr: OcrOptions | None = None) -> int:
    """The child's loop: answer each request until the parent closes our stdin."""
    # Frames go to a private copy of stdout; anything a parser prints lands on stderr instead.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = sys.stdin.buffer
    writing = threading.Lock()  # OCR threads report pages while the main thread may answer

    def page_done() -> None:
        with writing:
            _write_frame(replies, _PAGE_DONE)
            replies.flush()

    configure(ocr or OcrOptions(), on_page=page_done)
    _die_with_parent(parent)
    _preload_parsers()
    _limit_memory(memory_mb)
    _write_frame(replies, _READY)
    replies.flush()
    try:
        while (raw_path := _read_frame(requests)) is not None:
            data = _read_frame(requests)
            if data is None:
                return 0
            answer = _answer(Path(os.fsdecode(raw_path)), data)
            del data
            with writing:
                _write_frame(replies, json.dumps(answer).encode())
                replies.flush()
    except MemoryError:
        return _EXIT_OUT_OF_MEMORY  # the heap may be in pieces: the parent starts a fresh one
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="searchapp's file-parsing worker (internal)")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True, help="the indexer's process id")
    parser.add_argument("--ocr-lang", default="eng")
    parser.add_argument("--no-ocr", action="store_true")
    parser.add_argument("--ocr-cache", type=Path, default=None)
    arguments = parser.parse_args()
    options = OcrOptions(enabled=not arguments.no_ocr, lang=arguments.ocr_lang,
                         cache_dir=arguments.ocr_cache)  # fmt: skip
    sys.exit(serve(arguments.memory_mb, arguments.parent, options))
