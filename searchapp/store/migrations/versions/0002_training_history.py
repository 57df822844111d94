"""Retraining that keeps its history: the pairs each version was trained and gated on, and each
version's fitted hybrid blend weight.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Homes made by development builds between releases may have these already.
    present = sa.inspect(op.get_bind())
    if not present.has_table("training_pairs"):
        _training_pairs()
    if "dense_weight" not in {c["name"] for c in present.get_columns("model_versions")}:
        op.add_column("model_versions", sa.Column("dense_weight", sa.Float(), nullable=True))


def _training_pairs() -> None:
    op.create_table(
        "training_pairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["model_version_id"], ["model_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_training_pairs_version_role",
        "training_pairs",
        ["model_version_id", "role"],
        unique=False,
    )


def downgrade() -> None:
    raise NotImplementedError("searchapp does not downgrade a home: restore a backup instead")
