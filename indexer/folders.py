"""Indexing folders: walk, read, and hand changed files to the writer; incremental by content hash.

A file whose size and modification time are unchanged is skipped without being read; one whose
bytes hash the same is skipped without being parsed or encoded. Files gone from disk are removed.
A file that cannot be read is reported with its reason and keeps whatever was stored for it.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy import delete, select
from tqdm import tqdm

from indexer.loaders import NotADocument, UnreadableFileError, is_candidate, plugin_loaders
from indexer.parse_worker import ParseWorker
from indexer.pipeline import (
    IndexSummary,
    IndexWriter,
    SourceDocument,
    get_or_create_source,
    known_documents,
    mark_indexed,
    touch_documents,
)
from indexer.walk import Skipped, walk_files
from searchapp.encoder import EncoderSpec
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Document, Source

MAX_FILE_BYTES = 64 * 1024 * 1024
ProgressCallback = Callable[[int, int, str], None]


def path_text(path: Path) -> str:
    """A path as storable text: bytes of a file name that are not UTF-8 are written as \\xNN."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def index_folders(
    settings: Settings,
    folders: Sequence[str | os.PathLike[str]],
    *,
    spec: EncoderSpec | None = None,
    ignore: Sequence[str] = (),
    show_progress: bool = True,
    on_progress: ProgressCallback | None = None,
    db: Database | None = None,
) -> IndexSummary:
    """Index each folder (or single file) into the home; returns what changed.

    ``on_progress(done, total, path)`` is called after each file (for a UI's progress bar).
    """
    roots = [Path(os.path.abspath(Path(folder).expanduser())) for folder in folders]
    for root in roots:
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist: pass a folder (or file) to index.")
    db = db or Database(settings.database_url, lock_path=settings.write_lock_path)
    started = time.perf_counter()
    summary = IndexSummary()
    parser = ParseWorker(timeout=settings.parse_timeout_s, memory_mb=settings.parse_memory_mb)
    with db.writer_lock(), IndexWriter(settings, db, spec=spec) as writer, parser:
        for root in roots:
            _index_root(
                db, writer, parser, root, (*settings.ignore, *ignore), summary, show_progress,
                on_progress,
            )  # fmt: skip
    summary.chunks = writer.chunks_written
    summary.seconds = time.perf_counter() - started
    return summary


def _index_root(
    db: Database,
    writer: IndexWriter,
    parser: ParseWorker,
    root: Path,
    ignore: Sequence[str],
    summary: IndexSummary,
    show_progress: bool,
    on_progress: ProgressCallback | None,
) -> None:
    source_id = get_or_create_source(db, "folder", path_text(root))
    known = known_documents(db, source_id)
    entries = list(walk_files(root, ignore))
    plugin_suffixes = plugin_loaders().keys()
    seen: set[str] = set()
    touched: dict[int, tuple[int, int]] = {}
    for done, entry in enumerate(tqdm(entries, desc=f"index {root.name or root}", unit="file",
                                      disable=not show_progress)):  # fmt: skip
        if on_progress is not None:
            on_progress(done, len(entries), str(getattr(entry, "path", entry)))
        if isinstance(entry, Skipped):
            summary.skipped.append((path_text(entry.path), entry.reason))
            continue
        uri = path_text(entry)
        if not is_candidate(entry, plugin_suffixes):
            continue
        seen.add(uri)
        previous = known.get(uri)
        try:
            info = entry.stat()
            if previous and (info.st_size, info.st_mtime_ns) == (previous.size, previous.mtime_ns):
                summary.unchanged += 1
                continue
            if info.st_size > MAX_FILE_BYTES:
                raise UnreadableFileError(
                    f"file too large ({info.st_size / 2**20:.0f} MiB; "
                    f"the limit is {MAX_FILE_BYTES / 2**20:.0f} MiB)"
                )
            data = entry.read_bytes()
        except UnreadableFileError as error:
            summary.failed.append((uri, str(error)))
            continue
        except FileNotFoundError:
            summary.skipped.append((uri, "vanished during the run"))
            seen.discard(uri)  # gone: whatever was stored for it is removed below
            continue
        except OSError as error:
            summary.failed.append((uri, f"cannot be read ({error.strerror or error})"))
            continue
        digest = hashlib.sha256(data).hexdigest()
        if previous and digest == previous.content_hash:
            summary.unchanged += 1
            touched[previous.id] = (info.st_size, info.st_mtime_ns)
            continue
        try:
            loaded = parser.parse(entry, data)
        except NotADocument as error:
            summary.skipped.append((uri, str(error)))
            seen.discard(uri)
            continue
        except UnreadableFileError as error:
            summary.failed.append((uri, str(error)))
            continue
        if not loaded.text.strip():
            summary.skipped.append((uri, "no text (empty file or no extractable text)"))
            seen.discard(uri)
            continue
        document = SourceDocument(
            uri=uri,
            path=uri,
            external_id=None,
            title=loaded.title,
            text=loaded.text,
            file_type=loaded.file_type,
            content_hash=digest,
            size=info.st_size,
            mtime_ns=info.st_mtime_ns,
        )
        writer.add(document, source_id, replaces=previous.id if previous else None)
        if previous:
            summary.updated += 1
        else:
            summary.added += 1
    gone = [doc.id for uri, doc in known.items() if uri not in seen]
    writer.remove(gone)
    summary.removed += len(gone)
    touch_documents(db, touched)
    writer.flush()
    mark_indexed(db, source_id)


def remove_source(settings: Settings, source_id: int, *, db: Database | None = None) -> int:
    """Forget a folder: its documents, chunks, vectors and feedback; the files are untouched.

    Returns the number of documents removed.
    """
    db = db or Database(settings.database_url, lock_path=settings.write_lock_path)
    with db.writer_lock(), IndexWriter(settings, db) as writer:
        with db.read() as session:
            if session.get(Source, source_id) is None:
                raise ValueError(f"No indexed folder with id {source_id}.")
            ids = list(session.scalars(select(Document.id).where(Document.source_id == source_id)))
        writer.remove(ids)
        with db.write() as session:
            session.execute(delete(Source).where(Source.id == source_id))
    return len(ids)
