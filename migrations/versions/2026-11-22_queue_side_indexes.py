"""boosted prompts (adaptive overlap) and indexes for the boosted and gold side queues

Revision ID: 0003_queue_side_indexes
Revises: 0002_gold_reference_adaptive
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_queue_side_indexes"
down_revision: str | None = "0002_gold_reference_adaptive"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("boosted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index("ix_prompts_boosted", ["project_id", "boosted", "id"], unique=False)
        batch_op.create_index("ix_prompts_gold", ["project_id", "is_gold", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("prompts", schema=None) as batch_op:
        batch_op.drop_index("ix_prompts_gold")
        batch_op.drop_index("ix_prompts_boosted")
        batch_op.drop_column("boosted")
