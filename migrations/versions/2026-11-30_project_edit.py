"""editable projects: responses per prompt, lease length, archiving, the audit log; labels indexed by prompt

Revision ID: 0008_project_edit
Revises: 0006_sessions_and_limits
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_project_edit"
down_revision: str | None = "0006_sessions_and_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # Columns only, each added in place (ALTER TABLE ... ADD COLUMN): on SQLite a batch that copies `projects` would
    # drop the old table, and with foreign keys on, that DROP deletes every prompt and label through ON DELETE CASCADE.
    # Existing projects keep what their kind allowed (RESPONSE_BOUNDS in app/models/project.py).
    op.add_column("projects", sa.Column("min_responses", sa.Integer(), server_default=sa.text("2"), nullable=False))
    op.add_column("projects", sa.Column("max_responses", sa.Integer(), server_default=sa.text("9"), nullable=False))
    op.execute("UPDATE projects SET max_responses = 2 WHERE kind = 'pairwise'")
    op.add_column("projects", sa.Column("lease_minutes", sa.Integer(), nullable=True))
    op.add_column("projects", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "project_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("project_name", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("field", sa.String(length=50), nullable=False),
        sa.Column("before", JSON, nullable=True),
        sa.Column("after", JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("project_audit_project_id_fkey"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("project_audit_user_id_fkey"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("project_audit_pkey")),
    )
    op.create_index("ix_project_audit_project_id_id", "project_audit", ["project_id", "id"], unique=False)
    op.create_index("ix_annotations_prompt_id", "annotations", ["prompt_id"], unique=False)  # see app/models/annotation.py


def downgrade() -> None:
    op.drop_index("ix_annotations_prompt_id", table_name="annotations")
    op.drop_index("ix_project_audit_project_id_id", table_name="project_audit")
    op.drop_table("project_audit")
    # In place too (SQLite 3.35+ drops a column without copying the table; see upgrade on why that matters).
    for column in ("archived_at", "lease_minutes", "max_responses", "min_responses"):
        op.drop_column("projects", column)
