"""The write path every source shares: keep the books, then chunk, embed, store, index.

A source (a folder, a BEIR corpus, …) only produces candidates: documents it can read, and the
paths or records it refused with why. ``index_sources`` keeps the books for all of them alike:
unchanged documents are left alone, changed ones replaced, new ones added, and documents the source
no longer has removed. ``IndexWriter`` does the writing.

Documents are buffered and written in batches. Each batch is embedded in a thread of its own while
the source reads and chunks the next files, then written in one SQL transaction (documents, chunks,
embeddings and the FTS5 rows by trigger), and only then added to the in-memory vector index, which
is saved atomically at checkpoints and at the end. A crash loses at most the batch being embedded
and the one being gathered; the next open of the index replays whatever SQL holds.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from indexer.chunking import Chunker, TextChunk
from indexer.known_vectors import KnownVectors, TextKey, text_key
from searchapp.backends import prepare_queries
from searchapp.encoder import Encoder, EncoderSpec
from searchapp.errors import NotADocument, UnreadableFileError
from searchapp.faults import crash_point
from searchapp.onnx_encoder import OnnxEncoder
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.settings import Settings
from searchapp.store.database import Database
from searchapp.store.keywords.factory import keyword_store
from searchapp.store.schema import Chunk, Document, Embedding, Source
from searchapp.store.vectors.factory import vector_store
from searchapp.versions import encoder_for, ensure_active_generation

CHECKPOINT_SECONDS = 60.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceDocument:
    """A document read from a file or a corpus, ready to be chunked and embedded."""

    uri: str
    path: str | None
    external_id: str | None
    title: str
    text: str
    file_type: str
    content_hash: str
    size: int = 0
    mtime_ns: int = 0
    # What the format records: the author, a date (ISO 8601), where each page, slide or sheet
    # starts in ``text``, the part of a file holding several documents ("message 3"), and the
    # rest (an e-mail's sender and recipients).
    author: str = ""
    date: str = ""
    sections: tuple[tuple[int, str], ...] = ()
    part: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class KnownDocument:
    id: int
    content_hash: str
    size: int
    mtime_ns: int
    uri: str = ""


@dataclass
class IndexSummary:
    """What one indexing run did."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks: int = 0  # chunks written
    embedded: int = 0  # of them, those the encoder embedded: the rest had a known vector
    seconds: float = 0.0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Left out by a rule, unread: an --ignore pattern, .searchappignore, a hidden name, the home.
    ignored: list[tuple[str, str]] = field(default_factory=list)
    documents: int = 0  # documents written: a mailbox's file is one added file, many documents

    @property
    def files(self) -> int:
        """Every file (or record) the run accounted for, whatever became of it."""
        return (self.added + self.updated + self.unchanged + len(self.failed)
                + len(self.skipped) + len(self.ignored))  # fmt: skip

    def to_json(self) -> dict[str, object]:
        return {
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "ignored": [{"path": p, "reason": r} for p, r in self.ignored],
            "files": self.files,
            "documents": self.documents,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_json(cls, data: dict) -> IndexSummary:
        """The summary a job stored (``to_json``)."""
        listed = {name: [(entry["path"], entry["reason"]) for entry in data.get(name, [])]
                  for name in ("failed", "skipped", "ignored")}  # fmt: skip
        counts = ("added", "updated", "removed", "unchanged", "chunks", "embedded", "documents")
        return cls(**{name: data.get(name, 0) for name in counts}, seconds=data["seconds"],
                   **listed)  # fmt: skip


@dataclass(frozen=True)
class Rejected:
    """Something a source could not offer as a document, and why.

    Skipped (``failed`` False): not a document, so whatever was stored under ``key`` is removed.
    Failed: a document that could not be read this time; what was stored for it is kept.
    Ignored: left out by a rule the user set (an ignore pattern, a hidden folder), unread.
    """

    key: str
    reason: str
    failed: bool = False
    ignored: bool = False


class Candidate(ABC):
    """One document a source offers, read in steps so that an unchanged one costs little.

    Each step may raise ``UnreadableFileError`` (failed: the stored version is kept),
    ``NotADocument`` (skipped: the stored version is removed) or ``FileNotFoundError`` (it
    vanished during the run: skipped).
    """

    key: str  # the document's identity within its source: a path's URI, a record's id

    def same_as(self, known: KnownDocument) -> bool:
        """Known to be unchanged without reading it (same size and modification time, say)."""
        return False

    @abstractmethod
    def content_hash(self) -> str:
        """A hash of the content; documents whose hash did not change are not parsed again."""

    @abstractmethod
    def document(self, content_hash: str) -> SourceDocument:
        """The document itself, parsed."""

    def documents(self, content_hash: str) -> list[SourceDocument]:
        """Every document this item holds (a mailbox: one per message), each with its own
        ``uri``; most hold one."""
        return [self.document(content_hash)]

    def stamp(self) -> tuple[int, int] | None:
        """(size, mtime_ns) to record for a document whose content did not change; None when
        the source has no such thing."""
        return None


class DocumentSource(ABC):
    """A producer of documents: a folder, a corpus file, …; ``index_sources`` keeps the books."""

    kind: str  # stored with the source: "folder", "beir"
    location: str  # the source's identity: a folder's path, a corpus folder's path
    # What ``Candidate.key`` is matched against: "uri", "path" (the documents of one file share
    # it) or "external_id".
    key_column: str = "uri"
    label: str  # for the progress bar: "index notes"
    unit: str = "file"

    @abstractmethod
    def candidates(self) -> Iterator[Candidate | Rejected]:
        """Every document the source has now, and what it refused."""

    def count(self) -> int | None:
        """How many items ``candidates`` yields, when known beforehand (for progress)."""
        return None


def index_sources(
    settings: Settings,
    sources: Sequence[DocumentSource],
    *,
    spec: EncoderSpec | None = None,
    db: Database | None = None,
    progress: Progress = NO_PROGRESS,
) -> IndexSummary:
    """Bring the home up to date with each source, under the writer lock; returns what changed."""
    db = db or Database(settings.database_url, lock_path=settings.write_lock_path)
    started = time.perf_counter()
    summary = IndexSummary()
    with db.indexer_lock(), IndexWriter(settings, db, spec=spec, progress=progress) as writer:
        for source in sources:
            _keep_books(writer, source, summary, progress)
    summary.chunks, summary.embedded = writer.chunks_written, writer.chunks_embedded
    if writer.chunks_written:  # outside the lock: other writers need not wait for it
        encoder = writer.encoder
        prepare_queries(encoder.spec, writer.generation.backend, encoder.fingerprint,
                        settings.backends_dir, settings.query_backend, progress)  # fmt: skip
    summary.seconds = time.perf_counter() - started
    return summary


def _keep_books(
    writer: IndexWriter,
    source: DocumentSource,
    summary: IndexSummary,
    progress: Progress,
) -> None:
    db = writer.db
    source_id = get_or_create_source(db, source.kind, source.location)
    known = known_documents(db, source_id, key=source.key_column)
    seen: set[str] = set()
    touched: dict[int, tuple[int, int]] = {}
    items = progress.track(
        source.candidates(),
        source.label,
        total=source.count(),
        unit=source.unit,
        detail=lambda item: _detail(writer, item.key),
    )
    for item in items:
        if isinstance(item, Rejected):
            entry = (item.key, item.reason)
            if item.failed:
                summary.failed.append(entry)
                seen.add(item.key)  # what was stored for it is kept
            else:  # what was stored for it (before a rule ignored it, say) is removed
                (summary.ignored if item.ignored else summary.skipped).append(entry)
            continue
        seen.add(item.key)
        previous = known.get(item.key, [])
        try:
            if previous and item.same_as(previous[0]):
                summary.unchanged += 1
                continue
            digest = item.content_hash()
            if previous and digest == previous[0].content_hash:
                summary.unchanged += 1
                if (stamp := item.stamp()) is not None:
                    touched.update(dict.fromkeys((doc.id for doc in previous), stamp))
                continue
            documents = item.documents(digest)
        except NotADocument as error:
            summary.skipped.append((item.key, str(error)))
            seen.discard(item.key)  # whatever was stored for it is removed below
            continue
        except FileNotFoundError:
            summary.skipped.append((item.key, "vanished during the run"))
            seen.discard(item.key)
            continue
        except UnreadableFileError as error:
            summary.failed.append((item.key, str(error)))
            continue
        except OSError as error:
            summary.failed.append((item.key, f"cannot be read ({error.strerror or error})"))
            continue
        by_uri = {doc.uri: doc for doc in previous}  # a file's documents, matched by their URIs
        writer.remove([by_uri.pop(uri).id for uri in set(by_uri) - {d.uri for d in documents}])
        for document in documents:
            replaced = by_uri.get(document.uri)
            writer.add(document, source_id, replaces=replaced.id if replaced else None)
        summary.documents += len(documents)
        if previous:
            summary.updated += 1
        else:
            summary.added += 1
    gone = [doc.id for key, docs in known.items() if key not in seen for doc in docs]
    writer.remove(gone)
    summary.removed += len(gone)
    touch_documents(db, touched)
    writer.flush()
    mark_indexed(db, source_id)


def _detail(writer: IndexWriter, key: str) -> str:
    """What the progress bar says beside the count: the embedding speed and the current item."""
    if not writer.chunks_written:
        return key
    return f"{writer.chunks_per_second:.0f} chunks/s · {key}"


def get_or_create_source(db: Database, kind: str, location: str) -> int:
    with db.write() as session:
        source_id = session.execute(
            select(Source.id).where(Source.location == location)
        ).scalar_one_or_none()
        if source_id is None:
            source = Source(kind=kind, location=location)
            session.add(source)
            session.flush()
            source_id = source.id
        return source_id


def known_documents(
    db: Database, source_id: int, key: str = "uri"
) -> dict[str, list[KnownDocument]]:
    """The source's stored documents by ``uri``, ``path`` or ``external_id`` (several documents
    of one file share a path)."""
    column = {"uri": Document.uri, "path": Document.path}.get(key, Document.external_id)
    with db.read() as session:
        rows = session.execute(
            select(
                column, Document.id, Document.content_hash, Document.size, Document.mtime_ns,
                Document.uri,
            ).where(Document.source_id == source_id).order_by(Document.id)
        ).all()  # fmt: skip
    known: dict[str, list[KnownDocument]] = {}
    for row in rows:
        known.setdefault(row[0], []).append(KnownDocument(*row[1:]))
    return known


def mark_indexed(db: Database, source_id: int) -> None:
    with db.write() as session:
        session.execute(
            update(Source).where(Source.id == source_id).values(indexed_at=datetime.now(UTC))
        )


def touch_documents(db: Database, stats: dict[int, tuple[int, int]]) -> None:
    """Record new (size, mtime) for documents whose bytes did not change."""
    if not stats:
        return
    with db.write() as session:
        session.execute(
            update(Document),
            [{"id": i, "size": size, "mtime_ns": mtime} for i, (size, mtime) in stats.items()],
        )


@dataclass
class _Pending:
    document: SourceDocument
    source_id: int
    replaces: int | None
    chunks: list[TextChunk]


@dataclass
class _Batch:
    """Documents on their way through the encoder: the key of each of their chunk texts, the
    texts the encoder embeds (``fresh``, each once) and the vectors already known of the rest."""

    pending: list[_Pending]
    keys: list[TextKey]
    fresh: list[TextKey]
    known: dict[TextKey, np.ndarray]
    vectors: Future[np.ndarray]


class IndexWriter:
    """Writes documents into a home's served generation, in batches of about ``batch_chunks``.

    Example::

        with IndexWriter(settings, db) as writer:
            writer.add(document, source_id)
    """

    BATCH_CHUNKS = 512
    KNOWN_VECTORS_BYTES = 32 * 2**20

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        spec: EncoderSpec | None = None,
        batch_chunks: int | None = None,
        progress: Progress = NO_PROGRESS,
    ) -> None:
        self.settings = settings
        self.db = db
        self.progress = progress
        self.vectors = vector_store(db, settings.index_dir)
        self.vectors.remove_leftovers(db)  # callers hold the writer lock
        self.generation, self.version = ensure_active_generation(db, spec, settings.backend)
        with db.read() as session:
            self.index, self.sync_report = self.vectors.open(
                session, self.generation, self.version.dimension
            )
        self.keywords = keyword_store(db, settings.index_dir)
        self._catch_up_keywords()  # what a run that died left undone
        self.batch_chunks = batch_chunks or self.BATCH_CHUNKS
        self.chunks_written = 0
        self._pending: list[_Pending] = []
        self._pending_chunks = 0
        self._dirty = self.sync_report.rebuilt or bool(
            self.sync_report.added or self.sync_report.removed
        )
        self._last_save = self._started = time.monotonic()
        self.known = KnownVectors(max(self.KNOWN_VECTORS_BYTES // (4 * self.version.dimension), 1))
        self.chunks_embedded = 0  # the rest were known: see ``indexer.known_vectors``
        self._in_flight: _Batch | None = None
        self._last_fresh: dict[TextKey, np.ndarray] = {}

    @cached_property
    def encoder(self) -> Encoder | OnnxEncoder:
        """Loaded on first use: a run where nothing changed never loads the model."""
        return encoder_for(self.version, self.generation.backend, self.settings.backends_dir)

    @cached_property
    def chunker(self) -> Chunker:
        size = min(self.settings.chunk_tokens, self.encoder.max_content_tokens)
        # A model with a short window gets an overlap of at most a quarter of it (64 tokens: 16).
        overlap = min(self.settings.chunk_overlap_tokens, size // 4)
        return Chunker(self.encoder.tokenizer, size, overlap)

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        try:
            if exc_type is None:
                self.close()
                return
        finally:
            if "_encoding_thread" in self.__dict__:
                self._encoding_thread.shutdown(wait=True)  # a batch in flight is dropped
        if self._dirty:
            try:
                self.save()  # a head start for the next open; SQL stays the truth either way
            except Exception as error:  # a full disk, say: the error in flight is the one to show
                log.warning("The vector index file was not saved (%s); the next run catches up "
                            "from SQL.", error)  # fmt: skip

    def add(self, document: SourceDocument, source_id: int, replaces: int | None = None) -> int:
        """Queue ``document`` (replacing document ``replaces``); returns its number of chunks."""
        if document.sections:
            starts = [start for start, _ in document.sections]
            chunks = self.chunker.split_sections(document.text, starts)
        else:
            chunks = self.chunker.split(document.text)
        self._pending.append(_Pending(document, source_id, replaces, chunks))
        self._pending_chunks += len(chunks)
        if self._pending_chunks >= self.batch_chunks:
            self._submit()
        return len(chunks)

    def remove(self, document_ids: list[int]) -> None:
        """Delete documents with their chunks, vectors and keyword rows."""
        if not document_ids:
            return
        self.flush()  # writes stay in the order they were asked for
        with self.db.write() as session:
            chunk_ids = self._chunk_ids(session, document_ids)
            session.execute(delete(Document).where(Document.id.in_(document_ids)))
            self.db.bump_revision(session)
        self.index.remove(chunk_ids)
        self._dirty = True

    def flush(self) -> None:
        """Embed the queued documents and write them, with any batch still being embedded."""
        self._submit()
        self._write_encoded()

    @property
    def chunks_per_second(self) -> float:
        """Chunks written per second of this writer's life so far."""
        return self.chunks_written / max(time.monotonic() - self._started, 1e-9)

    def _submit(self) -> None:
        """Start embedding the queued documents in the encoding thread, and write the batch
        embedded before them meanwhile: the caller goes on reading and chunking the next files
        while the encoder works. Only texts with no known vector go to the encoder, each once."""
        if not self._pending:
            return
        pending, self._pending, self._pending_chunks = self._pending, [], 0
        self._recall_replaced(pending)
        texts = [chunk.text for item in pending for chunk in item.chunks]
        keys = [text_key(text) for text in texts]
        in_flight = set(self._in_flight.fresh) if self._in_flight else set()
        known: dict[TextKey, np.ndarray] = {}
        fresh: dict[TextKey, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key in known or key in fresh or key in in_flight:
                continue
            vector = self.known.get(key)
            if vector is None:
                fresh[key] = text
            else:
                known[key] = vector
        encoder = self.encoder  # loaded here, not in the thread: its errors are the caller's
        if fresh:
            vectors = self._encoding_thread.submit(encoder.encode, list(fresh.values()))
        else:
            vectors = Future()
            vectors.set_result(np.empty((0, self.version.dimension), dtype=np.float32))
        self.chunks_embedded += len(fresh)
        self._write_encoded()
        self._in_flight = _Batch(pending, keys, list(fresh), known, vectors)

    def _write_encoded(self) -> None:
        """Wait for the batch being embedded, if any, and write it. A text that was not
        embedded for it was known when it was queued, or embedded by the batch before it."""
        if self._in_flight is None:
            return
        batch, self._in_flight = self._in_flight, None
        fresh = dict(zip(batch.fresh, batch.vectors.result(), strict=True))
        sources = (fresh, batch.known, self._last_fresh)
        rows = [next(found[key] for found in sources if key in found) for key in batch.keys]
        vectors = (
            np.stack(rows) if rows else np.empty((0, self.version.dimension), dtype=np.float32)
        )
        self.known.remember(fresh.items())
        self._last_fresh = fresh
        self._write(batch.pending, vectors)

    def _recall_replaced(self, pending: list[_Pending]) -> None:
        """Remember the vectors of the documents these replace: an edited file's unchanged
        passages are not embedded again."""
        replaced = [item.replaces for item in pending if item.replaces is not None]
        if not replaced:
            return
        with self.db.read() as session:
            rows = session.execute(
                select(Chunk.text, Embedding.vector)
                .join(Embedding, Embedding.chunk_id == Chunk.id)
                .where(
                    Chunk.document_id.in_(replaced), Embedding.generation_id == self.generation.id
                )
            )
            self.known.remember(
                (text_key(text), np.frombuffer(blob, dtype=np.float32)) for text, blob in rows
            )

    @cached_property
    def _encoding_thread(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")

    def add_embedded(
        self,
        documents: Sequence[tuple[SourceDocument, list[TextChunk], np.ndarray]],
        source_id: int,
    ) -> None:
        """Write documents whose chunks are already embedded by this generation's model (a
        benchmark that builds a large store, an import of vectors made elsewhere)."""
        self.flush()
        pending = [_Pending(document, source_id, None, chunks) for document, chunks, _ in documents]
        self._write(pending, np.concatenate([vectors for _, _, vectors in documents]))

    def _write(self, pending: list[_Pending], vectors: np.ndarray) -> None:
        """One transaction for the documents, chunks and embeddings; then the vector index."""
        with self.db.write() as session:
            replaced = [item.replaces for item in pending if item.replaces is not None]
            stale_chunks = self._chunk_ids(session, replaced)
            if replaced:
                session.execute(delete(Chunk).where(Chunk.document_id.in_(replaced)))
            document_ids = self._upsert_documents(session, pending)
            rows = [
                {"document_id": document_id, "ordinal": ordinal, "start": chunk.start,
                 "end": chunk.end, "text": chunk.text}
                for document_id, item in zip(document_ids, pending, strict=True)
                for ordinal, chunk in enumerate(item.chunks)
            ]  # fmt: skip
            new_ids: list[int] = []
            if rows:
                new_ids = list(
                    session.scalars(
                        insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), rows
                    )
                )
            titles = [item.document.title for item in pending for _ in item.chunks]
            self.keywords.add(session, [(chunk_id, title, row["text"]) for chunk_id, title, row
                                        in zip(new_ids, titles, rows, strict=True)])  # fmt: skip
            crash_point("chunk-insert")
            if new_ids:
                session.execute(
                    insert(Embedding),
                    [
                        {"generation_id": self.generation.id, "chunk_id": chunk_id,
                         "vector": vector.tobytes()}
                        for chunk_id, vector in zip(new_ids, vectors, strict=True)
                    ],
                )  # fmt: skip
            self.db.bump_revision(session)
        self.index.remove(stale_chunks)
        self.index.add(np.asarray(new_ids, dtype=np.int64), vectors)
        self.chunks_written += len(new_ids)
        self._dirty = True
        if time.monotonic() - self._last_save > CHECKPOINT_SECONDS:
            self.save()

    def save(self) -> None:
        """Write the vector index file and record it, and bring the keyword index up to date
        (a checkpoint)."""
        self.vectors.commit(self.db, self.generation, self.index)
        self._dirty = False
        self._last_save = time.monotonic()
        self._catch_up_keywords()

    def close(self) -> None:
        self.flush()
        if self._dirty:
            self.save()

    def _catch_up_keywords(self) -> None:
        """Bring the derived keyword index (SQLite's Tantivy) up to date with what is committed.
        It only speeds keyword search up (FTS5 answers exactly meanwhile), so a failure, a full
        disk say, is reported and never fails the run."""
        try:
            self.keywords.catch_up(self.db, self.progress)
        except Exception as error:
            log.warning("The fast keyword index was not brought up to date (%s); keyword search "
                        "uses FTS5 until an index run does.", error)  # fmt: skip

    @staticmethod
    def _chunk_ids(session: Session, document_ids: list[int]) -> list[int]:
        if not document_ids:
            return []
        return list(session.scalars(select(Chunk.id).where(Chunk.document_id.in_(document_ids))))

    @staticmethod
    def _upsert_documents(session: Session, pending: list[_Pending]) -> list[int]:
        """Insert the new documents and update the replaced ones in place (they keep their id,
        and the feedback given on them); returns each one's id, in order."""
        now = datetime.now(UTC)
        values = [
            {"source_id": item.source_id, "uri": doc.uri, "path": doc.path,
             "external_id": doc.external_id, "title": doc.title, "file_type": doc.file_type,
             "content_hash": doc.content_hash, "size": doc.size, "mtime_ns": doc.mtime_ns,
             "indexed_at": now, "part": doc.part, "author": doc.author, "doc_date": doc.date,
             "sections": json.dumps(doc.sections) if doc.sections else None,
             "meta": json.dumps(dict(doc.metadata)) if doc.metadata else None}
            for item in pending
            for doc in [item.document]
        ]  # fmt: skip
        updates = [
            {"id": item.replaces, **row}
            for item, row in zip(pending, values, strict=True)
            if item.replaces is not None
        ]
        if updates:
            session.execute(update(Document), updates)
        inserts = [row for item, row in zip(pending, values, strict=True) if item.replaces is None]
        new_ids = iter(())
        if inserts:
            new_ids = iter(
                session.scalars(
                    insert(Document).returning(Document.id, sort_by_parameter_order=True), inserts
                ).all()
            )
        return [item.replaces if item.replaces is not None else next(new_ids) for item in pending]
