"""Keyword search over the same chunks the vectors cover: one interface, one engine per database.

- SQLite: FTS5 with BM25 (``Fts5Keywords``), over the ``chunks_fts`` table the triggers of
  migration 0001 keep in step with ``chunks``; and beside it a Tantivy index in the home
  (``searchapp.store.tantivy_keywords``) that answers the same queries many times faster whenever
  it holds exactly the chunks being searched (``SqliteKeywords``).
- PostgreSQL: full-text search (``PostgresKeywords``) over ``chunk_terms``, a ``tsvector`` per chunk
  (its document's title and its text, English stemming) and its length, with a GIN index, kept in
  step by the trigger of migrations 0003 and 0004; ranked by BM25 like FTS5.

User text never reaches either engine as syntax: each term is quoted and the terms are OR-ed, so
quotes, ``AND``, ``NEAR``, ``*``, ``!`` or unbalanced parentheses are searched as words and can
never raise. Stopwords are left out ("how do the bees…"): BM25 gives them almost no weight, yet
each one makes FTS5 score nearly every chunk; without them a query is about 4x faster at 100,000
chunks (docs/benchmarks.md) and SciFact's nDCG@10 moves up slightly.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
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
    """PostgreSQL full-text search, ranked by BM25 as FTS5 ranks (k1 1.2, b 0.75, FTS5's idf):
    the query's lexemes (English stemming and stopwords, by ``to_tsquery``) are looked up in the
    inverted index ``chunk_postings``, and one statement scores the chunks holding any of them
    from each lexeme's count in the chunk, the chunk's length in tokens (kept in the posting,
    migration 0006: read from an index alone) and the lexeme's document frequency. The
    collection's size and mean length are read again only when the store's revision moves."""

    K1, B = 1.2, 0.75

    def __init__(self) -> None:
        self._stats: tuple[int, int, float] | None = None  # (revision, chunks, mean tokens)

    def _collection(self, session: Session) -> tuple[int, float]:
        revision = session.execute(text("SELECT revision FROM store_state")).scalar() or 0
        if self._stats is None or self._stats[0] != revision:
            chunks, mean = session.execute(
                text("SELECT count(*), coalesce(avg(tokens), 0) FROM chunk_terms")
            ).one()
            self._stats = (revision, int(chunks), float(mean) or 1.0)
        return self._stats[1], self._stats[2]

    def search(self, session: Session, query: str, limit: int) -> list[tuple[int, float]]:
        expression = tsquery(query)
        if expression is None:
            return []
        lexemes = session.execute(
            text("SELECT querytree(to_tsquery('english', :expression))"),
            {"expression": expression},
        ).scalar()
        words = sorted(set(_lexemes(lexemes or "")))
        if not words:  # stopwords only
            return []
        chunks, mean = self._collection(session)
        found = dict.fromkeys(words, 0) | dict(
            session.execute(
                text(
                    "SELECT lexeme, count(*) FROM chunk_postings "
                    "WHERE lexeme = ANY(CAST(:words AS text[])) GROUP BY lexeme"
                ),
                {"words": words},
            ).all()
        )
        idf = [max(math.log((chunks - found[w] + 0.5) / (found[w] + 0.5)), 1e-6) for w in words]
        rows = session.execute(
            text(
                "WITH q(lexeme, idf) AS "
                "(SELECT * FROM unnest(CAST(:words AS text[]), CAST(:idf AS float8[]))) "
                "SELECT p.chunk_id, sum(q.idf * p.tf * (:k1 + 1) / "
                "(p.tf + :k1 * (1 - :b + :b * p.tokens / :mean))) AS score "
                "FROM q JOIN chunk_postings AS p ON p.lexeme = q.lexeme "
                "GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT :limit"
            ),
            {"words": words, "idf": idf, "k1": self.K1, "b": self.B, "mean": mean,
             "limit": limit},
        )  # fmt: skip
        return [(int(chunk_id), float(score)) for chunk_id, score in rows]

    def count(self, session: Session) -> int:
        return session.execute(text("SELECT count(*) FROM chunk_terms")).scalar() or 0

    def rebuild(self, session: Session) -> None:
        session.execute(text("DELETE FROM chunk_postings"))
        session.execute(text("DELETE FROM chunk_terms"))
        session.execute(
            text(
                "INSERT INTO chunk_terms (chunk_id, terms) SELECT c.id, "
                "to_tsvector('english', coalesce(d.title, '') || ' ' || c.text) "
                "FROM chunks AS c JOIN documents AS d ON d.id = c.document_id"
            )
        )
        session.execute(
            text(
                "UPDATE chunk_terms SET tokens = "
                "(SELECT coalesce(sum(cardinality(positions)), 0) FROM unnest(terms))"
            )
        )
        session.execute(
            text(
                "INSERT INTO chunk_postings (lexeme, chunk_id, tf, tokens) SELECT u.lexeme, "
                "t.chunk_id, cardinality(u.positions), t.tokens "
                "FROM chunk_terms AS t, unnest(t.terms) AS u"
            )
        )


def _lexemes(querytree: str) -> list[str]:
    """The lexemes of a normalised tsquery's text ("'bee' | 'mite'")."""
    return [match.replace("''", "'") for match in re.findall(r"'((?:[^']|'')*)'", querytree)]


class SqliteKeywords:
    """FTS5, exact in every transaction, and the Tantivy index, fast: Tantivy answers when it
    holds exactly the chunks of the snapshot being searched, FTS5 otherwise (see
    ``searchapp.store.tantivy_keywords``)."""

    def __init__(self, index_dir: Path) -> None:
        from searchapp.store.tantivy_keywords import TantivyKeywords

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


def keyword_index(dialect: str, index_dir: Path | None = None) -> KeywordIndex:
    """The keyword engine of a database dialect (``Database.engine.dialect.name``); on SQLite
    with the home's index folder, FTS5 with the fast index beside it."""
    if dialect == "postgresql":
        return PostgresKeywords()
    return SqliteKeywords(index_dir) if index_dir is not None else Fts5Keywords()
