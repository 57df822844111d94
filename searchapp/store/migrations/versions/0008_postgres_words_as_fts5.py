"""PostgreSQL only: the chunks' words made as FTS5 and the Tantivy index make them.

The postings of 0004 were made by ``to_tsvector('english', …)`` in a trigger: Snowball's English
stemmer and PostgreSQL's stopword list, dropped from the chunks too, so a chunk's length and its
words differed from FTS5's, and SQLite and PostgreSQL ranked apart (hybrid nDCG@10 0.0156 lower
on a 1,000-document SciFact subset). Now the writer adds them from
``searchapp.store.keywords.analyzer`` in its own transaction; this revision drops the trigger and
the ``tsvector`` column and makes every chunk's postings again.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

from searchapp.store.keywords.postgres import rebuild_postings

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS chunk_terms_insert ON chunks")
    op.execute("DROP FUNCTION IF EXISTS chunk_terms_insert()")
    op.execute("ALTER TABLE chunk_terms DROP COLUMN terms")
    rebuild_postings(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("searchapp does not downgrade a home: restore a backup instead")
