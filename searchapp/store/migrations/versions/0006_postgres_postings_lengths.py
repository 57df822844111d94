"""PostgreSQL only: each posting carries its chunk's length, and an index covers what BM25 reads.

``PostgresKeywords`` scored a query by joining each posting to ``chunk_terms`` for its chunk's
length: one lookup per posting, 8 ms of a SciFact query. With the length in the posting and an
index on ``lexeme`` that includes ``chunk_id``, ``tf`` and ``tokens``, the postings of a query's
lexemes are read from the index alone: 2 ms (docs/SCALING.md). The trigger of 0004 now fills the
length too.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TERMS = "to_tsvector('english', coalesce(d.title, '') || ' ' || c.text)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE chunk_postings ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0")
    op.execute(
        "UPDATE chunk_postings AS p SET tokens = t.tokens FROM chunk_terms AS t "
        "WHERE t.chunk_id = p.chunk_id"
    )
    op.execute(
        "CREATE INDEX ix_chunk_postings_scoring ON chunk_postings (lexeme) "
        "INCLUDE (chunk_id, tf, tokens)"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION chunk_terms_insert() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE words tsvector; length integer; BEGIN "
        f"SELECT {TERMS} INTO words FROM (SELECT NEW.text AS text) AS c "
        "JOIN documents AS d ON d.id = NEW.document_id; "
        "SELECT coalesce(sum(cardinality(positions)), 0) INTO length FROM unnest(words); "
        "INSERT INTO chunk_terms (chunk_id, terms, tokens) VALUES (NEW.id, words, length); "
        "INSERT INTO chunk_postings (lexeme, chunk_id, tf, tokens) "
        "SELECT lexeme, NEW.id, cardinality(positions), length FROM unnest(words); "
        "RETURN NEW; END $$"
    )


def downgrade() -> None:
    raise NotImplementedError("searchapp does not downgrade a home: restore a backup instead")
