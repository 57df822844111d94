"""The vector store of a PostgreSQL home: the ``embeddings`` rows themselves, searched by pgvector.

There is no file: ``embeddings.vector`` is a pgvector ``vector`` column on PostgreSQL (see
``schema.VectorBlob``), so a committed row is searchable by every process at once, on any machine.
Each generation gets a partial HNSW index (cosine) over its rows, on the expression
``vector::vector(D)`` since the column has no fixed dimension; a search repeats that expression
so that the planner uses the index, and widens ``hnsw.ef_search`` to the depth it asks for, for
its own transaction only (``SET LOCAL``: right on pooled connections).

``add`` and ``remove`` have nothing to do, since the rows are the index; there are no files to
check, save or leave behind.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from searchapp.errors import CorruptIndexError
from searchapp.store.checks import Check
from searchapp.store.database import Database
from searchapp.store.schema import Embedding, IndexGeneration, ModelVersion
from searchapp.store.vectors.base import SyncReport, Vectors, VectorStore

MAX_EF_SEARCH = 1000


def hnsw_index_name(generation_id: int) -> str:
    return f"ix_embeddings_hnsw_{int(generation_id)}"


def create_hnsw_index(session: Session, generation_id: int, dimension: int) -> None:
    """The generation's HNSW index, if it has none yet (built over the rows already there, and
    kept up to date as rows are added)."""
    session.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {hnsw_index_name(generation_id)} ON embeddings "
            f"USING hnsw ((vector::vector({int(dimension)})) vector_cosine_ops) "
            f"WHERE generation_id = {int(generation_id)}"
        )
    )


def drop_hnsw_index(session: Session, generation_id: int) -> None:
    session.execute(text(f"DROP INDEX IF EXISTS {hnsw_index_name(generation_id)}"))


class PgVectors:
    """A generation's vectors in PostgreSQL; every call reads in the caller's session."""

    kind = "hnsw"

    def __init__(self, generation_id: int, dimension: int, count: int) -> None:
        self.generation_id = int(generation_id)
        self.dimension = int(dimension)
        self.count = count  # as of the caller's snapshot; only says whether there is any
        self._expression = f"vector::vector({self.dimension})"

    def __len__(self) -> int:
        return self.count

    @property
    def params(self) -> dict[str, int]:
        return {}

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Nothing to do: the committed rows are the index."""

    def remove(self, ids: Iterable[int]) -> int:
        """Nothing to do: deleted rows leave the index with them."""
        return 0

    def search(
        self, queries: np.ndarray, k: int, *, session: Session | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, chunk ids), each ``len(queries) x k``, padded with -1 ids like FAISS."""
        session = _required(session)
        session.execute(text(f"SET LOCAL hnsw.ef_search = {min(max(40, k), MAX_EF_SEARCH)}"))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        statement = text(
            f"SELECT chunk_id, 1 - ({self._expression} <=> CAST(:q AS vector)) AS score "
            f"FROM embeddings WHERE generation_id = {self.generation_id} "
            f"ORDER BY {self._expression} <=> CAST(:q AS vector) LIMIT :k"
        )
        for row, query in enumerate(np.asarray(queries, dtype=np.float32)):
            literal = "[" + ",".join(map(repr, query.tolist())) + "]"
            found = session.execute(statement, {"q": literal, "k": k}).all()
            for column, (chunk_id, score) in enumerate(found):
                ids[row, column], scores[row, column] = chunk_id, score
        return scores, ids

    def vector(self, chunk_id: int, *, session: Session | None = None) -> np.ndarray | None:
        return self.vectors_of([chunk_id], session=session).get(int(chunk_id))

    def vectors_of(
        self, chunk_ids: Iterable[int], *, session: Session | None = None
    ) -> dict[int, np.ndarray]:
        """The vectors of several chunks, in one statement (those the generation holds)."""
        rows = _required(session).execute(
            select(Embedding.chunk_id, Embedding.vector).where(
                Embedding.generation_id == self.generation_id,
                Embedding.chunk_id.in_([int(i) for i in chunk_ids]),
            )
        )
        return {chunk_id: np.frombuffer(blob, dtype=np.float32) for chunk_id, blob in rows}


def _required(session: Session | None) -> Session:
    if session is None:
        raise TypeError("a PostgreSQL search reads in the caller's session: pass session=")
    return session


class PgVectorStore(VectorStore):
    """Each generation's vectors as rows of ``embeddings``, with an HNSW index per generation."""

    def open(
        self, session: Session, generation: IndexGeneration, dimension: int
    ) -> tuple[PgVectors, SyncReport]:
        vectors = PgVectors(generation.id, dimension, _any_vector(session, generation.id))
        return vectors, SyncReport(rebuilt=False, added=0, removed=0)

    def reconcile(
        self, session: Session, vectors: Vectors, generation_id: int, live: np.ndarray | None = None
    ) -> tuple[int, int]:
        """Nothing to follow: the rows are the index. Only whether there is any is refreshed."""
        assert isinstance(vectors, PgVectors), "pgvector holds PgVectors vectors"
        vectors.count = _any_vector(session, generation_id)
        return 0, 0

    def commit(self, db: Database, generation: IndexGeneration, vectors: Vectors) -> list[Path]:
        """Make sure the generation has its HNSW index, and record its count."""
        with db.write() as session:
            db.serialize(session)  # writers side by side: one makes the index, once
            row = session.get(IndexGeneration, generation.id)
            if row is None:
                raise CorruptIndexError(f"generation {generation.id} was deleted while written")
            create_hnsw_index(session, row.id, vectors.dimension)
            count = session.scalar(select(func.count()).where(Embedding.generation_id == row.id))
            row.vector_count = count or 0
            row.index_kind, row.index_params = PgVectors.kind, "{}"
        if isinstance(vectors, PgVectors):
            vectors.count = row.vector_count
        return []

    def check(self, generation: IndexGeneration, dimension: int, live: np.ndarray) -> Check:
        return Check("vector index", True, f"{len(live)} vectors searched in PostgreSQL")

    def drop(self, session: Session, generation_id: int) -> None:
        super().drop(session, generation_id)
        drop_hnsw_index(session, generation_id)

    def adopt(self, session: Session) -> None:
        """Each copied generation gets its HNSW index."""
        super().adopt(session)
        generations = session.execute(
            select(IndexGeneration.id, ModelVersion.dimension).join(
                ModelVersion, IndexGeneration.model_version_id == ModelVersion.id
            )
        ).all()
        for generation_id, dimension in generations:
            create_hnsw_index(session, generation_id, dimension)


def _any_vector(session: Session, generation_id: int) -> int:
    """1 if the generation has a vector, else 0 (cheap: what an empty-index check needs)."""
    found = session.execute(
        select(Embedding.chunk_id).where(Embedding.generation_id == generation_id).limit(1)
    ).first()
    return int(found is not None)
