"""A model version says which model it started from, and the prompts its texts take by role.

A home may start from any sentence-transformers model (``searchapp index --model``), and such
models come with conventions: e5 wants "query: " before a query and "passage: " before a document,
bge an instruction before queries. The version records its base model (the name or folder it was
made from) and the prompt put before each query and each document; both are part of what makes
its vectors. Existing versions started from the bundled model and take no prompts.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("base_model", sa.Text(), nullable=True))
    for name in ("query_prompt", "document_prompt"):
        op.add_column(
            "model_versions", sa.Column(name, sa.Text(), nullable=False, server_default="")
        )


def downgrade() -> None:
    raise NotImplementedError("searchapp does not downgrade a home: restore a backup instead")
