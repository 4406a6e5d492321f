"""Batch import: parse a stream, write prompts in short chunks, show them all at once (or never).

How an import stays out of everyone's way (README "Imports while annotators work"):
- The file is parsed and validated outside any transaction; each chunk of CHUNK_SIZE prompts is written in its
  own short transaction (on SQLite the write lock is held for one chunk only, so annotators' calls get in
  between chunks), ids allocated inside that chunk's transaction.
- All or nothing is kept as visibility: the rows are written with `prompts.visible = false` under an
  `import_batches` row with status 'loading'; one last short transaction flips the whole batch to visible.
  Every reader filters through `app.models.shown_in`, so a loading batch is never served, counted, searched or
  exported.
- A failed import marks its batch 'failed' and deletes its rows in chunks. A killed one leaves a 'loading'
  batch: `discard_abandoned_imports` removes it at the next start (app startup, and before every import) once
  its process is gone (same host) or silent for STALE_AFTER (the batch's heartbeat, refreshed per chunk).
- Reference labels (judgements, app/prompts/references.py) of new prompts are written with them and hidden with
  them; those attaching to prompts already shown wait in memory and are written in the flip's transaction, so they
  too appear all at once or never.
- A large upload is imported by a child process of the server (app/prompts/processes.py), so its parsing never
  holds the server's GIL; the child owns its batch.
- Prompt ids already visible in the project are skipped as before; an id held by another import still loading
  fails this import, naming the id (the unique (project_id, external_id) constraint settles a race between two).
"""

import os
import socket
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, BinaryIO

import orjson
from sqlalchemy import Connection, String, any_, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

from app.annotation import overlap
from app.db import is_postgres
from app.errors import NotFound
from app.models import ImportBatch, ImportStatus, Project, ProjectKind, Prompt, User
from app.models.base import utcnow
from app.projects import service as projects_service
from app.prompts import references
from app.prompts.upload import (
    PREFERENCE_FORMATS,
    ErrorCollector,
    ImportLimits,
    ParsedPrompt,
    ParseError,
    content_digest,
    parse_batch,
)
from app.text import unstorable

# Prompts per chunk transaction: a few tens of ms of SQLite's write lock (bench/import_during_annotation.py).
CHUNK_SIZE = 1000
# A loading batch whose heartbeat is older than this is abandoned, whichever process owned it.
STALE_AFTER = timedelta(minutes=10)
LOADING, COMMITTED, FAILED = ImportStatus.loading, ImportStatus.committed, ImportStatus.failed

# Prompts and responses are written with the database driver's bulk path (SQLite: one INSERT over a JSON array,
# see write_rows; PostgreSQL: COPY), JSON already encoded: the ORM's per-row work was 5x the cost of the writes.
PROMPT_COLUMNS = (
    "id",
    "project_id",
    "batch_id",
    "external_id",
    "messages",
    "is_chat",
    "metadata",
    "completed_count",
    "active_count",
    "target_overlap",
    "is_gold",
    "boosted",
    "visible",
)
RESPONSE_COLUMNS = ("prompt_id", "position", "text", "model", "metadata")


@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    total_errors: int = 0
    batch_id: int | None = None
    references: int = 0  # reference labels written, new or replacing the same source's

    @property
    def ok(self) -> bool:
        return self.total_errors == 0


@dataclass
class _Judgements:
    """What the chunks need for their reference labels (app/prompts/references.py); `attached`: those of prompts
    already shown, written at the flip."""

    by_content: references.ContentIndex
    source: str | None
    error: Callable[[ParseError], None]
    attached: list[tuple[int, ParsedPrompt, bool]] = field(default_factory=list)


SQLITE_ROWS_PER_STATEMENT = 10_000  # bounds the JSON text of one statement (bench seeding writes millions of rows)


