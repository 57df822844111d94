"""The fast keyword index of a SQLite home: Tantivy, in a folder beside the vector index files.

FTS5 ranks every chunk that holds any query term (6 ms a query at SciFact's 9,711 chunks, 55 ms at
100,000, 450 ms at a million); Tantivy's inverted index skips the chunks that cannot reach the top
(block-max WAND) and answers in well under a millisecond at SciFact's size (docs/benchmarks.md).
Each chunk is one document, its document's title and its text in one field, ranked by BM25 with
FTS5's weights, its words made as FTS5 makes them (``analyzer``): on SciFact the two rank alike
(docs/benchmarks.md). Tantivy's own English stemmer (Porter2) ranked
0.003 nDCG@10 lower.

SQL stays the truth, and FTS5 stays exact in every transaction. The Tantivy folder is derived:

- ``keyword_log`` (migration 0005) gets a row, from triggers, for every chunk inserted or deleted.
- A writer (the home's writer lock held) applies the rows past the index's position to Tantivy:
  the chunks they name are deleted and those still in SQL added again, and the new position
  (the log's ``seq``) is written as a document of the same commit; then the applied rows are
  deleted. Applying twice gives the same index, so a crash anywhere in between loses nothing.
- Tantivy keeps a deleted document in its counts (documents, documents with a word, words)
  until its segment is merged, and ranks by them. A search reads both Tantivy's counts and the
  live ones, and weighs each word as FTS5 weighs it over the live chunks. The position document
  also counts the deletions since the index was built, and a writer builds it anew from SQL once
  they pass a fifth of the live chunks, so the average length, which only a rebuild corrects,
  stays close to FTS5's too.
- A search asks Tantivy only when its position is the log's position in the search's own SQL
  snapshot: the same chunks exactly. Otherwise (between a writer's commit and its catch-up, after
  a crash, before the first build) FTS5 answers, slower and the same.

A missing, damaged or outdated folder is rebuilt from SQL by the next writer, or by
``searchapp check --repair``.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path

import tantivy
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from searchapp.faults import crash_point
from searchapp.progress import NO_PROGRESS, Progress
from searchapp.store.database import Database
from searchapp.store.keywords.analyzer import chunk_words, query_words
from searchapp.store.schema import Chunk, Document

log = logging.getLogger(__name__)

# The folder's name says the schema and the words' making: a change makes a new one, from SQL.
FOLDER = "keywords-v2"
_POSITION = 0  # the chunk id (never a real one) of the document that records the position
_STALE_SHARE = 0.2  # deleted documents, as a share of the live ones, that make a writer rebuild
_WRITER_HEAP = 64_000_000
_BATCH = 2_000
# A word in more chunks than this is not counted again without the deleted ones (its postings
# would all be read): it is weighed as if its deleted chunks were live, and they are at most a
# fifth as many as the live chunks (``_STALE_SHARE``).
_COUNT_LIVE_UP_TO = 10_000


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("chunk", indexed=True, fast=True)
    # 1 in every document: its document frequency is the document count Tantivy ranks by.
    builder.add_integer_field("every", indexed=True)
    builder.add_integer_field("position", fast=True)
    builder.add_integer_field("deleted", fast=True)  # documents deleted since the index was built
    # The words are made by ``analyzer.chunk_words``; Tantivy only splits them at the spaces.
    builder.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
    return builder.build()


def log_position(session: Session) -> int:
    """The newest ``keyword_log`` entry ever made, in this snapshot (0 before the first)."""
    found = session.execute(
        text("SELECT seq FROM sqlite_sequence WHERE name = 'keyword_log'")
    ).scalar()
    return int(found or 0)


class TantivyKeywords:
    """A home's Tantivy folder: searched by any process, written by the home's writer.

    Example::

        keywords = TantivyKeywords(settings.index_dir)
        keywords.catch_up(db)                     # a writer, after its SQL commits
        if keywords.matches(session):             # a reader, inside its snapshot
            keywords.search("varroa mites", 50)
    """

    def __init__(self, index_dir: Path) -> None:
        self.folder = index_dir / FOLDER
        self.schema = _schema()
        self._index: tantivy.Index | None = None
        self._position: int | None = None  # of the reader's current commit
        self._deleted = 0  # documents the current commit still counts but no longer holds

    # Reading.

    def matches(self, session: Session) -> bool:
        """Does the index hold exactly the chunks of ``session``'s snapshot?"""
        wanted = log_position(session)
        if self._position != wanted:
            self._reload()
        return self._position == wanted

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """Best chunks as (chunk id, BM25 score); call after ``matches`` said yes."""
        terms_of_query = query_words(query)
        searcher = self._opened().searcher()
        total = searcher.num_docs - 1  # live chunks, less the position's document
        counted = searcher.doc_freq("every", 1)  # by Tantivy: the deleted documents too
        terms = []
        for word in terms_of_query:
            term = tantivy.Query.term_query(self.schema, "body", word)
            found = searcher.doc_freq("body", word)  # the deleted documents too
            live = min(found, total)
            if self._deleted and 0 < found <= _COUNT_LIVE_UP_TO:
                live = searcher.search(term, 1, count=True).count
            if live:
                # Tantivy weighs a term by ln(1 + (N - n + 0.5) / (n + 0.5)) over what it
                # counts, FTS5 (and the blend's fitted weights) by ln((N - n + 0.5) / (n + 0.5))
                # over the live chunks: frequent terms count for almost nothing there. Rescaled
                # to FTS5's weight, as a boost.
                fts5 = max(math.log((total - live + 0.5) / (live + 0.5)), 1e-6)
                tantivy_weight = math.log1p((counted - found + 0.5) / (found + 0.5))
                boost = fts5 / tantivy_weight
                terms.append((tantivy.Occur.Should, tantivy.Query.boost_query(term, boost)))
        if not terms:
            return []
        hits = searcher.search(tantivy.Query.boolean_query(terms), limit, count=False).hits
        chunks = searcher.fast_field_values("chunk", [address for _, address in hits])
        return [(int(chunk), float(score)) for (score, _), chunk in zip(hits, chunks, strict=True)]

    def count(self) -> int | None:
        """Chunks the index holds, or None when there is no readable index."""
        self._reload()
        return None if self._index is None else self._index.searcher().num_docs - 1

    def position(self) -> int | None:
        """The log position the index matches, or None when there is no readable index."""
        self._reload()
        return self._position

    def _reload(self) -> None:
        try:
            if self._index is None:
                if not self.folder.is_dir() or not tantivy.Index.exists(str(self.folder)):
                    return
                self._index = self._open()
            self._index.reload()
            self._position, self._deleted = self._read_position(self._index)
        except (OSError, ValueError) as error:  # damaged: FTS5 answers until it is rebuilt
            log.warning("The keyword index %s cannot be read (%s); FTS5 answers meanwhile, and "
                        "the next index run rebuilds it.", self.folder, error)  # fmt: skip
            self._index, self._position = None, None

    def _open(self) -> tantivy.Index:
        index = tantivy.Index(self.schema, path=str(self.folder), reuse=True)
        index.config_reader(reload_policy="Manual", num_warmers=0)
        return index

    def _read_position(self, index: tantivy.Index) -> tuple[int | None, int]:
        """The position of ``index``'s commit and its deletions since it was built."""
        searcher = index.searcher()
        found = searcher.search(tantivy.Query.term_query(self.schema, "chunk", _POSITION), 1)
        if not found.hits:
            return None, 0
        address = [found.hits[0][1]]
        (position,) = searcher.fast_field_values("position", address)
        (deleted,) = searcher.fast_field_values("deleted", address)
        return int(position), int(deleted)

    # Writing (with the home's writer lock held).

    def catch_up(self, db: Database, progress: Progress = NO_PROGRESS) -> int:
        """Apply the chunks changed since the index's position; build the index from SQL when
        there is none, it cannot be read, the changes it lacks are no longer logged, or the
        deleted documents it still counts would pass a fifth of the live chunks. Returns the
        number of chunks written or deleted."""
        applied = self.position()
        with db.read() as session:
            wanted = log_position(session)
            oldest = session.execute(text("SELECT min(seq) FROM keyword_log")).scalar()
            if applied is None or applied > wanted or (oldest or wanted + 1) > applied + 1:
                return self._rebuild(db, session, wanted, progress)
            if applied == wanted:
                if oldest is not None:
                    self._forget(db, applied)  # rows a crash left after the commit
                return 0
            touched = list(
                session.scalars(
                    text("SELECT DISTINCT chunk_id FROM keyword_log WHERE seq > :applied"),
                    {"applied": applied},
                )
            )
            doomed = tantivy.Query.term_set_query(self.schema, "chunk", [_POSITION, *touched])
            deleted = self._deleted + self._opened().searcher().search(doomed, 1, count=True).count
            if deleted > _STALE_SHARE * (session.scalar(select(func.count(Chunk.id))) or 0):
                return self._rebuild(db, session, wanted, progress)
            writer = self._writer()
            writer.delete_documents_by_query(doomed)
            for start in range(0, len(touched), _BATCH):
                self._add_chunks(writer, session, Chunk.id.in_(touched[start : start + _BATCH]))
            self._commit(writer, wanted, deleted)
        self._forget(db, wanted)
        return len(touched)

    def rebuild(self, db: Database, progress: Progress = NO_PROGRESS) -> int:
        """Index every chunk again from SQL; returns how many."""
        with db.read() as session:
            return self._rebuild(db, session, log_position(session), progress)

    def _rebuild(self, db: Database, session: Session, position: int, progress: Progress) -> int:
        for folder in self.folder.parent.glob("keywords-v*"):  # older kinds of the index
            if folder != self.folder:
                shutil.rmtree(folder, ignore_errors=True)
        self._reload()
        if self._index is None:  # none, or unreadable: made anew
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True, exist_ok=True)
        writer = self._writer()
        # In the commit that adds every chunk again: a reader sees the old index or the new one,
        # never an empty or missing one.
        writer.delete_all_documents()
        total = session.scalar(select(func.count(Chunk.id))) or 0
        done = last = 0
        while added := self._add_chunks(writer, session, Chunk.id > last, limit=_BATCH):
            done, last = done + len(added), added[-1]
            progress.report("build the keyword index", done, total, unit="chunk")
        self._commit(writer, position, deleted=0)
        self._forget(db, position)
        return done

    def _add_chunks(  # type: ignore[no-untyped-def]
        self, writer: tantivy.IndexWriter, session: Session, where, limit: int | None = None
    ) -> list[int]:
        rows = session.execute(
            select(Chunk.id, Document.title, Chunk.text)
            .join(Document, Document.id == Chunk.document_id)
            .where(where)
            .order_by(Chunk.id)
            .limit(limit)
        ).all()
        for chunk_id, title, body in rows:
            text_words = " ".join(chunk_words(title, body))
            writer.add_document(tantivy.Document(chunk=chunk_id, every=1, body=text_words))
        return [chunk_id for chunk_id, _, _ in rows]

    def _opened(self) -> tantivy.Index:
        """The index, opened first if it is not (``matches`` and ``position`` open it)."""
        if self._index is None:
            self._index = self._open()
        return self._index

    def _writer(self) -> tantivy.IndexWriter:
        return self._opened().writer(heap_size=_WRITER_HEAP, num_threads=1)

    def _commit(self, writer: tantivy.IndexWriter, position: int, deleted: int) -> None:
        """The changes and the new position, in one commit; then let go of the writer."""
        writer.add_document(
            tantivy.Document(chunk=_POSITION, every=1, position=position, deleted=deleted)
        )
        crash_point("keyword-commit")
        writer.commit()
        writer.wait_merging_threads()  # and the writer's lock is released
        self._reload()

    @staticmethod
    def _forget(db: Database, position: int) -> None:
        """Delete the log rows the index has applied."""
        with db.write() as session:
            session.execute(text("DELETE FROM keyword_log WHERE seq <= :p"), {"p": position})
