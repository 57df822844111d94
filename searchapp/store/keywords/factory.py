"""The keyword store of a database: the one place that asks which kind of database a home has."""

from __future__ import annotations

from pathlib import Path

from searchapp.store.database import Database
from searchapp.store.keywords.base import KeywordStore


def keyword_store(db: Database, index_dir: Path | None = None) -> KeywordStore:
    """PostgreSQL's BM25 postings there; elsewhere FTS5, with the Tantivy index in ``index_dir``
    beside it when one is given (``--keyword-engine fts5`` gives none)."""
    if db.engine.dialect.name == "postgresql":
        from searchapp.store.keywords.postgres import PostgresKeywords

        return PostgresKeywords()
    from searchapp.store.keywords.sqlite import Fts5Keywords, SqliteKeywords

    return SqliteKeywords(index_dir) if index_dir is not None else Fts5Keywords()