def write_rows(connection: Connection, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
    """Inserts tuples (JSON columns as encoded text) in the caller's transaction with the driver's
    fastest bulk path: COPY on PostgreSQL, one INSERT … SELECT over a JSON array on SQLite."""
    if not rows:
        return
    raw: Any = connection.connection.driver_connection  # psycopg or sqlite3: both are used by their own API below
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        # One statement over a JSON array of the rows, not executemany: sqlite3 gives the GIL back around each row's
        # step, and with any busy thread in the process each step then waits for its turn (up to the 5 ms switch
        # interval), while this transaction holds the write lock: a chunk of 46 ms took 9 s beside one busy thread
        # (BENCHMARKS.md, "Mixed load"). Here the rows are inserted in one step.
        picks = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
        insert = f"INSERT INTO {table} ({names}) SELECT {picks} FROM json_each(?)"
        for start in range(0, len(rows), SQLITE_ROWS_PER_STATEMENT):
            raw.execute(insert, (orjson.dumps(rows[start : start + SQLITE_ROWS_PER_STATEMENT]).decode(),))


def _new_prompt_ids(session: Session, count: int) -> list[int]:
    """Ids for `count` new prompts, so their responses can point at them without a round trip per row.
    PostgreSQL: drawn from the sequence (concurrent imports get other ids); SQLite: after the largest id, safe
    because the chunk's own transaction holds the write lock (BEGIN IMMEDIATE, see app.db) until it commits."""
    if is_postgres(session):
        return list(session.scalars(text("SELECT nextval('prompts_id_seq') FROM generate_series(1, :n)"), {"n": count}))
    first = (session.scalar(select(func.max(Prompt.id))) or 0) + 1
    return list(range(first, first + count))


def content_id(prompt: ParsedPrompt) -> str:
    """An id for prompts uploaded without one: the same content re-uploaded is recognised and skipped."""
    return "sha256:" + content_digest(prompt.messages, [r.text for r in prompt.responses])[:32]


Turn = Callable[[], AbstractContextManager[Any]]


def import_batch(
    *,
    session: Session,
    project: Project,
    stream: BinaryIO,
    filename: str,
    uploaded_by: User | None,
    record_format: str = "auto",
    limits: ImportLimits | None = None,
    source: str | None = None,
) -> ImportResult:
    """`import_file` for a caller holding a session (command line, demo, tests): its transaction is committed
    first, since the import writes in transactions of its own (on SQLite an open one would hold the write lock)."""
    session.commit()
    return import_file(
        sessions=sessionmaker(session.get_bind(), expire_on_commit=False),
        project_id=project.id,
        stream=stream,
        filename=filename,
        uploaded_by_id=uploaded_by.id if uploaded_by else None,
        record_format=record_format,
        limits=limits,
        source=source,
    )


def import_file(
    *,
    sessions: sessionmaker[Session],
    project_id: int,
    stream: BinaryIO,
    filename: str,
    uploaded_by_id: int | None,
    record_format: str = "auto",
    limits: ImportLimits | None = None,
    source: str | None = None,
    turn: Turn = nullcontext,
) -> ImportResult:
    """Imports every prompt of the file, or none (then `result.errors` says why, by line and field); the prompts
    become visible together, when the last short transaction commits. Blocking: call it from a worker thread.

    `record_format`: "auto" (by each record's keys), "prompts", or a preference format (trl, trl-chat, hh,
    ultrafeedback; app/prompts/upload/preferences.py) whose records become pairwise prompts with a reference label.
    `limits`: the per-field and per-file limits (ImportLimits), by default from the settings. `source`: the name
    of the reference labels the file's judgements become (app/prompts/references.py), by default "<format>: <file>".
    `turn`: entered around each transaction (the web app's request slot, so chunks queue fairly with requests)."""
    if source is not None and (problem := references.source_problem(source)):
        return _rejected(f"source: {problem}")
    discard_abandoned_imports(sessions, turn=turn)
    with turn(), sessions.begin() as session:
        project = session.get(Project, project_id)
        if project is None:
            raise NotFound("Project not found")
        projects_service.require_open(project)
        if problem := unstorable(filename):
            return _rejected(f"file name: {problem}")
        if record_format in PREFERENCE_FORMATS and project.kind != ProjectKind.pairwise:  # else the parser says so
            return _rejected(
                f"the {record_format} format holds preference pairs (chosen/rejected): import it into a "
                f"pairwise project; this is a {project.kind} project"
            )
        batch = ImportBatch(
            project_id=project.id,
            filename=filename[:500],
            uploaded_by_id=uploaded_by_id,
            status=LOADING,
            owner=_OWNER,
            updated_at=utcnow(),
        )
        session.add(batch)
        session.flush()
        batch_id, target = batch.id, overlap.import_target(project)
        low, high = project.response_bounds
        pairwise = project.kind == ProjectKind.pairwise
    result = ImportResult()
    collector = ErrorCollector()
    try:
        seen: set[str] = set()  # ids of this file, for content ids repeated inside it
        judged = _Judgements(references.ContentIndex(project_id), source, collector.add)
        items = parse_batch(
            stream,
            filename=filename,
            min_responses=low,
            max_responses=high,
            pairwise=pairwise,
            record_format=record_format,
            limits=limits,
        )
        # Parsing runs here, between the chunks' transactions.
        for chunk in collector.chunks(items, size=CHUNK_SIZE):
            with turn(), sessions.begin() as session:
                _write_chunk(
                    session=session,
                    project_id=project_id,
                    batch_id=batch_id,
                    target=target,
                    chunk=chunk,
                    seen=seen,
                    result=result,
                    judged=judged,
                )
        if not collector.ok:
            raise _Rejected(*collector.messages(), total=collector.total_errors)
        with turn(), sessions.begin() as session:
            result.references += references.write_references(session, judged.attached, source=judged.source, error=collector.add)
            if not collector.ok:  # a judgement whose responses are not its prompt's: the flip is rolled back
                raise _Rejected(*collector.messages(), total=collector.total_errors)
            _show(session, batch_id, result)
    except _Rejected as rejected:
        _discard(sessions, batch_id, turn=turn)
        return ImportResult(errors=list(rejected.args), total_errors=rejected.total)
    except BaseException:
        _discard(sessions, batch_id, turn=turn)
        raise
    result.batch_id = batch_id
    return result


class _Rejected(Exception):
    """The import cannot commit; its args are the messages for the uploader."""

    def __init__(self, *messages: str, total: int = 1) -> None:
        super().__init__(*messages)
        self.total = total


def _rejected(message: str) -> ImportResult:
    return ImportResult(errors=[message], total_errors=1)


def _show(session: Session, batch_id: int, result: ImportResult) -> None:
    """The flip: the whole batch visible at once, in one short transaction."""
    committed = session.execute(
        update(ImportBatch)
        .where(ImportBatch.id == batch_id, ImportBatch.status == LOADING)
        .values(status=COMMITTED, imported_count=result.imported, skipped_count=result.skipped, updated_at=utcnow())
    )
    if not committed.rowcount:  # type: ignore[attr-defined]  # taken for abandoned (silent over STALE_AFTER)
        raise _Rejected("the import was interrupted for too long and was discarded; upload the file again")
    session.execute(update(Prompt).where(Prompt.batch_id == batch_id).values(visible=True))


def _write_chunk(
    *,
    session: Session,
    project_id: int,
    batch_id: int,
    target: int,
    chunk: list[ParsedPrompt],
    seen: set[str],
    result: ImportResult,
    judged: _Judgements,
) -> None:
    keyed = [(p.external_id or content_id(p), p) for p in chunk]
    keys = [key for key, _ in keyed]
    if is_postgres(session):  # one array parameter: 5x faster than IN (5,000 binds)
        among_keys = Prompt.external_id == any_(bindparam("keys", keys, type_=ARRAY(String)))
    else:
        among_keys = Prompt.external_id.in_(keys)
    found = select(Prompt.external_id, Prompt.id, Prompt.visible).where(Prompt.project_id == project_id, among_keys)
    rows = session.execute(found).all()
    existing: dict[str, int] = {key: prompt_id for key, prompt_id, _ in rows}
    if loading := sorted(key for key, _, visible in rows if not visible):
        raise _Rejected(
            f"prompt id {loading[0]!r} is being imported by another upload into this project that has not finished; "
            "upload again once it has"
        )
    fresh: list[tuple[str, ParsedPrompt]] = []
    for key, parsed in keyed:
        if key in existing or key in seen:  # the parser already rejects repeated explicit ids
            result.skipped += 1
            if parsed.reference is not None and key in existing:
                judged.attached.append((existing[key], parsed, False))
            continue
        seen.add(key)
        if parsed.reference is not None and (same := judged.by_content.find(session, parsed)) is not None:
            result.skipped += 1
            judged.attached.append((same, parsed, False))
            continue
        fresh.append((key, parsed))
    session.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(updated_at=utcnow()))  # heartbeat
    if not fresh:
        return
    ids = _new_prompt_ids(session, len(fresh))
    dump = orjson.dumps
    prompt_rows: list[tuple[Any, ...]] = []
    response_rows: list[tuple[Any, ...]] = []
    for prompt_id, (key, p) in zip(ids, fresh, strict=True):
        prompt_rows.append(
            (
                prompt_id,
                project_id,
                batch_id,
                key,
                dump(p.messages).decode(),
                p.is_chat,
                None if p.metadata is None else dump(p.metadata).decode(),
                0,
                0,
                target,
                False,
                False,
                False,  # visible: only once the whole batch is written (_show)
            )
        )
        response_rows.extend(
            (prompt_id, position, r.text, r.model, None if r.metadata is None else dump(r.metadata).decode())
            for position, r in enumerate(p.responses)
        )
    connection = session.connection()
    try:
        write_rows(connection, "prompts", PROMPT_COLUMNS, prompt_rows)
    except connection.dialect.loaded_dbapi.IntegrityError as exc:  # the raw driver's own error (write_rows)
        # PostgreSQL: another import inserted one of these ids since the check above (SQLite's chunk holds the
        # write lock from the check on); or the project was deleted meanwhile.
        raise _Rejected(
            "another upload into this project was importing some of the same prompt ids at the same time, or the "
            "project changed; nothing imported: upload again"
        ) from exc
    write_rows(connection, "responses", RESPONSE_COLUMNS, response_rows)
    new = [(prompt_id, parsed, True) for prompt_id, (_, parsed) in zip(ids, fresh, strict=True) if parsed.reference]
    # Hidden with their prompts until the flip (and deleted with them if the import fails).
    result.references += references.write_references(session, new, source=judged.source, error=judged.error)
    result.imported += len(fresh)


