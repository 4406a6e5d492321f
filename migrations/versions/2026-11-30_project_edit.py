"""editable projects: responses per prompt, lease length, archiving, the audit log

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
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("min_responses", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_responses", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("lease_minutes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    # Existing projects keep what their kind allowed (RESPONSE_BOUNDS in app/models/project.py).
    op.execute("UPDATE projects SET min_responses = 2, max_responses = CASE WHEN kind = 'pairwise' THEN 2 ELSE 9 END")
    with op.batch_alter_table("projects") as batch:
        batch.alter_column("min_responses", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("max_responses", existing_type=sa.Integer(), nullable=False)
        batch.create_check_constraint(
            op.f("projects_response_bounds_check"), "min_responses >= 2 AND max_responses >= min_responses"
        )
        batch.create_check_constraint(op.f("projects_lease_minutes_check"), "lease_minutes IS NULL OR lease_minutes >= 1")
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


def downgrade() -> None:
    op.drop_index("ix_project_audit_project_id_id", table_name="project_audit")
    op.drop_table("project_audit")
    with op.batch_alter_table("projects") as batch:
        batch.drop_constraint(op.f("projects_lease_minutes_check"), type_="check")
        batch.drop_constraint(op.f("projects_response_bounds_check"), type_="check")
        batch.drop_column("archived_at")
        batch.drop_column("lease_minutes")
        batch.drop_column("max_responses")
        batch.drop_column("min_responses")
