"""reports cached per project (report_cache), the rare-event counter of their data stamp (report_epochs), and the
indexes that make the stamp an index lookup

Revision ID: 0014_report_cache
Revises: 0013_import_visibility
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_report_cache"
down_revision: str | None = "0013_import_visibility"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_cache",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("params_key", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("stamp", sa.String(length=400), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_token", sa.String(length=32), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("report_cache_project_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("report_cache_pkey")),
        sa.UniqueConstraint("project_id", "kind", "params_key", name=op.f("report_cache_project_id_kind_params_key_key")),
    )
    op.create_table(
        "report_epochs",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("report_epochs_project_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", name=op.f("report_epochs_pkey")),
    )
    # Plain CREATE INDEX on both databases (no batch copy of annotations / assignments).
    op.create_index("ix_annotations_report_stamp", "annotations", ["project_id", "id", "revision"])
    op.create_index(
        "ix_assignments_project_skipped",
        "assignments",
        ["project_id"],
        postgresql_where=sa.text("status = 'skipped'"),
        sqlite_where=sa.text("status = 'skipped'"),
    )


def downgrade() -> None:
    op.drop_index("ix_assignments_project_skipped", table_name="assignments")
    op.drop_index("ix_annotations_report_stamp", table_name="annotations")
    op.drop_table("report_epochs")
    op.drop_table("report_cache")
