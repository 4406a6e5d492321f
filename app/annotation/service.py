"""The task queue and label submission: the rules that keep every label stored exactly once.

Each prompt carries `active_count` (completed + currently leased) and `target_overlap`. "Next task"
walks the partial index ix_prompts_open (project_id, active_count, id; only prompts that still want
annotators) from the least-served prompt, skipping prompts this annotator already holds or finished,
and on PostgreSQL rows other transactions are claiming (FOR UPDATE SKIP LOCKED). On SQLite, request
transactions take the write lock up front (BEGIN IMMEDIATE, see app.db), so claims serialise.
Expired leases are reclaimed lazily before each claim.

This is the hot path (every label is one "next" and one "submit"), so it speaks in few statements:
a claim is one UPDATE ... RETURNING, a lease one INSERT ... ON CONFLICT, a label one INSERT ... ON
CONFLICT and counters move by atomic UPDATEs rather than through the unit of work.
"""

import functools
import random
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import JSON, ReturnsRows, bindparam, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import ExecutableReturnsRows

from app.agreement.labels import refresh_agreement
from app.annotation import overlap
from app.annotation.schemas import (
    AnnotationCreate,
    AnnotationRead,
    MyLabel,
    MyLabelsPage,
    ResponseView,
    TaskRead,
)
from app.db import is_postgres
from app.errors import Conflict, NotFound, Unprocessable
from app.models import (
    Annotation,
    AnnotationRevision,
    Assignment,
    AssignmentStatus,
    Identity,
    Project,
    ProjectKind,
    ProjectMember,
    Prompt,
    Response,
    User,
    shown_in,
)
from app.models.base import as_utc, utcnow
from app.rankings import Tiers, order_changed, tiers_problem

_system_random = random.SystemRandom()
_shuffle = _system_random.shuffle
_random = _system_random.random


# The hot path's statements are built once, with bind parameters: building a statement and its cache key on every
# call cost as much CPU as running it. Those whose rows the session needn't track run on the session's connection
# (`_core`), skipping the ORM's per-statement bookkeeping (a third of the CPU of an UPDATE). FOR UPDATE [SKIP LOCKED]
# renders on PostgreSQL; SQLite leaves it out (its request transactions hold the write lock anyway).
_LEASED, _EXPIRED = AssignmentStatus.leased, AssignmentStatus.expired

_RECLAIM = (
    update(Assignment)
    .where(
        Assignment.project_id == bindparam("project"),
        Assignment.status == _LEASED,
        Assignment.lease_expires_at <= bindparam("now"),
    )
    .values(status=_EXPIRED)
    .returning(Assignment.prompt_id)
)

_HELD = (
    select(Assignment.id)  # a plain id: the API's "next" after a submit finds none, and loads no entity
    .where(  # the annotator's oldest unexpired lease in the project
        Assignment.annotator_id == bindparam("annotator"),
        Assignment.project_id == bindparam("project"),
        Assignment.status == _LEASED,
        Assignment.lease_expires_at > bindparam("now"),
    )
    .order_by(Assignment.id)
    .limit(1)
)
_HELD_OTHER = _HELD.where(Assignment.id != bindparam("after"))  # ... other than the task on screen

_LOCK_ANNOTATOR = select(User.id).where(User.id == bindparam("annotator")).with_for_update()


