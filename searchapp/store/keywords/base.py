"""The interface of a keyword store.

SQL's ``chunks`` are the truth in every backend. A backend keeps their words searchable (in the
writer's own transaction, by triggers or by ``add``; a derived index after the commit, by
``catch_up``), ranks chunks by BM25 with FTS5's weights, checks that it holds every chunk and
repairs itself from SQL. Nothing outside ``factory`` asks which backend a home has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from searchapp.progress import NO_PROGRESS, Progress
from searchapp.store.checks import Check
from searchapp.store.database import Database
from searchapp.store.schema import Chunk

# A chunk as a keyword store indexes it: (chunk id, its document's title, its text).
ChunkText = tuple[int, str | None, str]


class KeywordStore(ABC):
    """Ranks chunks for a user's query by their words."""

    @abstractmethod
    def search(self, session: Session, query: str, limit: int) -> list[tuple[int, float]]:
        """Best chunks as (chunk id, score), higher scores first; none for a query of no words."""

    @abstractmethod
    def count(self, session: Session) -> int:
        """Chunks whose words the store holds (a health check compares it with the chunks)."""

    @abstractmethod
    def rebuild(self, session: Session) -> None:
        """Index every chunk's words again from the chunks themselves (in a write transaction)."""

    def add(self, session: Session, chunks: Sequence[ChunkText]) -> None:
        """Index chunks just inserted, in the writer's transaction (nothing to do where triggers
        do it)."""
        return None

    def catch_up(self, db: Database, progress: Progress = NO_PROGRESS) -> int:
        """Bring derived indexes up to date with what is committed (the writer lock held);
        returns the chunks written or deleted."""
        return 0

    def check(self, session: Session, chunks: int) -> list[Check]:
        words = self.count(session)
        return [Check("keyword index", words == chunks, f"{words} rows for {chunks} chunks")]

    def repair(self, db: Database) -> list[str]:
        """Rebuild from SQL what disagrees with it (the writer lock held); returns what was done."""
        with db.write() as session:
            chunks = session.scalar(select(func.count(Chunk.id))) or 0
            if self.count(session) == chunks:
                return []
            self.rebuild(session)
        return [f"keyword index rebuilt ({chunks} chunks)"]

    def adopt(self, session: Session) -> None:
        """Index chunks copied in from another store (``searchapp migrate``; nothing to do where
        triggers did it as the rows arrived)."""
        return None
