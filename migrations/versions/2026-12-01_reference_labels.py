"""reference labels in their own table, one per (prompt, source), so a project holds several sources (AI judges,
imported preference datasets); prompts lose reference_ranking / reference_source

Revision ID: 0011_reference_labels
Revises: 0007_label_revisions
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011_reference_labels"
down_revision: str | None = "0007_label_revisions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), "postgresql")
# A prompt's reference before this migration had no source when it was set by hand (tests, scripts): named so.
UNNAMED_SOURCE = "reference"

prompts = sa.table(
    "prompts",
    sa.column("id", sa.Integer),
    sa.column("reference_ranking", JSON),
    sa.column("reference_source", sa.String),
)
labels = sa.table(
    "reference_labels",
    sa.column("id", sa.Integer),
    sa.column("prompt_id", sa.Integer),
    sa.column("source", sa.String),
    sa.column("ranking", JSON),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def _decoded(value):
    return json.loads(value) if isinstance(value, str) else value


def upgrade() -> None:
    op.create_table(
        "reference_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("ranking", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompts.id"], name=op.f("reference_labels_prompt_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("reference_labels_pkey")),
        sa.UniqueConstraint("prompt_id", "source", name=op.f("reference_labels_prompt_id_source_key")),
    )
    connection = op.get_bind()
    now = datetime.now(UTC)
    rows = [
        {
            "prompt_id": row.id,
            "source": row.reference_source or UNNAMED_SOURCE,
            "ranking": _decoded(row.reference_ranking),
            "created_at": now,
        }
        for row in connection.execute(
            sa.select(prompts.c.id, prompts.c.reference_ranking, prompts.c.reference_source).where(
                prompts.c.reference_ranking.is_not(None)
            )
        )
    ]
    for start in range(0, len(rows), 1000):
        connection.execute(labels.insert(), rows[start : start + 1000])
    # In place (SQLite 3.35+ drops a column without copying): a batch copy of `prompts` would cascade deletes to
    # its responses and labels, and lose the full-text triggers of 0009_prompt_browser.
    op.execute("ALTER TABLE prompts DROP COLUMN reference_source")
    op.execute("ALTER TABLE prompts DROP COLUMN reference_ranking")


def downgrade() -> None:
    op.add_column("prompts", sa.Column("reference_ranking", JSON, nullable=True))
    op.add_column("prompts", sa.Column("reference_source", sa.String(length=200), nullable=True))
    # One source a prompt fits the old columns: the earliest imported (lowest id) of each prompt is kept.
    connection = op.get_bind()
    first = sa.select(labels.c.prompt_id, sa.func.min(labels.c.id).label("id")).group_by(labels.c.prompt_id).subquery()
    kept = connection.execute(
        sa.select(labels.c.prompt_id, labels.c.source, labels.c.ranking).join(first, first.c.id == labels.c.id)
    ).all()
    for row in kept:
        connection.execute(
            prompts.update()
            .where(prompts.c.id == row.prompt_id)
            .values(reference_ranking=_decoded(row.ranking), reference_source=row.source)
        )
    op.drop_table("reference_labels")