def _claim(queue: str) -> ExecutableReturnsRows:
    """UPDATE prompts SET active_count + 1 WHERE id = (the first open prompt of `queue` for the annotator), RETURNING
    the prompt and its responses: finding, counting and reading a claim in one statement. Open: still wants annotators
    (app.annotation.overlap), and not one this annotator holds or finished. Run as a Core UPDATE whose rows load as
    (Prompt entity, responses as JSON) (`_as_entities`)."""
    seen_by_me = exists().where(
        Assignment.prompt_id == Prompt.id,
        Assignment.annotator_id == bindparam("annotator"),
        Assignment.status != _EXPIRED,
    )
    not_mine = select(Prompt.id).where(shown_in(bindparam("project")), ~seen_by_me)
    first_open = (
        {
            # adaptive overlap asks for one more
            "boosted": not_mine.where(overlap.UNDER_TARGET, Prompt.boosted).order_by(Prompt.id),
            # for every annotator, whatever the target; walks ix_prompts_gold, not the queue
            "gold": not_mine.where(Prompt.is_gold).order_by(Prompt.id),
            # walks ix_prompts_open
            "least_served": not_mine.where(overlap.UNDER_TARGET).order_by(Prompt.active_count, Prompt.id),
        }[queue]
        .limit(1)
        .with_for_update(skip_locked=True)
        .correlate(None)
    )  # its own FROM prompts, not the UPDATE's
    claimed = (
        update(Prompt)
        .where(Prompt.id == first_open.scalar_subquery())
        .values(active_count=Prompt.active_count + 1)
        .returning(*Prompt.__table__.columns, _RESPONSES_OF_CLAIMED)
    )
    return _as_entities(Prompt, claimed, _RESPONSES_OF_CLAIMED)


class _ResponsesAsJson(FunctionElement):
    """The claimed prompt's responses as JSON `[[id, text], ...]` (in no particular order: the lease shuffles them),
    a subquery in the claim's RETURNING, so a claim and its responses are one round trip. Spelt per dialect below;
    SQLite's RETURNING takes subqueries but, unlike PostgreSQL, no UPDATE inside a WITH."""

    type = JSON()
    inherit_cache = True
    name = "responses_as_json"


_RESPONSES_JSON = "(SELECT {agg}({pair}(responses.id, responses.text)) FROM responses WHERE responses.prompt_id = prompts.id)"


@compiles(_ResponsesAsJson, "postgresql")
def _responses_as_json_postgresql(element, compiler, **kw) -> str:
    return _RESPONSES_JSON.format(agg="json_agg", pair="json_build_array")


@compiles(_ResponsesAsJson, "sqlite")
def _responses_as_json_sqlite(element, compiler, **kw) -> str:
    return _RESPONSES_JSON.format(agg="json_group_array", pair="json_array")


_RESPONSES_OF_CLAIMED = _ResponsesAsJson().label("shown_responses")


_CLAIMS: dict[str, ExecutableReturnsRows] = {}  # queue -> its claim statement


def _claim_statement(queue: str) -> ExecutableReturnsRows:
    """`_claim(queue)`, built on first use and then reused (see above). Not at import: the mutation run (TESTING.md)
    switches `_claim` to a mutant after the import, and the queue tests start from an empty `_CLAIMS`."""
    statement = _CLAIMS.get(queue)
    if statement is None:
        statement = _CLAIMS[queue] = _claim(queue)
    return statement


_RESPONSES = select(Response.id, Response.text).where(Response.prompt_id == bindparam("prompt"))  # plain rows
# In Session.info: prompt id -> {response id: text}, the responses a claim returned, for task_view in the same request
# (a request's session; responses are never edited, only deleted with their project, so an entry cannot go stale).
_SHOWN = "shown_responses"

_OWN_TASK = (
    select(Assignment, Project)
    .join(Project, Project.id == Assignment.project_id)
    # Still a member: a task leased before the annotator was removed from the project is gone with the membership.
    .join(ProjectMember, (ProjectMember.project_id == Assignment.project_id) & (ProjectMember.user_id == Assignment.annotator_id))
    .where(Assignment.id == bindparam("task"), Assignment.annotator_id == bindparam("annotator"))
)
_OWN_TASK_LOCKED = _OWN_TASK.with_for_update(of=Assignment)

_LEASE_FIELDS = ("status", "leased_at", "lease_expires_at", "shown_order")
_NEW_LEASE_FIELDS = ("project_id", "prompt_id", "annotator_id", *_LEASE_FIELDS)


