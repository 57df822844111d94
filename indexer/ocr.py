"""Reading text from pictures of pages: Tesseract, run as its own program, with a cache.

Tesseract (Debian's ``tesseract-ocr``, Apache-2.0) was chosen by measurement against RapidOCR's
ONNX models (see docs/formats.md): as accurate on rendered pages, faster per page on two cores,
and an apt package rather than a 200 MB wheel set. It is run as a subprocess, one page per
process with ``OMP_THREAD_LIMIT=1`` (its OpenMP threads fight each other on a small machine: a
dense page takes 6.4 s with them and 2.6 s without), and as many pages at once as there are
cores.

Results are cached under ``<cache>/ocr`` by the hash of the file's bytes, the page and the
language, so a file that is unchanged, moved or renamed is never read twice (nor its pages even
rendered).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from searchapp.errors import NotADocument, UnreadableFileError
from searchapp.settings import usable_cores

INSTALL_HINT = (
    "install Tesseract (Debian/Ubuntu: apt install tesseract-ocr; macOS: brew install tesseract)"
)
PAGE_TIMEOUT_S = 120.0
OCR_DPI = 300


@dataclass(frozen=True)
class OcrOptions:
    """How pictures of text are read: ``enabled`` False is ``--no-ocr``; ``lang`` is Tesseract's
    ``-l`` (``eng``, ``deu+eng``); ``cache_dir`` None keeps no cache."""

    enabled: bool = True
    lang: str = "eng"
    cache_dir: Path | None = None


@cache
def tesseract() -> str | None:
    return shutil.which("tesseract")


@cache
def installed_languages(program: str) -> frozenset[str]:
    listed = subprocess.run([program, "--list-langs"], capture_output=True, text=True, timeout=30)
    return frozenset(line.strip() for line in listed.stdout.splitlines()[1:] if line.strip())


def check_engine(options: OcrOptions) -> str:
    """The Tesseract program to run, or NotADocument saying why pages cannot be read here."""
    program = tesseract()
    if program is None:
        raise NotADocument(f"needs OCR and Tesseract is not installed: {INSTALL_HINT}")
    missing = sorted(set(options.lang.split("+")) - installed_languages(program))
    if missing:
        have = ", ".join(sorted(installed_languages(program))) or "none"
        packages = " ".join(f"tesseract-ocr-{name}" for name in missing)
        raise NotADocument(
            f"needs OCR in {'+'.join(missing)}, which Tesseract lacks here (installed: {have}); "
            f"install {packages}, or pass another --ocr-lang"
        )
    return program


PageImage = tuple[str, Callable[[], bytes]]  # (cache key, a function making the PNG bytes)


def page_key(data: bytes, page: int) -> str:
    """The cache key of a file's page: its bytes' hash and the page's number."""
    return f"{hashlib.sha256(data).hexdigest()}-{page}"


def ocr_pages(
    pages: Sequence[PageImage],
    options: OcrOptions,
    *,
    on_page: Callable[[], None] = lambda: None,
) -> list[str]:
    """The text of each page, read in parallel (one process per core) unless cached; ``on_page``
    is called as each one is done (the parse worker's sign of life). Cached pages are read even
    where Tesseract is not (a home moved to another machine)."""
    if not options.enabled:
        raise NotADocument("needs OCR, and OCR is off (--no-ocr)")
    texts: dict[int, str] = {}
    for number, (key, _) in enumerate(pages):
        cached = _cache_path(options, key)
        if cached is not None and cached.is_file():
            texts[number] = cached.read_text(encoding="utf-8")
    missing = [number for number in range(len(pages)) if number not in texts]
    if not missing:
        return [texts[number] for number in range(len(pages))]
    program = check_engine(options)

    def read(number: int) -> str:
        text = _read_page(program, *pages[number], options)
        on_page()
        return text

    workers = max(1, min(len(missing), usable_cores()))
    if workers == 1:
        texts.update((number, read(number)) for number in missing)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr") as pool:
            texts.update(zip(missing, pool.map(read, missing), strict=True))
    return [texts[number] for number in range(len(pages))]


def _read_page(program: str, key: str, make_image: Callable[[], bytes], options: OcrOptions) -> str:
    cached = _cache_path(options, key)
    png = make_image()
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            [program, "stdin", "stdout", "-l", options.lang, "--dpi", str(OCR_DPI)],
            input=png, capture_output=True, env=env, timeout=PAGE_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise UnreadableFileError(f"OCR of a page took more than {PAGE_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = message[-1] if message else f"exit code {done.returncode}"
        raise UnreadableFileError(f"Tesseract failed ({why})")
    text = done.stdout.decode("utf-8", "replace").replace("\f", "").strip()
    if cached is not None:
        _write_atomically(cached, text)
    return text


def _cache_path(options: OcrOptions, key: str) -> Path | None:
    if options.cache_dir is None:
        return None
    return options.cache_dir / key[:2] / f"{key}-{OCR_DPI}.{options.lang}.txt"


def _write_atomically(path: Path, text: str) -> None:
    """A cache entry is whole or absent: a full disk or a kill mid-write leaves no half file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent,
                                         delete=False, suffix=".tmp") as handle:  # fmt: skip
            handle.write(text)
        os.replace(handle.name, path)
    except OSError:  # the cache only saves time: a read-only or full cache is no failure
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(handle.name)


def _nothing() -> None:
    pass


_configured = OcrOptions()
_on_page: Callable[[], None] = _nothing


def configure(options: OcrOptions, on_page: Callable[[], None] = _nothing) -> None:
    """Set the options the loaders read pages with (the parse worker's ``--ocr-lang``,
    ``--no-ocr`` and cache), and what to call as each page is done."""
    global _configured, _on_page
    _configured, _on_page = options, on_page


def read_pages(pages: Sequence[PageImage]) -> list[str]:
    """``ocr_pages`` with the configured options: what the loaders call."""
    return ocr_pages(pages, _configured, on_page=_on_page)
