"""Batch import: parse a stream, write prompts in chunks, all or nothing."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson
from sqlalchemy import Connection, String, any_, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from app.annotation import overlap
from app.db import is_postgres
from app.models import ImportBatch, Project, ProjectKind, Prompt, User
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

CHUNK_SIZE = 5000

# Prompts and responses are written with the database driver's bulk path (sqlite3 executemany,
# PostgreSQL COPY), JSON already encoded: the ORM's per-row work was 5x the cost of the writes.
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
)
RESPONSE_COLUMNS = ("prompt_id", "position", "text", "model", "metadata")


@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0  # already in the project (a judgement of one still gives its reference label)
    references: int = 0  # reference labels written, new or replacing the same source's
    errors: list[str] = field(default_factory=list)
    total_errors: int = 0
    batch_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.total_errors == 0


@dataclass
class _Judgements:
    """What writing a chunk needs for its reference labels (app/prompts/references.py)."""

    by_content: references.ContentIndex
    source: str | None
    error: Callable[[ParseError], None]


class _Rejected(Exception):
    """Raised inside the savepoint so everything the import wrote is rolled back."""


def write_rows(connection: Connection, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
    """Inserts tuples (JSON columns as encoded text) in the caller's transaction with the driver's
    fastest bulk path: COPY on PostgreSQL, executemany on SQLite."""
    if not rows:
        return
    raw: Any = connection.connection.driver_connection  # psycopg or sqlite3: both are used by their own API below
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        raw.executemany(f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))})", rows)


def _new_prompt_ids(session: Session, count: int) -> list[int]:
    """Ids for `count` new prompts, so their responses can point at them without a round trip per row.
    PostgreSQL: drawn from the sequence (concurrent imports get other ids); SQLite: after the largest
    id, safe because the transaction holds the write lock (BEGIN IMMEDIATE, see app.db)."""
    if is_postgres(session):
        return list(session.scalars(text("SELECT nextval('prompts_id_seq') FROM generate_series(1, :n)"), {"n": count}))
    first = (session.scalar(select(func.max(Prompt.id))) or 0) + 1
    return list(range(first, first + count))


def content_id(prompt: ParsedPrompt) -> str:
    """An id for prompts uploaded without one: the same content re-uploaded is recognised and skipped."""
    return "sha256:" + content_digest(prompt.messages, [r.text for r in prompt.responses])[:32]


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
    """Imports every prompt of the file, or none (then `result.errors` says why, by line and field).

    `record_format`: "auto" (by each record's keys), "prompts", or a preference format (trl, trl-chat, hh,
    ultrafeedback; app/prompts/upload/preferences.py) whose records become pairwise prompts with a reference label.
    `limits`: the per-field and per-file limits (ImportLimits), by default from the settings. `source`: the name
    of the reference labels the file's judgements become (app/prompts/references.py), by default "<format>: <file>"."""
    projects_service.require_open(project)
    if problem := unstorable(filename):
        return _rejected(f"file name: {problem}")
    if source is not None and (problem := references.source_problem(source)):
        return _rejected(f"source: {problem}")
    if record_format in PREFERENCE_FORMATS and project.kind != ProjectKind.pairwise:  # else the parser says so
        return _rejected(
            f"the {record_format} format holds preference pairs (chosen/rejected): import it into a "
            f"pairwise project; this is a {project.kind} project"
        )
    result = ImportResult()
    collector = ErrorCollector()
    low, high = project.response_bounds
    try:
        with session.begin_nested():
            batch = ImportBatch(
                project_id=project.id, filename=filename[:500], uploaded_by_id=uploaded_by.id if uploaded_by else None
            )
            session.add(batch)
            session.flush()
            seen: set[str] = set()  # ids of this file, for content ids repeated inside it
            judged = _Judgements(references.ContentIndex(session, project), source, collector.add)
            items = parse_batch(
                stream,
                filename=filename,
                min_responses=low,
                max_responses=high,
                pairwise=project.kind == ProjectKind.pairwise,
                record_format=record_format,
                limits=limits,
            )
            for chunk in collector.chunks(items, size=CHUNK_SIZE):
                _write_chunk(session=session, project=project, batch=batch, chunk=chunk, seen=seen, result=result, judged=judged)
            if not collector.ok:
                raise _Rejected
            batch.imported_count, batch.skipped_count = result.imported, result.skipped
            result.batch_id = batch.id
    except _Rejected:
        return ImportResult(errors=collector.messages(), total_errors=collector.total_errors)
    return result


def _rejected(message: str) -> ImportResult:
    return ImportResult(errors=[message], total_errors=1)


def _write_chunk(
    *,
    session: Session,
    project: Project,
    batch: ImportBatch,
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
    existing = dict(
        session.execute(select(Prompt.external_id, Prompt.id).where(Prompt.project_id == project.id, among_keys)).all()
    )
    fresh: list[tuple[str, ParsedPrompt]] = []
    attached: list[tuple[int, ParsedPrompt, bool]] = []  # judgements of prompts already in the project
    for key, parsed in keyed:
        if key in existing or key in seen:  # the parser already rejects repeated explicit ids
            result.skipped += 1
            if parsed.reference is not None and key in existing:
                attached.append((existing[key], parsed, False))
            continue
        seen.add(key)
        if parsed.reference is not None and (same := judged.by_content.find(parsed)) is not None:
            result.skipped += 1
            attached.append((same, parsed, False))
            continue
        fresh.append((key, parsed))
    if not fresh:
        result.references += references.write_references(session, attached, source=judged.source, error=judged.error)
        return
    ids = _new_prompt_ids(session, len(fresh))
    dump = orjson.dumps
    prompt_rows: list[tuple[Any, ...]] = []
    response_rows: list[tuple[Any, ...]] = []
    for prompt_id, (key, p) in zip(ids, fresh, strict=True):
        prompt_rows.append(
            (
                prompt_id,
                project.id,
                batch.id,
                key,
                dump(p.messages).decode(),
                p.is_chat,
                None if p.metadata is None else dump(p.metadata).decode(),
                0,
                0,
                overlap.import_target(project),
                False,
                False,
            )
        )
        response_rows.extend(
            (prompt_id, position, r.text, r.model, None if r.metadata is None else dump(r.metadata).decode())
            for position, r in enumerate(p.responses)
        )
    connection = session.connection()
    write_rows(connection, "prompts", PROMPT_COLUMNS, prompt_rows)
    write_rows(connection, "responses", RESPONSE_COLUMNS, response_rows)
    for prompt_id, (_, parsed) in zip(ids, fresh, strict=True):
        if parsed.reference is not None:
            attached.append((prompt_id, parsed, True))
    result.references += references.write_references(session, attached, source=judged.source, error=judged.error)
    result.imported += len(fresh)
