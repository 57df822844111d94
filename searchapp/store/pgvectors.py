"""The vectors of one generation on PostgreSQL: the ``embeddings`` rows themselves, searched by
pgvector.

There is no file: ``embeddings.vector`` is a pgvector ``vector`` column on PostgreSQL (see
``schema.VectorBlob``), so a committed row is searchable by every process at once, on any machine.
Each generation gets a partial HNSW index (cosine) over its rows, on the expression
``vector::vector(D)`` since the column has no fixed dimension; a search repeats that expression
so that the planner uses the index, and widens ``hnsw.ef_search`` to the depth it asks for, for
its own transaction only (``SET LOCAL``: right on pooled connections).

The FAISS side's interface (``VectorIndex``) is kept where it matters: ``search``, ``vector``,
``len``; ``add`` and ``remove`` have nothing to do, since the rows are the index.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from searchapp.store.schema import Embedding

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
        assert session is not None, "a PostgreSQL search reads in the caller's session"
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
        assert session is not None, "a PostgreSQL search reads in the caller's session"
        rows = session.execute(
            select(Embedding.chunk_id, Embedding.vector).where(
                Embedding.generation_id == self.generation_id,
                Embedding.chunk_id.in_([int(i) for i in chunk_ids]),
            )
        )
        return {chunk_id: np.frombuffer(blob, dtype=np.float32) for chunk_id, blob in rows}
