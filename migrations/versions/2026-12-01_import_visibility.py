"""imports written in short chunks, shown all at once: prompts.visible, import_batches.status/owner/updated_at

An import writes its prompts in chunks, each in its own short transaction, with visible = false; one last short
transaction flips the whole batch to visible (app/prompts/service.py). Every reader of prompts ignores invisible
rows, and the queue's partial index holds only visible open prompts. Existing rows are visible and their batches
committed (the server defaults). Columns are added in place (never a batch copy of `prompts`).

Revision ID: 0013_import_visibility
Revises: 0012_reward_models
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_import_visibility"
down_revision: str | None = "0012_reward_models"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_OPEN = "active_count < target_overlap"


def _open_where(dialect: str) -> str:
    # As app.models.prompt.Prompt writes it: SQLite matches a partial index only on the query's own terms.
    return OLD_OPEN + (" AND visible" if dialect == "postgresql" else " AND visible = 1")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column(
        "prompts", sa.Column("visible", sa.Boolean(), nullable=False, server_default="1")
    )  # a plain string: added in place on SQLite
    op.add_column("import_batches", sa.Column("status", sa.String(20), nullable=False, server_default="committed"))
    op.add_column("import_batches", sa.Column("owner", sa.String(300), nullable=True))
    op.add_column("import_batches", sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_index("ix_prompts_open", table_name="prompts")
    where = sa.text(_open_where(dialect))
    op.create_index(
        "ix_prompts_open", "prompts", ["project_id", "active_count", "id"], postgresql_where=where, sqlite_where=where
    )


def downgrade() -> None:
    op.execute("DELETE FROM prompts WHERE NOT visible")  # rows of imports that never finished
    op.execute("DELETE FROM import_batches WHERE status <> 'committed'")
    op.drop_index("ix_prompts_open", table_name="prompts")
    where = sa.text(OLD_OPEN)
    op.create_index(
        "ix_prompts_open", "prompts", ["project_id", "active_count", "id"], postgresql_where=where, sqlite_where=where
    )
    op.drop_column("import_batches", "updated_at")
    op.drop_column("import_batches", "owner")
    op.drop_column("import_batches", "status")
    op.drop_column("prompts", "visible")
