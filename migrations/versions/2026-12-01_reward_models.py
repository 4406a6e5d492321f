"""reward models: named score files (reward_models) and their scores per response (reward_model_scores)

Revision ID: 0012_reward_models
Revises: 0011_reference_labels
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_reward_models"
down_revision: str | None = "0011_reference_labels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reward_models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("filename", sa.String(length=500), nullable=False),
        sa.Column("scored", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("reward_models_project_id_fkey"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("reward_models_created_by_id_fkey"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("reward_models_pkey")),
        sa.UniqueConstraint("project_id", "name", name=op.f("reward_models_project_id_name_key")),
    )
    op.create_table(
        "reward_model_scores",
        sa.Column("reward_model_id", sa.Integer(), nullable=False),
        sa.Column("response_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reward_model_id"], ["reward_models.id"], name=op.f("reward_model_scores_reward_model_id_fkey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["response_id"], ["responses.id"], name=op.f("reward_model_scores_response_id_fkey"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("reward_model_id", "response_id", name=op.f("reward_model_scores_pkey")),
    )
    op.create_index("ix_reward_model_scores_response_id", "reward_model_scores", ["response_id"])


def downgrade() -> None:
    op.drop_index("ix_reward_model_scores_response_id", table_name="reward_model_scores")
    op.drop_table("reward_model_scores")
    op.drop_table("reward_models")
