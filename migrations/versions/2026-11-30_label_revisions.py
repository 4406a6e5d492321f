"""labels carry order_changed, revision and revised_at; their earlier versions in annotation_revisions; projects
say whether annotators may revise (revisions_open)

Revision ID: 0007_label_revisions
Revises: 0009_prompt_browser
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_label_revisions"
down_revision: str | None = "0009_prompt_browser"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql")


def _order_changed(tiers, shown) -> bool:
    """The rule of app.rankings.order_changed as of this migration (a migration must not change with the app)."""
    return tiers is not None and tiers != [[rid] for rid in shown or []]


def upgrade() -> None:
    # Defaults as plain strings ('1' is true on both databases): SQLite then adds the columns in place. An SQL
    # expression would make the batch copy the table, and dropping the old `projects` deletes every prompt
    # (ON DELETE CASCADE with foreign keys on).
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("revisions_open", sa.Boolean(), nullable=False, server_default="1"))
    with op.batch_alter_table("annotations") as batch:
        batch.add_column(sa.Column("order_changed", sa.Boolean(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("revised_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "annotation_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("annotation_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("revised_by_id", sa.Integer(), nullable=True),
        sa.Column("revised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ranking", JSON, nullable=True),
        sa.Column("strength", sa.Integer(), nullable=True),
        sa.Column("none_acceptable", sa.Boolean(), nullable=False),
        sa.Column("flag", sa.String(length=50), nullable=True),
        sa.Column("flag_reason", sa.Text(), nullable=True),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column("ratings", JSON, nullable=True),
        sa.Column("time_spent_ms", sa.Integer(), nullable=True),
        sa.Column("order_changed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotation_id"], ["annotations.id"], name=op.f("annotation_revisions_annotation_id_fkey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["revised_by_id"], ["users.id"], name=op.f("annotation_revisions_revised_by_id_fkey"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("annotation_revisions_pkey")),
        sa.UniqueConstraint("annotation_id", "revision", name=op.f("annotation_revisions_annotation_id_revision_key")),
    )
    # Labels stored before: order_changed from their ranking and the order they were shown in (both stored).
    connection = op.get_bind()
    annotations = sa.table(
        "annotations",
        sa.column("id", sa.Integer),
        sa.column("ranking", JSON),
        sa.column("shown_order", JSON),
        sa.column("order_changed", sa.Boolean),
    )
    changed = [
        row.id
        for row in connection.execute(sa.select(annotations.c.id, annotations.c.ranking, annotations.c.shown_order))
        if _order_changed(_decoded(row.ranking), _decoded(row.shown_order))
    ]
    for start in range(0, len(changed), 1000):
        connection.execute(
            annotations.update().where(annotations.c.id.in_(changed[start : start + 1000])).values(order_changed=True)
        )


def _decoded(value):
    return json.loads(value) if isinstance(value, str) else value


def downgrade() -> None:
    op.drop_table("annotation_revisions")
    # Column by column (SQLite 3.35+ drops a column in place): a batch copy of `projects` would delete every
    # prompt on SQLite (see upgrade).
    for table, column in (
        ("annotations", "revised_at"),
        ("annotations", "revision"),
        ("annotations", "order_changed"),
        ("projects", "revisions_open"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
