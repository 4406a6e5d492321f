"""Batch import: parse a stream, write prompts in chunks, all or nothing."""
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from app.models import ImportBatch, Project, ProjectKind, Prompt, Response, User
from app.prompts.parsing import PREFERENCE_FORMATS, ErrorCollector, ParsedPrompt, content_digest, parse_batch

CHUNK_SIZE = 1000


@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    total_errors: int = 0
    batch_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.total_errors == 0


class _Rejected(Exception):
    """Raised inside the savepoint so everything the import wrote is rolled back."""


def content_id(prompt: ParsedPrompt) -> str:
    """An id for prompts uploaded without one: the same content re-uploaded is recognised and skipped."""
    return "sha256:" + content_digest(prompt.messages, [r.text for r in prompt.responses])[:32]


def import_batch(
    *, session: Session, project: Project, stream: BinaryIO, filename: str, uploaded_by: User | None,
    record_format: str = "auto",
) -> ImportResult:
    """Imports every prompt of the file, or none (then `result.errors` says why, by line and field).

    `record_format`: "auto" (by each record's keys), "prompts", or a preference format (trl, trl-chat, hh,
    ultrafeedback; app/prompts/preferences.py) whose records become pairwise prompts with a reference label."""
    if record_format in PREFERENCE_FORMATS and project.kind != ProjectKind.pairwise:  # else the parser says so
        return _rejected(f"the {record_format} format holds preference pairs (chosen/rejected): import it into a "
                         f"pairwise project; this is a {project.kind} project")
    result = ImportResult()
    collector = ErrorCollector()
    low, high = project.response_bounds
    try:
        with session.begin_nested():
            batch = ImportBatch(project_id=project.id, filename=filename[:500], uploaded_by_id=uploaded_by.id if uploaded_by else None)
            session.add(batch)
            session.flush()
            seen: set[str] = set()  # ids of this file, for content ids repeated inside it
            items = parse_batch(stream, filename=filename, min_responses=low, max_responses=high, record_format=record_format)
            for chunk in collector.chunks(items, size=CHUNK_SIZE):
                _write_chunk(session=session, project=project, batch=batch, chunk=chunk, seen=seen, result=result)
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
    *, session: Session, project: Project, batch: ImportBatch, chunk: list[ParsedPrompt], seen: set[str],
    result: ImportResult,
) -> None:
    keyed = [(p.external_id or content_id(p), p) for p in chunk]
    existing = set(
        session.scalars(
            select(Prompt.external_id).where(
                Prompt.project_id == project.id, Prompt.external_id.in_([key for key, _ in keyed])
            )
        )
    )
    fresh: list[tuple[str, ParsedPrompt]] = []
    for key, parsed in keyed:
        if key in existing or key in seen:  # the parser already rejects repeated explicit ids
            result.skipped += 1
            continue
        seen.add(key)
        fresh.append((key, parsed))
    if not fresh:
        return
    ids = session.scalars(
        insert(Prompt).returning(Prompt.id, sort_by_parameter_order=True),
        [
            {
                "project_id": project.id, "batch_id": batch.id, "external_id": key, "messages": p.messages,
                "is_chat": p.is_chat, "metadata_": p.metadata, "target_overlap": project.overlap,
                "completed_count": 0, "active_count": 0,
            }
            for key, p in fresh
        ],
    ).all()
    session.execute(
        insert(Response),
        [
            {"prompt_id": prompt_id, "position": position, "text": r.text, "model": r.model, "metadata_": r.metadata}
            for prompt_id, (_, parsed) in zip(ids, fresh, strict=True)
            for position, r in enumerate(parsed.responses)
        ],
    )
    referenced = {prompt_id: parsed for prompt_id, (_, parsed) in zip(ids, fresh, strict=True) if parsed.reference}
    if referenced:  # imported preference pairs: their reference label, from positions to the new response ids
        by_position = {
            (prompt_id, position): response_id
            for prompt_id, position, response_id in session.execute(
                select(Response.prompt_id, Response.position, Response.id).where(Response.prompt_id.in_(list(referenced)))
            )
        }
        session.execute(update(Prompt), [
            {"id": prompt_id, "reference_source": parsed.reference_source,
             "reference_ranking": [[by_position[prompt_id, i] for i in tier] for tier in parsed.reference]}
            for prompt_id, parsed in referenced.items()
        ])
    result.imported += len(fresh)
