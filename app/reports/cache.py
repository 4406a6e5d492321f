"""Reports off the request path: each report (agreement, leaderboard, reward models, ...) cached per project and
options in table report_cache, recomputed only when the project's data stamp (stamp.py) has changed, and by one
process at a time.

`get_or_compute(database, kind=..., project_id=..., params=..., model=..., compute=...)`:
- the cached report is current (its stamp is the project's now): returned as it is;
- else the caller takes the row's lease (an UPDATE that succeeds for one caller only, on both databases, across
  processes) and computes: in a read-only session (on SQLite a deferred transaction on the read engine, so
  annotators' writes go on meanwhile), then stores the result and frees the lease in one short write;
- someone else holds the lease: the last report, marked stale, with its computed_at; with no report yet, the
  caller waits for theirs (polling the row, at most WAIT_SECONDS, then ReportBusy: 503 with Retry-After) rather
  than computing it twice.
A process killed while computing leaves its lease; it runs out after LEASE_SECONDS and the next caller takes it.

A new kind of report plugs in with its name, a pydantic model (returned with `computed_at` and `stale` if it
inherits CacheInfo) and `compute(session, project) -> model`; options, if any, go in `params`."""

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.db import Database, is_postgres
from app.errors import AppError, NotFound
from app.models import Project, ReportCache
from app.models.base import utcnow
from app.reports.schemas import CacheInfo
from app.reports.stamp import data_stamp

LEASE_SECONDS = 600  # longer than any report takes; only matters when a process died computing
WAIT_SECONDS = 120.0  # how long a request waits for a first report someone else computes
POLL_SECONDS = 0.25
RETRY_AFTER_SECONDS = 10

T = TypeVar("T", bound=BaseModel)


class ReportBusy(AppError):
    status_code = 503

    def __init__(self) -> None:
        super().__init__(
            f"The report is being computed; retry in {RETRY_AFTER_SECONDS} seconds",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


@dataclass
class _Row:
    id: int | None
    payload: str | None
    stamp: str | None
    computed_at: datetime | None


def params_key(params: BaseModel | dict[str, Any] | None) -> str:
    """The options as a short key: sha256 of their canonical JSON ("" without options)."""
    if params is None:
        return ""
    data = params.model_dump_json() if isinstance(params, BaseModel) else _canonical(params)
    return hashlib.sha256(data.encode()).hexdigest()


def _canonical(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def get_or_compute(
    database: Database,
    *,
    kind: str,
    project_id: int,
    params: BaseModel | dict[str, Any] | None,
    model: type[T],
    compute: Callable[[Session, Project], T],
) -> T:
    """The report, current or (while another caller computes it) the last one; see the module's docstring."""
    key = params_key(params)
    token = secrets.token_hex(16)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with database.read_sessionmaker() as session, session.begin():
            stamp = data_stamp(session, project_id)
            row = _read(session, project_id, kind, key)
        if row.payload is not None and row.stamp == stamp:
            return _answer(model, row, stale=False)
        if _claim(database, project_id, kind, key, token, stamp):
            return _compute_and_store(database, project_id, kind, key, token, model, compute)
        if row.payload is not None:
            return _answer(model, row, stale=True)
        if time.monotonic() > deadline:
            raise ReportBusy()
        time.sleep(POLL_SECONDS)


def _read(session: Session, project_id: int, kind: str, key: str) -> _Row:
    found = session.execute(
        select(ReportCache.id, ReportCache.payload, ReportCache.stamp, ReportCache.computed_at).where(
            ReportCache.project_id == project_id, ReportCache.kind == kind, ReportCache.params_key == key
        )
    ).one_or_none()
    return _Row(*found) if found else _Row(None, None, None, None)


def _answer(model: type[T], row: _Row, *, stale: bool) -> T:
    report = model.model_validate_json(row.payload or "")
    if isinstance(report, CacheInfo):
        report.computed_at, report.stale = row.computed_at, stale
    return report


def _claim(database: Database, project_id: int, kind: str, key: str, token: str, stamp: str) -> bool:
    """Take the lease of (project, kind, options); False when someone holds it, or has just stored the report of
    `stamp` (the data as the caller saw it) since the caller looked."""
    now = utcnow()
    with database.sessionmaker() as session, session.begin():
        insert = pg_insert if is_postgres(session) else sqlite_insert
        session.execute(
            insert(ReportCache)
            .values(project_id=project_id, kind=kind, params_key=key)
            .on_conflict_do_nothing(index_elements=["project_id", "kind", "params_key"])
        )
        # On PostgreSQL a second UPDATE waits for the first's commit, then finds the lease taken.
        taken = session.execute(
            update(ReportCache)
            .where(
                ReportCache.project_id == project_id,
                ReportCache.kind == kind,
                ReportCache.params_key == key,
                or_(ReportCache.lease_token.is_(None), ReportCache.lease_expires_at <= now),
                or_(ReportCache.stamp.is_(None), ReportCache.stamp != stamp),
            )
            .values(lease_token=token, lease_expires_at=now + timedelta(seconds=LEASE_SECONDS))
            .execution_options(synchronize_session=False)
        )
        return taken.rowcount == 1  # type: ignore[attr-defined]


def _compute_and_store(
    database: Database,
    project_id: int,
    kind: str,
    key: str,
    token: str,
    model: type[T],
    compute: Callable[[Session, Project], T],
) -> T:
    mine = (
        ReportCache.project_id == project_id,
        ReportCache.kind == kind,
        ReportCache.params_key == key,
        ReportCache.lease_token == token,
    )
    stored = False
    try:
        with database.read_sessionmaker() as session, session.begin():
            # Read first: a change during the computation leaves the stored stamp behind, so it is recomputed.
            stamp = data_stamp(session, project_id)
            project = session.get(Project, project_id)
            if project is None:
                raise NotFound("Project not found")
            report = compute(session, project)
        computed_at = utcnow()
        if isinstance(report, CacheInfo):
            report.computed_at, report.stale = computed_at, False
        with database.sessionmaker() as session, session.begin():
            session.execute(
                update(ReportCache)
                .where(*mine)
                .values(
                    payload=report.model_dump_json(),
                    stamp=stamp,
                    computed_at=computed_at,
                    lease_token=None,
                    lease_expires_at=None,
                )
                .execution_options(synchronize_session=False)
            )
        stored = True
        return report
    finally:
        if not stored:  # a failed computation frees the lease at once, rather than after LEASE_SECONDS
            with database.sessionmaker() as session, session.begin():
                session.execute(
                    update(ReportCache)
                    .where(*mine)
                    .values(lease_token=None, lease_expires_at=None)
                    .execution_options(synchronize_session=False)
                )
