"""The interface of a vector store, and the SQL every backend reads its vectors from.

The ``embeddings`` table is the truth in every backend: one row per (generation, chunk) with the
chunk's vector. A backend makes it searchable (a FAISS file per generation, or pgvector's HNSW
index over the rows), keeps that up to date for a writer, checks and repairs it, and removes what
it leaves behind. Nothing outside ``factory`` asks which backend a home has.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from searchapp.store.checks import Check
from searchapp.store.database import Database
from searchapp.store.schema import Embedding, IndexGeneration

log = logging.getLogger(__name__)

_FETCH_BATCH = 500


class Vectors(Protocol):
    """The searchable vectors of one generation, keyed by chunk id.

    ``session`` is the caller's snapshot, for a backend that reads the vectors where SQL keeps
    them (pgvector); one that holds them in memory (a FAISS file, loaded) leaves it unused."""

    dimension: int

    def __len__(self) -> int: ...

    @property
    def kind(self) -> str:
        """How it is searched ("flat", "ivf", "hnsw"), as recorded with the generation."""
        ...

    @property
    def params(self) -> dict[str, int]:
        """What a search depends on (an IVF index's lists and probe), as recorded."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Hold these newly committed vectors (the writer's own, before its next commit)."""
        ...

    def remove(self, ids: Iterable[int]) -> int:
        """Stop holding these chunks; returns how many were held."""
        ...

    def search(
        self, queries: np.ndarray, k: int, *, session: Session | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, chunk ids) per query, padded with id -1."""
        ...

    def vector(self, chunk_id: int, *, session: Session | None = None) -> np.ndarray | None: ...

    def vectors_of(
        self, chunk_ids: Iterable[int], *, session: Session | None = None
    ) -> dict[int, np.ndarray]: ...


@dataclass(frozen=True)
class SyncReport:
    """What opening a generation's vectors had to do to agree with SQL."""

    rebuilt: bool
    added: int
    removed: int
    reason: str = ""


class VectorStore(ABC):
    """A home's generations' vectors: opened for search, kept up to date by the writer, checked,
    repaired, and dropped with their generation."""

    @abstractmethod
    def open(
        self, session: Session, generation: IndexGeneration, dimension: int
    ) -> tuple[Vectors, SyncReport]:
        """The generation's vectors, agreeing exactly with SQL's rows in ``session``'s snapshot."""

    @abstractmethod
    def reconcile(
        self, session: Session, vectors: Vectors, generation_id: int, live: np.ndarray | None = None
    ) -> tuple[int, int]:
        """Follow rows committed since ``vectors`` were opened; returns (added, removed)."""

    @abstractmethod
    def commit(self, db: Database, generation: IndexGeneration, vectors: Vectors) -> list[Path]:
        """Make what the writer added durable and searchable by every process, and record it with
        the generation; returns the files it deleted as no longer needed."""

    @abstractmethod
    def check(self, generation: IndexGeneration, dimension: int, live: np.ndarray) -> Check:
        """Is the generation's searchable form sound and does it hold exactly ``live``?"""

    def drop(self, session: Session, generation_id: int) -> None:
        """Delete a generation's vectors (in the caller's transaction)."""
        session.execute(delete(Embedding).where(Embedding.generation_id == generation_id))

    def leftovers(self, session: Session) -> list[Path]:
        """Files of this store that no generation names (a save that died, a dropped
        generation's); none where the store keeps no files."""
        return []

    def remove_leftovers(self, db: Database) -> list[Path]:
        """Delete ``leftovers`` (call with the writer lock held, outside a transaction)."""
        with db.read() as session:
            leftovers = self.leftovers(session)
        removed = []
        for path in leftovers:
            try:
                path.unlink(missing_ok=True)
                removed.append(path)
            except OSError as error:  # tidying up; never a reason to fail a run that committed
                log.warning("Could not remove the leftover index file %s: %s", path, error)
        return removed

    def adopt(self, session: Session) -> None:
        """Make this store's own structures for generations whose rows were copied in from
        another store (``searchapp migrate``): the files they name belong to the source."""
        session.execute(IndexGeneration.__table__.update().values(file_name=None, checksum=None))


def live_chunk_ids(session: Session, generation_id: int) -> np.ndarray:
    """The chunk ids that have a vector in this generation, in this snapshot."""
    rows = session.execute(
        select(Embedding.chunk_id).where(Embedding.generation_id == generation_id)
    ).scalars()
    return np.fromiter(rows, dtype=np.int64)


def fetch_vectors(
    session: Session, generation_id: int, chunk_ids: np.ndarray, dimension: int
) -> tuple[np.ndarray, np.ndarray]:
    """The stored vectors of ``chunk_ids`` in this generation, as (ids, matrix)."""
    found_ids: list[int] = []
    blobs: list[bytes] = []
    for start in range(0, len(chunk_ids), _FETCH_BATCH):
        batch = [int(i) for i in chunk_ids[start : start + _FETCH_BATCH]]
        for chunk_id, blob in session.execute(
            select(Embedding.chunk_id, Embedding.vector).where(
                Embedding.generation_id == generation_id, Embedding.chunk_id.in_(batch)
            )
        ):
            found_ids.append(chunk_id)
            blobs.append(blob)
    matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), dimension)
    return np.asarray(found_ids, dtype=np.int64), matrix