def _as_entities(entity: type, dml: ReturnsRows, *columns: Any) -> ExecutableReturnsRows:
    """An INSERT/UPDATE ... RETURNING the entity's columns (and `columns`, returned beside the entity), loaded by the
    session as entities (with populate_existing, replacing what it held). Not an ORM-enabled INSERT/UPDATE: those go through the ORM's bulk paths, which build a new
    statement and so its cache key on every call (for the claim and the lease, the keys alone were 4-6 % of a label's
    CPU in py-spy's samples; BENCHMARKS.md "Annotate against the stack's floor")."""
    return select(entity, *columns).from_statement(dml)


@functools.cache
def _upserts(dialect: str) -> tuple:
    """(new lease, new label): INSERT ... ON CONFLICT in the dialect's spelling."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    new_lease = insert(Assignment).values({name: bindparam(name) for name in _NEW_LEASE_FIELDS})
    # One row per (prompt, annotator): if this annotator's own earlier lease on the prompt expired, renew that row.
    lease = _as_entities(
        Assignment,
        new_lease.on_conflict_do_update(
            index_elements=[Assignment.prompt_id, Assignment.annotator_id],
            set_={name: new_lease.excluded[name] for name in _LEASE_FIELDS},
            where=Assignment.status == _EXPIRED,
        ).returning(*Assignment.__table__.columns),
    )
    label = (
        insert(Annotation)
        .on_conflict_do_nothing(index_elements=[Annotation.assignment_id])
        .returning(*Annotation.__table__.columns)
    )  # a row, not an entity: the answer is built from it
    return lease, label


_COUNT_LABEL = (
    update(Prompt)
    .where(Prompt.id == bindparam("prompt"))
    .values(completed_count=Prompt.completed_count + 1)
    .returning(Prompt.id, Prompt.completed_count)
)
# A label on a lease that expired and gave its slot back: it takes the slot again, if the prompt still has room.
_COUNT_LATE_LABEL = _COUNT_LABEL.where(overlap.WANTS_ANNOTATORS).values(active_count=Prompt.active_count + 1)
_MARK_DONE = update(Assignment).where(Assignment.id == bindparam("task")).values(status=AssignmentStatus.done)

# Rows RETURNING'd by an UPDATE/INSERT replace what the session held (`_as_entities`).
_FRESH = {"populate_existing": True}


def _core(session: Session):
    """The session's connection, in its transaction: statements run here return plain rows."""
    return session.connection()


def reclaim_expired_leases(*, session: Session, project_id: int) -> int:
    """Return abandoned work to the pool. Safe under concurrency: only one UPDATE wins each row."""
    prompt_ids = _core(session).execute(_RECLAIM, {"project": project_id, "now": utcnow()}).scalars().all()
    _give_back_slots(session, prompt_ids)
    return len(prompt_ids)


def release_leases(*, session: Session, project_id: int, annotator_id: int) -> int:
    """End an annotator's open leases in a project now (they were removed from it): their prompts go back to the
    pool at once instead of when the leases run out. A lease being labelled concurrently keeps its label: the
    submit holds the assignment row (PostgreSQL) or the write lock (SQLite), and this UPDATE then finds it done."""
    now = utcnow()
    prompt_ids = (
        _core(session)
        .execute(
            update(Assignment)
            .where(Assignment.project_id == project_id, Assignment.annotator_id == annotator_id, Assignment.status == _LEASED)
            .values(status=_EXPIRED, lease_expires_at=now)
            .returning(Assignment.prompt_id)
        )
        .scalars()
        .all()
    )
    _give_back_slots(session, prompt_ids)
    return len(prompt_ids)


def _give_back_slots(session: Session, prompt_ids: list[int]) -> None:
    """Each ended lease gives its prompt's slot (active_count) back; one UPDATE per distinct count."""
    for count, ids in _group_by_count(Counter(prompt_ids)).items():
        session.execute(update(Prompt).where(Prompt.id.in_(ids)).values(active_count=Prompt.active_count - count))


