"""prompt browser: stored per-prompt agreement, prompt text search, the time of a skip

- prompts.agreement: the prompt's agreement (tie_half, the agreement report's per-prompt value), kept up to date
  on every label (app/agreement/labels.py), so the prompt browser sorts and filters on it without a report.
  Backfilled here from the stored labels with the same function the report uses.
- Text search over every message's content: PostgreSQL an expression GIN index (the expression is
  app/prompts/search.py's PG_DOCUMENT); SQLite an FTS5 table `prompts_fts` (rowid = prompts.id) kept by
  triggers, so every import path and the demo keep it without knowing. A later migration that rebuilds
  `prompts` on SQLite (batch "move and copy") drops these triggers and must create them again.
- assignments.skipped_at: when a task was skipped. Skips made before this migration get their lease's start
  (the skip came after it, before the lease ran out).

Revision ID: 0009_prompt_browser
Revises: 0010_password_reset
"""

from collections import defaultdict
from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0009_prompt_browser"
down_revision: str | None = "0010_password_reset"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_DOCUMENT = "to_tsvector('simple'::regconfig, jsonb_path_query_array(messages, '$[*].content'::jsonpath))"
SQLITE_BODY = "(SELECT group_concat(json_extract(value, '$.content'), ' ') FROM json_each(new.messages))"


def upgrade() -> None:
    op.add_column("prompts", sa.Column("agreement", sa.Double(), nullable=True))
    op.add_column("assignments", sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE assignments SET skipped_at = leased_at WHERE status = 'skipped'")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_prompts_search ON prompts USING gin ({PG_DOCUMENT})")
    else:
        op.execute("CREATE VIRTUAL TABLE prompts_fts USING fts5(body, tokenize = 'unicode61')")
        op.execute(
            "CREATE TRIGGER prompts_fts_insert AFTER INSERT ON prompts BEGIN "
            f"INSERT INTO prompts_fts (rowid, body) VALUES (new.id, {SQLITE_BODY}); END"
        )
        op.execute(
            "CREATE TRIGGER prompts_fts_update AFTER UPDATE OF messages ON prompts BEGIN "
            f"UPDATE prompts_fts SET body = {SQLITE_BODY} WHERE rowid = new.id; END"
        )
        op.execute(
            "CREATE TRIGGER prompts_fts_delete AFTER DELETE ON prompts BEGIN DELETE FROM prompts_fts WHERE rowid = old.id; END"
        )
        op.execute(
            "INSERT INTO prompts_fts (rowid, body) SELECT prompts.id, "
            "(SELECT group_concat(json_extract(value, '$.content'), ' ') FROM json_each(prompts.messages)) FROM prompts"
        )
    _backfill_agreement()


def _backfill_agreement() -> None:
    """Every labelled prompt's agreement, from its labels, through the report's own per-prompt function."""
    from app.agreement.labels import to_label
    from app.agreement.metrics import prompt_agreement

    bind = op.get_bind()
    for project_id, kind in bind.execute(sa.text("SELECT id, kind FROM projects")).all():
        responses: dict[int, list[int]] = defaultdict(list)
        for prompt_id, response_id in bind.execute(
            sa.text(
                "SELECT r.prompt_id, r.id FROM responses r JOIN prompts p ON p.id = r.prompt_id "
                "WHERE p.project_id = :project ORDER BY r.prompt_id, r.position"
            ),
            {"project": project_id},
        ):
            responses[prompt_id].append(response_id)
        rows = bind.execute(
            sa.text(
                "SELECT prompt_id, annotator_id, ranking, shown_order, strength FROM annotations "
                "WHERE project_id = :project AND ranking IS NOT NULL ORDER BY prompt_id, id"
            ),
            {"project": project_id},
        ).all()

        def tiers(value):  # JSONB comes back decoded, SQLite's JSON as text
            return orjson.loads(value) if isinstance(value, str | bytes) else value

        labels = [
            to_label(kind, prompt_id, annotator_id, tiers(ranking), tiers(shown), strength, responses[prompt_id])
            for prompt_id, annotator_id, ranking, shown, strength in rows
        ]
        scores = [{"id": row.prompt_id, "value": row.agreement} for row in prompt_agreement(labels) if row.agreement is not None]
        if scores:
            bind.execute(sa.text("UPDATE prompts SET agreement = :value WHERE id = :id"), scores)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_prompts_search")
    else:
        for trigger in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER prompts_fts_{trigger}")
        op.execute("DROP TABLE prompts_fts")
    # In place (SQLite 3.35+ drops a column without copying the table): a batch copy of a table that others
    # reference ON DELETE CASCADE would delete their rows (labels, with foreign keys on).
    op.drop_column("assignments", "skipped_at")
    op.drop_column("prompts", "agreement")
