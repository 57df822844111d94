"""Keyword search over the same chunks the vectors cover: one interface, one engine per database.

- SQLite: FTS5 with BM25 (``Fts5Keywords``), over the ``chunks_fts`` table the triggers of
  migration 0001 keep in step with ``chunks``.
- PostgreSQL: full-text search (``PostgresKeywords``) over ``chunk_terms``, a ``tsvector`` per chunk
  (its document's title and its text, English stemming) with a GIN index, kept in step by the
  trigger of migration 0003; ranked by ``ts_rank``.

User text never reaches either engine as syntax: each term is quoted and the terms are OR-ed, so
quotes, ``AND``, ``NEAR``, ``*``, ``!`` or unbalanced parentheses are searched as words and can
never raise. Stopwords are left out ("how do the bees…"): BM25 gives them almost no weight, yet
each one makes FTS5 score nearly every chunk; without them a query is about 4x faster at 100,000
chunks (docs/benchmarks.md) and SciFact's nDCG@10 moves up slightly.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import text
from sqlalchemy.orm import Session

from searchapp.snippets import content_terms

MAX_QUERY_TERMS = 64


class KeywordIndex(Protocol):
    """Ranks chunks for a user's query by their words."""

    def search(self, session: Session, query: str, limit: int) -> list[tuple[int, float]]:
        """Best chunks as (chunk id, score), higher scores first; none for a query of no words."""
        ...

    def count(self, session: Session) -> int:
        """Chunks the keyword index holds (a health check compares it with the chunks)."""
        ...

    def rebuild(self, session: Session) -> None:
        """Index every chunk's words again from the chunks themselves (repair)."""
        ...


def fts_query(query: str) -> str | None:
    """The FTS5 MATCH expression for a user's query, or None when it has no words."""
    terms = content_terms(query)[:MAX_QUERY_TERMS]
    if not terms:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def tsquery(query: str) -> str | None:
    """The ``to_tsquery`` text for a user's query (quoted lexemes, OR-ed), or None."""
    terms = content_terms(query)[:MAX_QUERY_TERMS]
    if not terms:
        return None
    return " | ".join("'" + term.replace("'", "''").replace("\\", "\\\\") + "'" for term in terms)


class Fts5Keywords:
    """SQLite FTS5, BM25."""

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


class PostgresKeywords:
    """PostgreSQL full-text search: ``ts_rank`` with length normalisation (1: divided by one plus
    the logarithm of the chunk's length, as BM25 favours short matches)."""

    def search(self, session: Session, query: str, limit: int) -> list[tuple[int, float]]:
        expression = tsquery(query)
        if expression is None:
            return []
        rows = session.execute(
            text(
                "SELECT chunk_id, ts_rank(terms, q, 1) AS score "
                "FROM chunk_terms, to_tsquery('english', :expression) AS q "
                "WHERE terms @@ q ORDER BY score DESC, chunk_id LIMIT :limit"
            ),
            {"expression": expression, "limit": limit},
        )
        return [(int(chunk_id), float(score)) for chunk_id, score in rows]

    def count(self, session: Session) -> int:
        return session.execute(text("SELECT count(*) FROM chunk_terms")).scalar() or 0

    def rebuild(self, session: Session) -> None:
        session.execute(text("DELETE FROM chunk_terms"))
        session.execute(
            text(
                "INSERT INTO chunk_terms (chunk_id, terms) SELECT c.id, "
                "to_tsvector('english', coalesce(d.title, '') || ' ' || c.text) "
                "FROM chunks AS c JOIN documents AS d ON d.id = c.document_id"
            )
        )


def keyword_index(dialect: str) -> KeywordIndex:
    """The keyword engine of a database dialect (``Database.engine.dialect.name``)."""
    return PostgresKeywords() if dialect == "postgresql" else Fts5Keywords()