# --- imports that did not finish ---------------------------------------------------------------------------------

DELETE_CHUNK = 2000  # prompts deleted per transaction when a batch is discarded (responses go by cascade)
_OWNER = f"{socket.gethostname()}:{os.getpid()}"


def _discard(sessions: sessionmaker[Session], batch_id: int, *, turn: Turn = nullcontext) -> None:
    """Removes a batch that will never be shown: marked 'failed' first (so any process may finish the job if this
    one stops), then its invisible prompts a chunk at a time, then the batch."""
    with turn(), sessions.begin() as session:
        session.execute(update(ImportBatch).where(ImportBatch.id == batch_id).values(status=FAILED))
    while True:
        with turn(), sessions.begin() as session:
            doomed = select(Prompt.id).where(Prompt.batch_id == batch_id, ~Prompt.visible).limit(DELETE_CHUNK)
            if not session.execute(delete(Prompt).where(Prompt.id.in_(doomed.scalar_subquery()))).rowcount:  # type: ignore[attr-defined]
                session.execute(delete(ImportBatch).where(ImportBatch.id == batch_id))
                return


def _process_gone(owner: str | None) -> bool:
    """True when `owner` ("host:pid") names a process of this host that no longer runs."""
    host, _, pid = (owner or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # runs, as another user
        return False
    return False


def discard_abandoned_imports(sessions: sessionmaker[Session], *, turn: Turn = nullcontext) -> int:
    """Removes the rows of imports that will never finish: 'failed' ones, and 'loading' ones whose process is gone
    (same host) or whose heartbeat is older than STALE_AFTER. Returns how many batches were removed."""
    with turn(), sessions.begin() as session:
        unfinished = session.execute(
            select(ImportBatch.id, ImportBatch.status, ImportBatch.owner, ImportBatch.updated_at).where(
                ImportBatch.status != COMMITTED
            )
        ).all()
        stale = set(
            session.scalars(
                select(ImportBatch.id).where(ImportBatch.status == LOADING, ImportBatch.updated_at < utcnow() - STALE_AFTER)
            )
        )
    abandoned = [row.id for row in unfinished if row.status == FAILED or row.id in stale or _process_gone(row.owner)]
    for batch_id in abandoned:
        _discard(sessions, batch_id, turn=turn)
    return len(abandoned)
