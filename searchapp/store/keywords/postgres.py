"""The keyword store of a PostgreSQL home: BM25 over an inverted index of the chunks' words.

``chunk_postings`` holds, for each word of a chunk (made by ``analyzer.chunk_words``, as FTS5 and
the Tantivy index make them), its count in the chunk and the chunk's length in words;
``chunk_terms`` the chunk's length once, for the collection's size and mean length. The writer
adds both in the transaction that inserts the chunks (``add``); deleting a chunk deletes them (the
foreign keys cascade). A query's words are looked up in the postings (an index covers what BM25
reads: migration 0006) and one statement scores the chunks holding any of them as FTS5 scores
(k1 1.2, b 0.75, FTS5's idf), so that every mode ranks as it does on SQLite.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session

from searchapp.store.database import store_revision
from searchapp.store.keywords.analyzer import chunk_words, query_words
from searchapp.store.keywords.base import ChunkText, KeywordStore
from searchapp.store.schema import Chunk, Document

_BATCH = 2_000


class PostgresKeywords(KeywordStore):
    """BM25 over ``chunk_postings``. The collection's size and mean length are read again only
    when the store's revision moves."""

    K1, B = 1.2, 0.75

    def __init__(self) -> None:
        self._stats: tuple[int, int, float] | None = None  # (revision, chunks, mean words)

    def _collection(self, session: Session) -> tuple[int, float]:
        revision = store_revision(session)
        if self._stats is None or self._stats[0] != revision:
            chunks, mean = session.execute(
                text("SELECT count(*), coalesce(avg(tokens), 0) FROM chunk_terms")
            ).one()
            self._stats = (revision, int(chunks), float(mean) or 1.0)
        return self._stats[1], self._stats[2]

    def search(self, session: Session, query: str, limit: int) -> list[tuple[int, float]]:
        terms = query_words(query)
        if not terms:
            return []
        chunks, mean = self._collection(session)
        found = dict.fromkeys(terms, 0) | dict(
            session.execute(
                text(
                    "SELECT lexeme, count(*) FROM chunk_postings "
                    "WHERE lexeme = ANY(CAST(:words AS text[])) GROUP BY lexeme"
                ),
                {"words": sorted(set(terms))},
            ).all()
        )
        idf = [max(math.log((chunks - found[w] + 0.5) / (found[w] + 0.5)), 1e-6) for w in terms]
        rows = session.execute(
            text(
                "WITH q(lexeme, idf) AS "
                "(SELECT * FROM unnest(CAST(:words AS text[]), CAST(:idf AS float8[]))) "
                "SELECT p.chunk_id, sum(q.idf * p.tf * (:k1 + 1) / "
                "(p.tf + :k1 * (1 - :b + :b * p.tokens / :mean))) AS score "
                "FROM q JOIN chunk_postings AS p ON p.lexeme = q.lexeme "
                "GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT :limit"
            ),
            {"words": terms, "idf": idf, "k1": self.K1, "b": self.B, "mean": mean,
             "limit": limit},
        )  # fmt: skip
        return [(int(chunk_id), float(score)) for chunk_id, score in rows]

    def count(self, session: Session) -> int:
        return session.execute(text("SELECT count(*) FROM chunk_terms")).scalar() or 0

    def add(self, session: Session, chunks: Sequence[ChunkText]) -> None:
        add_postings(session.connection(), chunks)

    def rebuild(self, session: Session) -> None:
        rebuild_postings(session.connection())

    def adopt(self, session: Session) -> None:
        self.rebuild(session)


def add_postings(connection: Connection, chunks: Sequence[ChunkText]) -> None:
    """Write the words of ``chunks`` (just inserted) by COPY, in the connection's transaction."""
    if not chunks:
        return
    raw = connection.connection.driver_connection
    lengths = []
    with raw.cursor() as cursor:
        with cursor.copy("COPY chunk_postings (lexeme, chunk_id, tf, tokens) FROM STDIN") as copy:
            for chunk_id, title, body in chunks:
                found = chunk_words(title, body)
                lengths.append((chunk_id, len(found)))
                for word, tf in Counter(found).items():
                    copy.write_row((word, chunk_id, tf, len(found)))
        with cursor.copy("COPY chunk_terms (chunk_id, tokens) FROM STDIN") as copy:
            for row in lengths:
                copy.write_row(row)


def rebuild_postings(connection: Connection) -> int:
    """Every chunk's words again, from the chunks; returns how many chunks."""
    connection.execute(text("DELETE FROM chunk_postings"))
    connection.execute(text("DELETE FROM chunk_terms"))
    done = last = 0
    while True:
        rows = connection.execute(
            select(Chunk.id, Document.title, Chunk.text)
            .join(Document, Document.id == Chunk.document_id)
            .where(Chunk.id > last)
            .order_by(Chunk.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return done
        add_postings(connection, [tuple(row) for row in rows])  # type: ignore[misc]
        done, last = done + len(rows), rows[-1][0]
