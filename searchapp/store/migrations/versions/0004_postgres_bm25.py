"""PostgreSQL only: an inverted index of the chunks' words, so that keyword search ranks by BM25
as FTS5 does on SQLite (``ts_rank`` ranked SciFact 0.10 nDCG@10 lower).

``chunk_postings`` holds one row per (lexeme, chunk) with the lexeme's count in the chunk, keyed
by lexeme so that a query reads only its own terms' postings; ``chunk_terms.tokens`` is each
chunk's length. The trigger of 0003 fills both as chunks are inserted; deleting a chunk deletes
its postings (the foreign key cascades).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TERMS = "to_tsvector('english', coalesce(d.title, '') || ' ' || c.text)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE chunk_terms ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0")
    op.execute(
        "UPDATE chunk_terms SET tokens = "
        "(SELECT coalesce(sum(cardinality(positions)), 0) FROM unnest(terms))"
    )
    op.execute(
        "CREATE TABLE chunk_postings (lexeme TEXT NOT NULL, "
        "chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE, "
        "tf INTEGER NOT NULL, PRIMARY KEY (lexeme, chunk_id))"
    )
    op.execute("CREATE INDEX ix_chunk_postings_chunk ON chunk_postings (chunk_id)")
    op.execute(
        "INSERT INTO chunk_postings (lexeme, chunk_id, tf) SELECT u.lexeme, t.chunk_id, "
        "cardinality(u.positions) FROM chunk_terms AS t, unnest(t.terms) AS u"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION chunk_terms_insert() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "DECLARE words tsvector; BEGIN "
        f"SELECT {TERMS} INTO words FROM (SELECT NEW.text AS text) AS c "
        "JOIN documents AS d ON d.id = NEW.document_id; "
        "INSERT INTO chunk_terms (chunk_id, terms, tokens) VALUES (NEW.id, words, "
        "(SELECT coalesce(sum(cardinality(positions)), 0) FROM unnest(words))); "
        "INSERT INTO chunk_postings (lexeme, chunk_id, tf) "
        "SELECT lexeme, NEW.id, cardinality(positions) FROM unnest(words); "
        "RETURN NEW; END $$"
    )


def downgrade() -> None:
    raise NotImplementedError("searchapp does not downgrade a home: restore a backup instead")
