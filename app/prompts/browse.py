"""The prompt browser: a project's prompts filtered and sorted, a page at a time (keyset pagination).

The cursor is opaque to callers: the sort it was made for, the last row's sort key and its id (ties are broken
by id, so every prompt appears exactly once however many share a key). It holds no filter: the caller sends
the same filters with it."""

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, exists, func, literal, select, tuple_
from sqlalchemy.orm import Session

from app.annotation import overlap
from app.errors import Unprocessable
from app.models import Annotation, Assignment, AssignmentStatus, ImportBatch, Project, Prompt, ReferenceLabel, User, shown_in
from app.models.base import MAX_ID, utcnow
from app.prompts import search
from app.prompts.schemas import PromptItem, PromptPage, PromptQuery, PromptSort
from app.text import shorten

EXCERPT_CHARS = 240

# Sort key and direction per sort; prompts without an agreement (fewer than two labels) sort last either way.
_KEYS: dict[PromptSort, tuple[ColumnElement[Any], bool]] = {
    "-date": (Prompt.__table__.c.id, True),  # ids follow import order, so id order is import-date order
    "date": (Prompt.__table__.c.id, False),
    "agreement": (func.coalesce(Prompt.agreement, literal(2.0)), False),
    "-agreement": (func.coalesce(Prompt.agreement, literal(-1.0)), True),
}


def encode_cursor(sort: PromptSort, key: float | int, prompt_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([sort, key, prompt_id])).decode().rstrip("=")


def decode_cursor(cursor: str, sort: PromptSort) -> tuple[float | int, int]:
    try:
        made_for, key, prompt_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, TypeError):
        raise Unprocessable("cursor: not a cursor this API gave out; start again without one") from None
    if made_for != sort:
        raise Unprocessable(f"cursor: made for sort={made_for}, not sort={sort}; start again without one")
    # Keys are ids or agreements (0-1, or the sentinels of _KEYS): anything else was not made here.
    if (
        not isinstance(key, int | float)
        or isinstance(key, bool)
        or not -MAX_ID <= key <= MAX_ID
        or not isinstance(prompt_id, int)
        or not 0 <= prompt_id <= MAX_ID
    ):
        raise Unprocessable("cursor: not a cursor this API gave out; start again without one")
    return key, prompt_id


def _conditions(session: Session, project: Project, query: PromptQuery, now: datetime) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [shown_in(project.id)]
    if query.status is not None:
        where.append(overlap.prompt_status(query.status, now))
    if query.q and query.q.strip():
        where.append(search.matches(session.get_bind().dialect.name, query.q))
    if query.min_agreement is not None:
        where.append(Prompt.agreement >= query.min_agreement)
    if query.max_agreement is not None:
        where.append(Prompt.agreement <= query.max_agreement)
    if query.annotator is not None:
        where.append(exists().where(Annotation.prompt_id == Prompt.id, Annotation.annotator_id == query.annotator))
    if query.flagged is not None:
        flagged = exists().where(Annotation.prompt_id == Prompt.id, Annotation.flag.is_not(None))
        where.append(flagged if query.flagged else ~flagged)
    if query.skipped is not None:
        skipped = exists().where(Assignment.prompt_id == Prompt.id, Assignment.status == AssignmentStatus.skipped)
        where.append(skipped if query.skipped else ~skipped)
    if query.gold is not None:
        where.append(Prompt.is_gold.is_(query.gold))
    if query.has_reference is not None:
        where.append(_HAS_REFERENCE if query.has_reference else ~_HAS_REFERENCE)
    return where


_HAS_REFERENCE = exists().where(ReferenceLabel.prompt_id == Prompt.id)  # from any source


def browse(*, session: Session, project: Project, query: PromptQuery, url_for) -> PromptPage:
    """One page of the project's prompts under the query's filters and sort; url_for(prompt_id) gives a row's link."""
    now = utcnow()
    key, descending = _KEYS[query.sort]
    where = _conditions(session, project, query, now)
    if query.cursor is not None:
        after = tuple_(key, Prompt.id)
        last = tuple_(*decode_cursor(query.cursor, query.sort))
        where.append(after < last if descending else after > last)
    flags = select(func.count()).where(Annotation.prompt_id == Prompt.id, Annotation.flag.is_not(None)).scalar_subquery()
    skips = (
        select(func.count())
        .where(Assignment.prompt_id == Prompt.id, Assignment.status == AssignmentStatus.skipped)
        .scalar_subquery()
    )
    held = overlap.prompt_held(now)
    rows = session.execute(
        select(Prompt, key, overlap.COMPLETE, held, flags, skips, ImportBatch.created_at, _HAS_REFERENCE)
        .outerjoin(ImportBatch, ImportBatch.id == Prompt.batch_id)
        .where(*where)
        .order_by(key.desc() if descending else key, Prompt.id.desc() if descending else Prompt.id)
        .limit(query.limit + 1)
    ).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = [
        PromptItem(
            id=prompt.id,
            external_id=prompt.external_id,
            excerpt=shorten(prompt.text, EXCERPT_CHARS),
            status="complete" if complete else "in_progress" if in_progress else "open",
            agreement=prompt.agreement,
            labels=prompt.completed_count,
            target=prompt.target_overlap,
            is_gold=prompt.is_gold,
            has_reference=has_reference,
            flags=n_flags,
            skips=n_skips,
            imported_at=imported_at,
            url=url_for(prompt.id),
        )
        for prompt, _, complete, in_progress, n_flags, n_skips, imported_at, has_reference in rows
    ]
    next_cursor = encode_cursor(query.sort, rows[-1][1], rows[-1][0].id) if more else None
    return PromptPage(items=items, next_cursor=next_cursor)


def labelling_annotators(*, session: Session, project: Project) -> list[User]:
    """Everyone who labelled a prompt of the project: the annotator filter's choices."""
    labelled = select(Annotation.annotator_id).where(Annotation.project_id == project.id).distinct()
    return list(session.scalars(select(User).where(User.id.in_(labelled)).order_by(User.email)))
