"""Documents say who wrote them, when, and where each page, slide or sheet starts.

New formats (e-mail, EPUB, OpenDocument, PPTX, spreadsheets, OCRed scans) record an author and a
date, split into pages, slides or sheets, and a mailbox holds many documents in one file (each
its ``part``). Existing documents get empty values; re-indexing a file fills them.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for name in ("part", "author", "doc_date"):
        op.add_column("documents", sa.Column(name, sa.Text(), nullable=False, server_default=""))
    op.add_column("documents", sa.Column("sections", sa.Text(), nullable=True))
    op.add_column("documents", sa.Column("meta", sa.Text(), nullable=True))
    op.create_index("ix_documents_path", "documents", ["path"])


def downgrade() -> None:
    raise NotImplementedError("searchapp does not downgrade a home: restore a backup instead")
