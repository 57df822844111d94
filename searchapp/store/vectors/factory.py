"""The vector store of a database: the one place that asks which kind of database a home has."""

from __future__ import annotations

from pathlib import Path

from searchapp.store.database import Database
from searchapp.store.vectors.base import VectorStore


def vector_store(db: Database, index_dir: Path) -> VectorStore:
    """pgvector on PostgreSQL (the rows are the index); FAISS files in ``index_dir`` elsewhere."""
    if db.engine.dialect.name == "postgresql":
        from searchapp.store.vectors.pgvector import PgVectorStore

        return PgVectorStore()
    from searchapp.store.vectors.faiss import FaissFiles

    return FaissFiles(index_dir)
