"""The keyword store of a SQLite home: FTS5, exact in every transaction, and beside it the Tantivy
index (``tantivy_index``), which answers the same queries many times faster whenever it holds
exactly the chunks being searched.

FTS5 ranks by BM25 over the ``chunks_fts`` table that the triggers of migration 0001 keep in step
with ``chunks``. User text never reaches it as syntax: each term is quoted and the terms are OR-ed,
so quotes, ``AND``, ``NEAR``, ``*``, ``!`` or unbalanced parentheses are searched as words and can
never raise. Stopwords are left out ("how do the bees…"): BM25 gives them almost no weight, yet
each one makes FTS5 score nearly every chunk; without them a query is about 4x faster at 100,000
chunks (docs/benchmarks.md) and SciFact's nDCG@10 moves up slightly.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from searchapp.progress import NO_PROGRESS, Progress
from searchapp.store.checks import Check
from searchapp.store.database import Database
from searchapp.store.keywords.analyzer import query_terms
from searchapp.store.keywords.base import KeywordStore
from searchapp.store.keywords.tantivy_index import TantivyKeywords, log_position
from searchapp.store.schema import Chunk


def fts_query(query: str) -> str | None:
    """The FTS5 MATCH expression for a user's query, or None when it has no words."""
    terms = query_terms(query)
    if not terms:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


class Fts5Keywords(KeywordStore):
    """SQLite FTS5, BM25, exact in every transaction."""

    def search(self, session: Session, query: str, limit: int) -> list[tuple[int, float]]:
        expression = fts_query(query)
        if expression is None:
            return []
        rows = session.execute(
            text(
                "SELECT rowid, -rank FROM chunks_fts "
                "WHERE chunks_fts MATCH :expression ORDER BY rank LIMIT :limit"
            ),
            {"expression": expression, "limit": limit},
        )
        return [(int(chunk_id), float(score)) for chunk_id, score in rows]

    def count(self, session: Session) -> int:
        return session.execute(text("SELECT count(*) FROM chunks_fts")).scalar() or 0

    def rebuild(self, session: Session) -> None:
        session.execute(text("DELETE FROM chunks_fts"))
        session.execute(
            text(
                "INSERT INTO chunks_fts(rowid, title, text) SELECT chunks.id, documents.title, "
                "chunks.text FROM chunks JOIN documents ON documents.id = chunks.document_id"
            )
        )


class SqliteKeywords(KeywordStore):
    """FTS5 (``exact``) and the Tantivy index in the home's index folder (``fast``): Tantivy
    answers when it holds exactly the chunks of the snapshot being searched, FTS5 otherwise."""

    def __init__(self, index_dir: Path) -> None:
        self.exact = Fts5Keywords()
        self.fast = TantivyKeywords(index_dir)

    def search(self, session: Session, query: str, limit: int) -> list[tuple[int, float]]:
        if self.fast.matches(session):
            return self.fast.search(query, limit)
        return self.exact.search(session, query, limit)

    def count(self, session: Session) -> int:
        return self.exact.count(session)

    def rebuild(self, session: Session) -> None:
        self.exact.rebuild(session)  # the Tantivy index follows at the next catch-up

    def catch_up(self, db: Database, progress: Progress = NO_PROGRESS) -> int:
        return self.fast.catch_up(db, progress)

    def check(self, session: Session, chunks: int) -> list[Check]:
        return [*super().check(session, chunks), self._fast_check(session, chunks)]

    def _fast_check(self, session: Session, chunks: int) -> Check:
        """Derived, so behind or missing is not a fault (FTS5 answers meanwhile, and the next
        index run catches up); a count that disagrees at the position it claims is."""
        position, wanted = self.fast.position(), log_position(session)
        name = "fast keyword index"
        if position is None:
            return Check(name, True, "not built yet: the next index run (or --repair) builds it")
        if position != wanted:
            behind = wanted - position
            return Check(name, True, f"{behind} chunk changes behind: FTS5 answers until the "
                                     "next index run (or --repair) applies them")  # fmt: skip
        held = self.fast.count()
        return Check(name, held == chunks, f"{held} chunks of {chunks}, up to date")

    def repair(self, db: Database) -> list[str]:
        """FTS5 rebuilt where its count disagrees; the Tantivy index caught up (missing or
        unreadable: built again), and rebuilt where it is up to date by its position yet does
        not hold the same chunks."""
        done = super().repair(db)
        if changed := self.fast.catch_up(db):
            done.append(f"fast keyword index caught up ({changed} chunks written or deleted)")
        with db.read() as session:
            chunks = session.scalar(select(func.count(Chunk.id))) or 0
        if self.fast.count() != chunks:
            done.append(f"fast keyword index rebuilt ({self.fast.rebuild(db)} chunks)")
        return done
