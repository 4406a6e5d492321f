"""server-side sessions, token expiry, heavy-request slots, the generated signing secret; gold prompts keep their target

Revision ID: 0006_sessions_and_limits
Revises: 0005_open_prompts_index
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_sessions_and_limits"
down_revision: str | None = "0005_open_prompts_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_GOLD_TARGET = 1_000_000


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("user_sessions_user_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("user_sessions_pkey")),
        sa.UniqueConstraint("token_hash", name=op.f("user_sessions_token_hash_key")),
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"], unique=False)
    op.create_table(
        "heavy_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("heavy_requests_user_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("heavy_requests_pkey")),
    )
    op.create_index("ix_heavy_requests_user_id_expires_at", "heavy_requests", ["user_id", "expires_at"], unique=False)
    op.create_table(
        "app_secrets",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("app_secrets_pkey")),
    )
    # Gold prompts used to carry target_overlap = 1_000_000 ("everyone"); the queue now reads is_gold for that
    # (app/annotation/overlap.py), so they get their project's overlap back (a boost they had was already lost).
    op.execute(
        "UPDATE prompts SET target_overlap = (SELECT overlap FROM projects WHERE projects.id = prompts.project_id) "
        f"WHERE is_gold AND target_overlap >= {_OLD_GOLD_TARGET}"
    )


def downgrade() -> None:
    op.execute(f"UPDATE prompts SET target_overlap = {_OLD_GOLD_TARGET} WHERE is_gold")
    op.drop_table("app_secrets")
    op.drop_index("ix_heavy_requests_user_id_expires_at", table_name="heavy_requests")
    op.drop_table("heavy_requests")
    op.drop_index(op.f("ix_user_sessions_user_id"), table_name="user_sessions")
    op.drop_table("user_sessions")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
