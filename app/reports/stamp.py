"""The data stamp: a short string that changes whenever anything a project's reports (agreement, leaderboard, reward
models, ...) read from the database changes. A cached report is current while its stamp equals the project's now.

Frequent events are seen through their own rows, never through a counter every label would update (on PostgreSQL
such a row would make all annotators of a project wait on each other):
- labels submitted, revised or deleted: count, max id and sum of `revision` of the project's annotations. Count and
  sum change at every commit even when ids commit out of order on PostgreSQL (a label holding id 100 committing
  after one holding 101); max id catches a deletion and an insertion between two reads;
- skips: the number of the project's skipped assignments;
- imports (prompts, reference labels): the project's newest committed import batch;
- project edits (settings, name, archiving): the project's newest audit row.
Rare events that leave no such trace call `note_change` (gold marks; anything added later that reports read).
Every part is an index lookup or an index-only range (indexes in migration 0014_report_cache).

Not seen (shown with the report's age instead): an annotator's new name or e-mail address.
To extend: add a scalar subquery to `_PARTS` below, or call `note_change` where the change happens."""

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db import is_postgres
from app.models import Annotation, Assignment, ImportBatch, ImportStatus, ProjectAudit, ReportEpoch


def _parts(project_id: int) -> list[ColumnElement]:
    labels = Annotation.project_id == project_id
    return [
        select(func.count()).where(labels).scalar_subquery(),
        select(func.max(Annotation.id)).where(labels).scalar_subquery(),
        select(func.sum(Annotation.revision)).where(labels).scalar_subquery(),
        # A literal, not a bound parameter: SQLite uses a partial index only when the query's term is the same text.
        select(func.count())
        .select_from(Assignment)
        .where(Assignment.project_id == project_id, text("assignments.status = 'skipped'"))
        .scalar_subquery(),
        # Committed only: a batch's row exists from its first chunk on, but its prompts (and reference labels) are
        # shown at its flip (app/prompts/service.py), which is when the reports must change.
        select(func.max(ImportBatch.id))
        .where(ImportBatch.project_id == project_id, ImportBatch.status == ImportStatus.committed)
        .scalar_subquery(),
        select(func.max(ProjectAudit.id)).where(ProjectAudit.project_id == project_id).scalar_subquery(),
        select(ReportEpoch.epoch).where(ReportEpoch.project_id == project_id).scalar_subquery(),
    ]


def data_stamp(session: Session, project_id: int) -> str:
    """The project's stamp now, in one query."""
    values = session.execute(select(*_parts(project_id))).one()
    return "/".join("-" if v is None else str(v) for v in values)


def note_change(session: Session, project_id: int) -> None:
    """A change the stamp's other parts do not see: the project's reports are recomputed at their next request.
    Rare events only (it updates one row per project)."""
    insert = pg_insert if is_postgres(session) else sqlite_insert
    statement = insert(ReportEpoch).values(project_id=project_id, epoch=1)
    session.execute(statement.on_conflict_do_update(index_elements=["project_id"], set_={"epoch": ReportEpoch.epoch + 1}))
