"""Keyword search: SQLite FTS5 with BM25, over the same chunks the vectors cover.

User text never reaches FTS5 as syntax: every term is quoted and the terms are OR-ed, so quotes,
``AND``, ``NEAR``, ``*`` or unbalanced parentheses are searched as words and can never raise.
Stopwords are left out ("how do the bees…"): BM25 gives them almost no weight, yet each one makes
FTS5 score nearly every chunk; without them a query is about 4x faster at 100,000 chunks
(docs/benchmarks.md) and SciFact's nDCG@10 moves up slightly.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from searchapp.snippets import content_terms

MAX_QUERY_TERMS = 64


def fts_query(query: str) -> str | None:
    """The FTS5 MATCH expression for a user's query, or None when it has no words."""
    terms = content_terms(query)[:MAX_QUERY_TERMS]
    if not terms:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)


def keyword_search(session: Session, query: str, limit: int) -> list[tuple[int, float]]:
    """Best chunks by BM25 as (chunk id, score), higher scores first."""
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
