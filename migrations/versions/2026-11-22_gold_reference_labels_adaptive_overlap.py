"""gold, reference labels, adaptive overlap

Revision ID: 0002_gold_reference_adaptive
Revises: 0001_initial
Create Date: 2026-11-22 11:26:49.144850
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_gold_reference_adaptive"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("adaptive_threshold", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("max_overlap", sa.Integer(), nullable=True))

    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_gold", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(
            sa.Column(
                "gold_ranking",
                sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "reference_ranking",
                sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("reference_source", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.drop_column("reference_source")
        batch_op.drop_column("reference_ranking")
        batch_op.drop_column("gold_ranking")
        batch_op.drop_column("is_gold")

    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("max_overlap")
        batch_op.drop_column("adaptive_threshold")
