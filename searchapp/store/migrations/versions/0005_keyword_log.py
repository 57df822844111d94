"""SQLite only: ``keyword_log``, the chunks added and deleted since the keyword index (Tantivy,
a folder of the home, ``searchapp.store.keywords.tantivy_index``) last caught up.

Triggers write one row per chunk inserted or deleted, in the transaction that changes the chunk;
a writer applies the rows to the keyword index, records the last ``seq`` applied in the same
Tantivy commit, and then deletes them. ``AUTOINCREMENT`` keeps ``seq`` rising after that, so the
newest ``seq`` (``sqlite_sequence``) says which state of the chunks a keyword index matches.
Tolerant (``IF NOT EXISTS``), as 0002 is: a home stamped from before migrations may have it.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE TABLE IF NOT EXISTS keyword_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "chunk_id INTEGER NOT NULL)"
    )
    op.execute(
        "CREATE TRIGGER IF NOT EXISTS keyword_log_insert AFTER INSERT ON chunks BEGIN "
        "INSERT INTO keyword_log (chunk_id) VALUES (new.id); END"
    )
    op.execute(
        "CREATE TRIGGER IF NOT EXISTS keyword_log_delete AFTER DELETE ON chunks BEGIN "
        "INSERT INTO keyword_log (chunk_id) VALUES (old.id); END"
    )


def downgrade() -> None:
    raise NotImplementedError("searchapp does not downgrade a home: restore a backup instead")