def _group_by_count(counter: Counter[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for prompt_id, count in counter.items():
        groups.setdefault(count, []).append(prompt_id)
    return groups


def _claim_prompt(*, session: Session, project: Project, annotator: Identity, gold_rate: float) -> Prompt | None:
    """Boosted prompts (adaptive overlap) first; a gold prompt now and then; else the least-served prompt; else a
    gold prompt past its target (gold prompts are for every annotator)."""
    queues = []
    if project.adaptive_threshold is not None:  # only adaptive overlap boosts prompts
        queues.append("boosted")
    gold_first = gold_rate and _random() < gold_rate
    if gold_first:
        queues.append("gold")
    queues.append("least_served")
    if not gold_first:
        queues.append("gold")
    params = {"project": project.id, "annotator": annotator.id}
    for queue in queues:
        claimed = session.execute(_claim_statement(queue), params, execution_options=_FRESH).first()
        if claimed is not None:
            prompt, responses = claimed
            session.info.setdefault(_SHOWN, {})[prompt.id] = {rid: text for rid, text in responses or ()}
            return prompt
    return None


def _response_texts(session: Session, prompt_id: int) -> dict[int, str]:
    """The prompt's responses, id -> text: as its claim in this session returned them, else read (plain rows)."""
    texts = session.info.get(_SHOWN, {}).get(prompt_id)
    if texts is None:
        texts = {rid: text for rid, text in _core(session).execute(_RESPONSES, {"prompt": prompt_id})}
    return texts


def _held_or_lock(session: Session, held, params: dict) -> Assignment | None:
    """A lease the annotator holds (the `held` query), or else, on PostgreSQL, the annotator's row locked so that
    one claim at a time happens per annotator (double clicks, several tabs), and `held` asked again under the
    lock. Holding a lease already takes no lock: a row lock is a write, and a write makes the commit wait for the
    WAL flush. The query returns an id; the entity is loaded only for a lease that exists."""
    connection = _core(session)
    lease_id = connection.scalar(held, params)
    if lease_id is None and is_postgres(session):
        connection.execute(_LOCK_ANNOTATOR, params)
        lease_id = connection.scalar(held, params)  # READ COMMITTED: sees a claim committed while we waited
    return None if lease_id is None else session.get_one(Assignment, lease_id)


def next_task(
    *, session: Session, project: Project, annotator: Identity, lease_minutes: int, gold_rate: float = 0.0
) -> Assignment | None:
    """The annotator's current lease, or a new one on the least-served prompt they haven't seen; None if none."""
    return prefetch_task(
        session=session,
        project=project,
        annotator=annotator,
        after_task_id=None,
        lease_minutes=lease_minutes,
        gold_rate=gold_rate,
    )


def prefetch_task(
    *,
    session: Session,
    project: Project,
    annotator: Identity,
    after_task_id: int | None,
    lease_minutes: int,
    gold_rate: float = 0.0,
) -> Assignment | None:
    """The task to show once `after_task_id` (the one on screen) is done, leased now so the page can show it
    at once. Repeat calls return the same task, and an annotator never holds more than two leases in a
    project: the one on screen and the one prefetched. None if nothing else is left."""
    params = {"annotator": annotator.id, "project": project.id, "now": utcnow(), "after": after_task_id}
    lease = _held_or_lock(session, _HELD if after_task_id is None else _HELD_OTHER, params)
    if lease is not None:
        return lease
    return _lease_new(session=session, project=project, annotator=annotator, lease_minutes=lease_minutes, gold_rate=gold_rate)


def _lease_new(
    *, session: Session, project: Project, annotator: Identity, lease_minutes: int, gold_rate: float
) -> Assignment | None:
    reclaim_expired_leases(session=session, project_id=project.id)
    prompt = _claim_prompt(session=session, project=project, annotator=annotator, gold_rate=gold_rate)
    if prompt is None:
        return None
    response_ids = list(_response_texts(session, prompt.id))  # returned by the claim; task_view shows them next
    _shuffle(response_ids)  # a random order per assignment, against position bias
    now = utcnow()
    new_lease, _ = _upserts(session.get_bind().dialect.name)
    assignment = session.scalar(
        new_lease,
        {
            "project_id": project.id,
            "prompt_id": prompt.id,
            "annotator_id": annotator.id,
            "status": _LEASED,
            "leased_at": now,
            "lease_expires_at": now + timedelta(minutes=lease_minutes),
            "shown_order": response_ids,
        },
        execution_options=_FRESH,
    )
    if assignment is None:  # cannot happen: the claim skips prompts this annotator holds or finished
        raise Conflict("This task is already yours; reload the page")
    set_committed_value(assignment, "prompt", prompt)  # holds the prompt in the session for task_view
    return assignment


def get_own_task(*, session: Session, task_id: int, annotator: Identity, lock: bool = False) -> tuple[Assignment, Project]:
    """The caller's assignment and its project, in one query; someone else's, or one in a project the caller is no
    longer a member of, is a 404, not a 403, so task ids can't be probed. lock=True: on PostgreSQL, the assignment row stays locked until commit (submit, skip)."""
    row = session.execute(_OWN_TASK_LOCKED if lock else _OWN_TASK, {"task": task_id, "annotator": annotator.id}).first()
    if row is None:
        raise NotFound("Task not found")
    return row[0], row[1]


def task_view(*, session: Session, project: Project, assignment: Assignment) -> TaskRead:
    prompt = session.get_one(Prompt, assignment.prompt_id)  # just claimed: already in the session
    texts = _response_texts(session, prompt.id)
    return TaskRead(
        task_id=assignment.id,
        project_id=project.id,
        kind=ProjectKind(project.kind),
        prompt_id=prompt.id,
        prompt=prompt.messages if prompt.is_chat else prompt.text,
        responses=[
            ResponseView(id=rid, text=texts[rid], label=chr(ord("A") + i)) for i, rid in enumerate(assignment.shown_order)
        ],
        allow_ties=project.allow_ties,
        strength_scale=project.strength_scale,
        rating_criteria=project.rating_criteria,
        lease_expires_at=assignment.lease_expires_at,
    )


def _normalise_judgement(project: Project, response_ids: set[int], data: AnnotationCreate) -> Tiers | None:
    """The label as tiers of response ids (best first), after checking it against the task."""
    if project.kind == ProjectKind.ranking:
        if data.chosen is not None or data.rejected is not None or data.tie:
            raise Unprocessable("This is a ranking project: send `ranking`, not chosen/rejected/tie")
        if data.strength is not None:
            raise Unprocessable("`strength` is only for pairwise projects")
        if data.ranking is None:
            return None
        if problem := tiers_problem(data.ranking, response_ids):
            raise Unprocessable(f"`ranking` {problem}")
        if not project.allow_ties and any(len(tier) > 1 for tier in data.ranking):
            raise Unprocessable("This project does not allow ties: every group in `ranking` must hold one response")
        return [list(tier) for tier in data.ranking]

    if data.ranking is not None:
        raise Unprocessable("This is a pairwise project: send `chosen` and `rejected` (or `tie`), not `ranking`")
    if data.tie:
        if not project.allow_ties:
            raise Unprocessable("This project does not allow ties")
        if data.strength is not None:
            raise Unprocessable("A tie has no `strength`")
        return [sorted(response_ids)]
    if data.chosen is None and data.rejected is None:
        return None
    if {data.chosen, data.rejected} != response_ids:
        raise Unprocessable(
            f"`chosen` and `rejected` must be this task's two responses {sorted(response_ids)}, "
            f"got chosen={data.chosen}, rejected={data.rejected}"
        )
    scale = project.strength_scale
    if scale:
        if data.strength is None:
            raise Unprocessable(f"`strength` is required: an index 0..{len(scale) - 1} into {scale}")
        if data.strength >= len(scale):
            raise Unprocessable(f"`strength` must be between 0 and {len(scale) - 1}")
    elif data.strength is not None:
        raise Unprocessable("This project collects no preference strength")
    assert data.chosen is not None and data.rejected is not None  # checked above
    return [[data.chosen], [data.rejected]]


def _check_ratings(project: Project, response_ids: set[int], ratings: dict[str, dict[int, float]] | None) -> None:
    if not ratings:
        return
    criteria = {c["name"]: c for c in project.rating_criteria or []}
    for name, per_response in ratings.items():
        criterion = criteria.get(name)
        if criterion is None:
            raise Unprocessable(f"ratings: unknown criterion {name!r}; this project has {sorted(criteria) or 'none'}")
        for rid, value in per_response.items():
            if rid not in response_ids:
                raise Unprocessable(f"ratings.{name}: response {rid} is not part of this task")
            if not criterion["min"] <= value <= criterion["max"]:
                raise Unprocessable(
                    f"ratings.{name}: {value} for response {rid} is outside {criterion['min']}..{criterion['max']}"
                )


def _label_values(project: Project, assignment: Assignment, data: AnnotationCreate) -> dict[str, Any]:
    """The label's columns after checking it against the task: one rule for a first submit and a revision."""
    response_ids = set(assignment.shown_order)  # every response of the prompt, in the order shown
    tiers = _normalise_judgement(project, response_ids, data)
    _check_ratings(project, response_ids, data.ratings)
    if tiers is None and not data.none_acceptable and not data.flag:
        raise Unprocessable("Send a ranking (or chosen/rejected), or mark none_acceptable, or flag the task")
    if data.flag and not (data.flag_reason or "").strip():
        raise Unprocessable("A flag needs a `flag_reason`")
    return {
        "ranking": tiers,
        "strength": data.strength if tiers and len(tiers) == 2 else None,
        "none_acceptable": data.none_acceptable,
        "flag": data.flag,
        "flag_reason": data.flag_reason,
        "rationale": (data.rationale or "").strip() or None,
        "ratings": {name: {str(k): v for k, v in values.items()} for name, values in data.ratings.items()}
        if data.ratings
        else None,
        "order_changed": order_changed(tiers, assignment.shown_order),
    }


def _read(annotation, *, duplicate: bool = False) -> AnnotationRead:
    """From an Annotation or a row of its columns."""
    return AnnotationRead(
        id=annotation.id,
        task_id=annotation.assignment_id,
        prompt_id=annotation.prompt_id,
        ranking=annotation.ranking,
        strength=annotation.strength,
        none_acceptable=annotation.none_acceptable,
        flag=annotation.flag,
        order_changed=annotation.order_changed,
        created_at=annotation.created_at,
        revision=annotation.revision,
        revised_at=annotation.revised_at,
        duplicate=duplicate,
    )


def _stored(session: Session, assignment: Assignment) -> AnnotationRead:
    return _read(session.scalar(select(Annotation).where(Annotation.assignment_id == assignment.id)), duplicate=True)


def submit(
    *, session: Session, project: Project, assignment: Assignment, annotator: Identity, data: AnnotationCreate
) -> AnnotationRead:
    """Stores the label once. A repeated submit returns the stored label (duplicate=True)."""
    if assignment.status == AssignmentStatus.done:
        return _stored(session, assignment)
    if assignment.status == AssignmentStatus.skipped:
        raise Conflict("This task was skipped; it can no longer be labelled")

    _, new_label = _upserts(session.get_bind().dialect.name)
    label = {
        "assignment_id": assignment.id,
        "project_id": project.id,
        "prompt_id": assignment.prompt_id,
        "annotator_id": annotator.id,
        "kind": project.kind,
        **_label_values(project, assignment, data),
        "time_spent_ms": data.time_spent_ms
        if data.time_spent_ms is not None
        else int((utcnow() - as_utc(assignment.leased_at)).total_seconds() * 1000),
        "shown_order": assignment.shown_order,
        "created_at": utcnow(),
    }
    # The assignment row is locked (PostgreSQL) or the database is (SQLite), so a second submit normally finds
    # status done above; ON CONFLICT still makes a racing one report the stored row instead of failing.
    annotation = _core(session).execute(new_label, label).first()
    if annotation is None:
        return _stored(session, assignment)

    # A lease past its expiry that was not yet reclaimed still holds its slot: counted as is.
    counts = _COUNT_LATE_LABEL if assignment.status == _EXPIRED else _COUNT_LABEL
    counted = _core(session).execute(counts, {"prompt": assignment.prompt_id}).first()
    if counted is None:
        raise Conflict("Your lease on this task expired and it has since been given to others")  # rolls the label back
    _core(session).execute(_MARK_DONE, {"task": assignment.id})
    set_committed_value(assignment, "status", AssignmentStatus.done)
    _after_label(session, project, assignment.prompt_id, labels=counted.completed_count)
    return _read(annotation)


def _after_label(session: Session, project: Project, prompt_id: int, labels: int | None = None) -> None:
    """A label on the prompt was stored or revised: its stored agreement is refreshed (the prompt browser sorts by
    it) and adaptive overlap looks at the prompt again. `labels`: the prompt's label count, if known."""
    agreement = refresh_agreement(session=session, project=project, prompt_id=prompt_id, labels=labels)
    if project.adaptive_threshold is not None:
        prompt = session.get_one(Prompt, prompt_id, populate_existing=True)
        overlap.review_after_label(project=project, prompt=prompt, agreement=agreement)


# --- revisions: an annotator's own labels, and changing one (README "My labels") ------------------------

# The label's values a revision replaces; the earlier version keeps them in annotation_revisions.
_REVISED_FIELDS = ("ranking", "strength", "none_acceptable", "flag", "flag_reason", "rationale", "ratings", "order_changed")


def stored_label(*, session: Session, assignment: Assignment, lock: bool = False) -> Annotation:
    """The label on the caller's task (see get_own_task); a task without one is a 404, like someone else's."""
    query = select(Annotation).where(Annotation.assignment_id == assignment.id)
    annotation = session.scalar(query.with_for_update() if lock else query)
    if annotation is None:
        raise NotFound("This task has no label of yours yet")
    return annotation


def revise(
    *, session: Session, project: Project, assignment: Assignment, annotator: User, data: AnnotationCreate
) -> AnnotationRead:
    """Replace the caller's stored label on this task with `data`, checked as a submit is, keeping the version it
    replaces as a history row. The label row stays the one row of the task, so agreement, consensus and exports
    read the latest version; the queue is untouched (no lease, no count). The caller holds the assignment row
    (get_own_task lock=True); the label row is locked too, and (annotation_id, revision) is unique, so two racing
    revisions can never both record the same version."""
    annotation = stored_label(session=session, assignment=assignment, lock=True)
    if not project.revisions_open:
        raise Conflict("This project no longer accepts revisions of submitted labels")
    values = _label_values(project, assignment, data)
    now = utcnow()
    session.add(
        AnnotationRevision(
            annotation_id=annotation.id,
            revision=annotation.revision,
            revised_by_id=annotator.id,
            revised_at=now,
            submitted_at=annotation.revised_at or annotation.created_at,
            time_spent_ms=annotation.time_spent_ms,
            **{name: getattr(annotation, name) for name in _REVISED_FIELDS},
        )
    )
    for name, value in values.items():
        setattr(annotation, name, value)
    if data.time_spent_ms is not None:  # the label's time is the total spent on it, over its versions
        annotation.time_spent_ms = (annotation.time_spent_ms or 0) + data.time_spent_ms
    annotation.revision += 1
    annotation.revised_at = now
    session.flush()
    _after_label(session, project, assignment.prompt_id)  # agreement on the prompt may have changed
    return _read(annotation)


def label_as_input(annotation: Annotation) -> AnnotationCreate:
    """A stored label in the shape a submit sends (what the revise form starts from): pairwise tiers
    [[chosen], [rejected]] become chosen/rejected, [[a, b]] a tie."""
    tiers = annotation.ranking
    fields: dict[str, Any] = {}
    if annotation.kind == ProjectKind.ranking:
        fields["ranking"] = tiers
    elif tiers and len(tiers) == 1:
        fields["tie"] = True
    elif tiers:
        fields["chosen"], fields["rejected"] = tiers[0][0], tiers[1][0]
    return AnnotationCreate(
        **fields,
        strength=annotation.strength,
        none_acceptable=annotation.none_acceptable,
        flag=annotation.flag,
        flag_reason=annotation.flag_reason,
        rationale=annotation.rationale,
        ratings={name: {int(rid): v for rid, v in values.items()} for name, values in annotation.ratings.items()}
        if annotation.ratings
        else None,
    )


EXCERPT_CHARS = 160


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a text on one line, for lists."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def my_labels(*, session: Session, project: Project, annotator: User, limit: int, offset: int) -> MyLabelsPage:
    """The caller's own labels in a project, newest first (by submission, so pages stay put while labels are
    revised); nobody else's ever."""
    mine = (Annotation.project_id == project.id) & (Annotation.annotator_id == annotator.id)
    total = session.scalar(select(func.count()).select_from(Annotation).where(mine)) or 0
    rows = session.execute(
        select(Annotation, Prompt)
        .join(Prompt, Prompt.id == Annotation.prompt_id)
        .where(mine)
        .order_by(Annotation.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return MyLabelsPage(
        items=[
            MyLabel(
                annotation_id=a.id,
                task_id=a.assignment_id,
                prompt_id=p.id,
                prompt_external_id=p.external_id,
                prompt_excerpt=excerpt(p.text),
                label=label_as_input(a),
                order_changed=a.order_changed,
                submitted_at=a.created_at,
                revision=a.revision,
                revised_at=a.revised_at,
            )
            for a, p in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


def lease_seconds_left(assignment: Assignment) -> int:
    return max(0, int((as_utc(assignment.lease_expires_at) - utcnow()).total_seconds()))


def skip(*, session: Session, assignment: Assignment, reason: str | None) -> None:
    """Release the task; it is never offered to this annotator again and counts as no annotation."""
    if assignment.status == AssignmentStatus.done:
        raise Conflict("This task was already labelled")
    if assignment.status == AssignmentStatus.skipped:
        return
    if assignment.status == AssignmentStatus.leased:  # an expired row already gave its slot back
        session.execute(update(Prompt).where(Prompt.id == assignment.prompt_id).values(active_count=Prompt.active_count - 1))
    assignment.status = AssignmentStatus.skipped
    assignment.skip_reason = (reason or "").strip() or None
    assignment.skipped_at = utcnow()
    session.flush()


@dataclass(frozen=True)
class Progress:
    """The annotation page's progress line: "7 left for you · project 63 % done"."""

    left: int  # prompts the queue may still give this annotator, the tasks they hold included
    done: int  # their labels in the project
    complete: int  # prompts with all their labels (app.annotation.overlap.COMPLETE); gold prompts never are
    total: int  # prompts that can be complete: every prompt but the gold ones

    @property
    def percent(self) -> int:
        """Rounded down, so 100 % means every prompt is complete."""
        return 100 * self.complete // self.total if self.total else 100


def annotator_progress(*, session: Session, project: Project, annotator: User) -> Progress:
    """Two COUNT queries, one over the project's prompts and one over the annotator's assignments there.
    Left = prompts still wanting annotators (overlap.WANTS_ANNOTATORS, gold ones included: they are for
    everyone) that this annotator has not seen, plus the leases they hold now (on screen and prefetched)."""
    totals = session.execute(
        select(
            func.count().filter(~Prompt.is_gold),
            func.count().filter(overlap.COMPLETE),
            func.count().filter(overlap.WANTS_ANNOTATORS),
        ).where(shown_in(project.id))
    ).one()
    mine = session.execute(
        select(
            func.count().filter(Assignment.status == AssignmentStatus.done),
            func.count().filter(Assignment.status != _EXPIRED, overlap.WANTS_ANNOTATORS),  # seen: not offered again
            func.count().filter(Assignment.status == _LEASED, Assignment.lease_expires_at > utcnow()),
        )
        .join(Prompt, Prompt.id == Assignment.prompt_id)
        .where(Assignment.annotator_id == annotator.id, Assignment.project_id == project.id)
    ).one()
    total, complete, wanting = totals
    done, seen_wanting, held = mine
    return Progress(left=wanting - seen_wanting + held, done=done, complete=complete, total=total)
