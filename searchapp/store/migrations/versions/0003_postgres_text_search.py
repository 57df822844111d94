"""PostgreSQL only: the chunks' words for full-text search (``store.keywords.postgres``).

``chunk_terms`` holds a ``tsvector`` per chunk (its document's title and its text, English
stemming) with a GIN index; a trigger fills it in the writer's transaction as chunks are inserted,
and deleting a chunk deletes its row (the foreign key cascades). SQLite's FTS5 table does the same
there (revision 0001), so on SQLite this revision does nothing.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TERMS = "to_tsvector('english', coalesce(d.title, '') || ' ' || c.text)"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE chunk_terms ("
        "chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE, "
        "terms tsvector NOT NULL)"
    )
    op.execute("CREATE INDEX ix_chunk_terms_terms ON chunk_terms USING GIN (terms)")
    op.execute(
        "CREATE FUNCTION chunk_terms_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO chunk_terms (chunk_id, terms) "
        f"SELECT c.id, {TERMS} FROM (SELECT NEW.id AS id, NEW.text AS text) AS c "
        "JOIN documents AS d ON d.id = NEW.document_id; "
        "RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER chunk_terms_insert AFTER INSERT ON chunks "
        "FOR EACH ROW EXECUTE FUNCTION chunk_terms_insert()"
    )
    op.execute(
        f"INSERT INTO chunk_terms (chunk_id, terms) SELECT c.id, {TERMS} "
        "FROM chunks AS c JOIN documents AS d ON d.id = c.document_id"
    )


def downgrade() -> None:
    raise NotImplementedError("searchapp does not downgrade a home: restore a backup instead")
