"""the queue index holds only prompts that still want annotators (partial index)

The queue's "next task" walks (project_id, active_count, id) from the least-served prompt and keeps
rows with active_count < target_overlap. On the full index a project whose prompts are all served
(or a gold query) walked every prompt of the project: a scan growing with the project. The partial
index holds only the open prompts, so the walk stops at once when nothing is left.

Revision ID: 0005_open_prompts_index
Revises: 0004_login_attempts
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_open_prompts_index"
down_revision: str | None = "0004_login_attempts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("active_count < target_overlap")


def upgrade() -> None:
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.drop_index("ix_prompts_queue")
        batch_op.create_index(
            "ix_prompts_open", ["project_id", "active_count", "id"], unique=False, postgresql_where=OPEN, sqlite_where=OPEN
        )


def downgrade() -> None:
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.drop_index("ix_prompts_open")
        batch_op.create_index("ix_prompts_queue", ["project_id", "active_count", "id"], unique=False)
