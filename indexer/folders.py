"""Indexing folders: walk, read, and hand changed files to the writer; incremental by content hash.

A file whose size and modification time are unchanged is skipped without being read; one whose
bytes hash the same is skipped without being parsed or encoded. Files gone from disk are removed.
A file that cannot be read is reported with its reason and keeps whatever was stored for it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path

from sqlalchemy import delete, select

from indexer.loaders import not_a_document_type, plugin_loaders
from indexer.ocr import OcrOptions
from indexer.parse_worker import ParseWorker
from indexer.pipeline import (
    Candidate,
    DocumentSource,
    IndexSummary,
    IndexWriter,
    KnownDocument,
    Rejected,
    SourceDocument,
    index_sources,
)
from indexer.walk import Ignored, Skipped, walk_files
from searchapp.base_models import requested_model
from searchapp.encoder import EncoderSpec
from searchapp.errors import (
    InvalidOptionError,
    NotADocument,
    PathNotFoundError,
    UnreadableFileError,
)
from searchapp.operations import IndexOptions, RemoveOptions, RemoveResult
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.schema import Document, Source

MAX_FILE_BYTES = 64 * 1024 * 1024


def path_text(path: Path) -> str:
    """A path as storable text: bytes of a file name that are not UTF-8 are written as \\xNN."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


class FileCandidate(Candidate):
    """A file: unchanged if its size and mtime are; parsed only if its bytes changed."""

    def __init__(self, path: Path, parser: ParseWorker) -> None:
        self.path = path
        self.key = path_text(path)
        self._parser = parser
        self._data = b""

    @cached_property
    def _stat(self) -> os.stat_result:
        return self.path.stat()

    def same_as(self, known: KnownDocument) -> bool:
        return (self._stat.st_size, self._stat.st_mtime_ns) == (known.size, known.mtime_ns)

    def content_hash(self) -> str:
        size = self._stat.st_size
        if size > MAX_FILE_BYTES:
            raise UnreadableFileError(
                f"file too large ({size / 2**20:.0f} MiB; "
                f"the limit is {MAX_FILE_BYTES / 2**20:.0f} MiB)"
            )
        self._data = self.path.read_bytes()
        return hashlib.sha256(self._data).hexdigest()

    def document(self, content_hash: str) -> SourceDocument:
        return self.documents(content_hash)[0]

    def documents(self, content_hash: str) -> list[SourceDocument]:
        """The file's documents; one of several (a mailbox's message) has the URI
        ``path#part``."""
        documents = [
            SourceDocument(
                uri=f"{self.key}#{loaded.part}" if loaded.part else self.key,
                path=self.key,
                external_id=None,
                title=loaded.title,
                text=loaded.text,
                file_type=loaded.file_type,
                content_hash=content_hash,
                size=self._stat.st_size,
                mtime_ns=self._stat.st_mtime_ns,
                author=loaded.author,
                date=loaded.date,
                sections=tuple((section.start, section.label) for section in loaded.sections),
                part=loaded.part,
                metadata=loaded.metadata,
            )
            for loaded in self._parser.parse(self.path, self._data)
            if loaded.text.strip()
        ]
        if not documents:
            raise NotADocument("no text (empty file or no extractable text)")
        return documents

    def stamp(self) -> tuple[int, int]:
        return self._stat.st_size, self._stat.st_mtime_ns


class FolderSource(DocumentSource):
    """The files under a folder (or one file), walked safely; ignore patterns honoured."""

    kind = "folder"
    key_column = "path"  # a mailbox's messages are documents of one file

    def __init__(
        self,
        root: Path,
        ignore: Sequence[str],
        parser: ParseWorker,
        exclude: Sequence[Path] = (),
    ) -> None:
        self.root = root
        self.location = path_text(root)
        self.label = f"index {root.name or root}"
        self._ignore = ignore
        self._exclude = exclude
        self._parser = parser

    @cached_property
    def _entries(self) -> list[Path | Skipped]:
        return list(walk_files(self.root, self._ignore, self._exclude))

    def count(self) -> int:
        return len(self._entries)

    def candidates(self) -> Iterator[Candidate | Rejected]:
        plugin_suffixes = plugin_loaders().keys()
        for entry in self._entries:
            if isinstance(entry, Skipped):
                yield Rejected(path_text(entry.path), entry.reason,
                               ignored=isinstance(entry, Ignored))  # fmt: skip
            elif reason := not_a_document_type(entry, plugin_suffixes):
                yield Rejected(path_text(entry), reason)
            else:
                yield FileCandidate(entry, self._parser)


def index_folders(
    settings: Settings,
    folders: Sequence[str | os.PathLike[str]],
    *,
    spec: EncoderSpec | None = None,
    ignore: Sequence[str] = (),
    progress: Progress = NO_PROGRESS,
    db: Database | None = None,
) -> IndexSummary:
    """Index each folder (or single file) into the home; returns what changed."""
    roots = [Path(os.path.abspath(Path(folder).expanduser())) for folder in folders]
    for root in roots:
        if not root.exists():
            raise PathNotFoundError(f"{root} does not exist: pass a folder (or file) to index.")
    patterns = (*settings.ignore, *ignore)
    ocr = OcrOptions(enabled=settings.ocr, lang=settings.ocr_lang,
                     cache_dir=settings.ocr_cache_dir)  # fmt: skip
    with ParseWorker(
        timeout=settings.parse_timeout_s, memory_mb=settings.parse_memory_mb, ocr=ocr
    ) as parser:
        sources = [FolderSource(root, patterns, parser, exclude=(settings.home,)) for root in roots]
        return index_sources(settings, sources, spec=spec, db=db, progress=progress)


def run_index(settings: Settings, options: IndexOptions, progress: Progress) -> IndexSummary:
    """The ``index`` operation."""
    spec = requested_model(settings, options)
    return index_folders(settings, options.paths, spec=spec, ignore=options.ignore,
                         progress=progress)  # fmt: skip


def run_remove(settings: Settings, options: RemoveOptions, progress: Progress) -> RemoveResult:
    """The ``remove`` operation: forget the indexed folder at ``options.folder``."""
    db = Database(settings.database_url, lock_path=settings.write_lock_path)
    location = path_text(Path(os.path.abspath(Path(options.folder).expanduser())))
    with db.read() as session:
        source_id = session.scalar(
            select(Source.id).where(Source.kind == "folder", Source.location == location)
        )
    if source_id is None:
        raise InvalidOptionError(
            f"{location} is not an indexed folder: the Index page lists the folders "
            "indexed, by the path they were indexed under."
        )
    progress.report("remove folder", 0, 1, unit="folder", detail=location)
    removed = remove_source(settings, source_id, db=db)
    progress.report("remove folder", 1, 1, unit="folder", detail=location)
    return RemoveResult(folder=location, documents=removed)


def remove_source(settings: Settings, source_id: int, *, db: Database | None = None) -> int:
    """Forget a folder: its documents, chunks, vectors and feedback; the files are untouched.

    Returns the number of documents removed.
    """
    db = db or Database(settings.database_url, lock_path=settings.write_lock_path)
    with db.indexer_lock(), IndexWriter(settings, db) as writer:
        with db.read() as session:
            if session.get(Source, source_id) is None:
                raise InvalidOptionError(f"No indexed folder with id {source_id}.")
            ids = list(session.scalars(select(Document.id).where(Document.source_id == source_id)))
        writer.remove(ids)
        with db.write() as session:
            session.execute(delete(Source).where(Source.id == source_id))
    return len(ids)
