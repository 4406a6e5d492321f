"""The task queue and label submission: the rules that keep every label stored exactly once.

Each prompt carries `active_count` (completed + currently leased) and `target_overlap`. "Next task"
walks the partial index ix_prompts_open (project_id, active_count, id; only prompts that still want
annotators) from the least-served prompt, skipping prompts this annotator already holds or finished,
and on PostgreSQL rows other transactions are claiming (FOR UPDATE SKIP LOCKED). On SQLite, request
transactions take the write lock up front (BEGIN IMMEDIATE, see app.db), so claims serialise.
Expired leases are reclaimed lazily before each claim.
"""
import random
from collections import Counter
from datetime import timedelta

from sqlalchemy import exists, func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from app.agreement.service import review_prompt_overlap
from app.annotation.schemas import (
    AnnotationCreate,
    AnnotationRead,
    ResponseView,
    TaskRead,
)
from app.errors import Conflict, NotFound, Unprocessable
from app.models import (
    Annotation,
    Assignment,
    AssignmentStatus,
    Project,
    ProjectKind,
    Prompt,
    User,
)
from app.models.base import as_utc, utcnow

_system_random = random.SystemRandom()
_shuffle = _system_random.shuffle
_random = _system_random.random


def reclaim_expired_leases(*, session: Session, project_id: int | None = None) -> int:
    """Return abandoned work to the pool. Safe under concurrency: only one UPDATE wins each row."""
    query = update(Assignment).where(
        Assignment.status == AssignmentStatus.leased, Assignment.lease_expires_at <= utcnow()
    )
    if project_id is not None:
        query = query.where(Assignment.project_id == project_id)
    prompt_ids = session.scalars(query.values(status=AssignmentStatus.expired).returning(Assignment.prompt_id)).all()
    for count, ids in _group_by_count(Counter(prompt_ids)).items():
        session.execute(
            update(Prompt).where(Prompt.id.in_(ids)).values(active_count=Prompt.active_count - count)
        )
    return len(prompt_ids)


def _group_by_count(counter: Counter[int]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for prompt_id, count in counter.items():
        groups.setdefault(count, []).append(prompt_id)
    return groups


def _live_leases(project: Project, annotator: User):
    """The annotator's oldest unexpired lease in the project (add a where() to narrow it)."""
    return select(Assignment).where(
        Assignment.annotator_id == annotator.id,
        Assignment.project_id == project.id,
        Assignment.status == AssignmentStatus.leased,
        Assignment.lease_expires_at > utcnow(),
    ).order_by(Assignment.id).limit(1)


def _claim_prompt(*, session: Session, project: Project, annotator: User, gold_rate: float, postgres: bool) -> Prompt | None:
    """Boosted prompts (adaptive overlap) first; a gold prompt now and then; else the least-served prompt."""
    seen_by_me = exists().where(
        Assignment.prompt_id == Prompt.id,
        Assignment.annotator_id == annotator.id,
        Assignment.status != AssignmentStatus.expired,
    )
    open_for_me = select(Prompt).where(
        Prompt.project_id == project.id, Prompt.active_count < Prompt.target_overlap, ~seen_by_me
    ).limit(1)
    queues = []
    if project.adaptive_threshold is not None:  # only adaptive overlap boosts prompts
        queues.append(open_for_me.where(Prompt.boosted).order_by(Prompt.id))
    if gold_rate and _random() < gold_rate:
        queues.append(open_for_me.where(Prompt.is_gold).order_by(Prompt.id))  # walks ix_prompts_gold, not the queue
    queues.append(open_for_me.order_by(Prompt.active_count, Prompt.id))
    for query in queues:
        if postgres:
            query = query.with_for_update(skip_locked=True, of=Prompt)
        prompt = session.scalar(query.options(selectinload(Prompt.responses)))  # task_view needs them too
        if prompt is not None:
            return prompt
    return None


def _held_or_lock(session: Session, annotator: User, held) -> tuple[Assignment | None, bool]:
    """A lease the annotator holds (the `held` query), or else, on PostgreSQL, the annotator's row locked so that
    one claim at a time happens per annotator (double clicks, several tabs), and `held` asked again under the
    lock. Holding a lease already, the common case, takes no lock: a row lock is a write, and a write makes the
    commit wait for the WAL flush. Returns (lease or None, is PostgreSQL)."""
    lease = session.scalar(held)
    postgres = session.get_bind().dialect.name == "postgresql"
    if lease is None and postgres:
        session.execute(select(User.id).where(User.id == annotator.id).with_for_update())
        lease = session.scalar(held)  # READ COMMITTED: sees a claim committed while we waited
    return lease, postgres


def next_task(
    *, session: Session, project: Project, annotator: User, lease_minutes: int, gold_rate: float = 0.0
) -> Assignment | None:
    """The annotator's current lease, or a new one on the least-served prompt they haven't seen; None if none."""
    return _held_or_new(session=session, project=project, annotator=annotator, held=_live_leases(project, annotator),
                        lease_minutes=lease_minutes, gold_rate=gold_rate)


def prefetch_task(
    *, session: Session, project: Project, annotator: User, after_task_id: int | None, lease_minutes: int,
    gold_rate: float = 0.0,
) -> Assignment | None:
    """The task to show once `after_task_id` (the one on screen) is done, leased now so the page can show it
    at once. Repeat calls return the same task, and an annotator never holds more than two leases in a
    project: the one on screen and the one prefetched. None if nothing else is left."""
    query = _live_leases(project, annotator)
    if after_task_id is not None:
        query = query.where(Assignment.id != after_task_id)
    return _held_or_new(session=session, project=project, annotator=annotator, held=query,
                        lease_minutes=lease_minutes, gold_rate=gold_rate)


def _held_or_new(
    *, session: Session, project: Project, annotator: User, held, lease_minutes: int, gold_rate: float
) -> Assignment | None:
    """The lease the `held` query finds, or else a new one (None if nothing is left for the annotator)."""
    lease, postgres = _held_or_lock(session, annotator, held)
    if lease is not None:
        return lease
    return _lease_new(session=session, project=project, annotator=annotator, lease_minutes=lease_minutes,
                      gold_rate=gold_rate, postgres=postgres)


def _lease_new(
    *, session: Session, project: Project, annotator: User, lease_minutes: int, gold_rate: float, postgres: bool
) -> Assignment | None:
    reclaim_expired_leases(session=session, project_id=project.id)
    prompt = _claim_prompt(session=session, project=project, annotator=annotator, gold_rate=gold_rate, postgres=postgres)
    if prompt is None:
        return None
    response_ids = [r.id for r in prompt.responses]
    _shuffle(response_ids)  # a random order per assignment, against position bias
    now = utcnow()
    expires = now + timedelta(minutes=lease_minutes)
    lapsed = session.scalar(
        select(Assignment).where(Assignment.prompt_id == prompt.id, Assignment.annotator_id == annotator.id)
    )
    if lapsed is not None:  # this annotator's own lease on it had expired: renew that row
        lapsed.status, lapsed.leased_at, lapsed.lease_expires_at, lapsed.shown_order = (
            AssignmentStatus.leased, now, expires, response_ids
        )
        assignment = lapsed
    else:
        assignment = Assignment(
            project_id=project.id, prompt_id=prompt.id, annotator_id=annotator.id, leased_at=now,
            lease_expires_at=expires, shown_order=response_ids, status=AssignmentStatus.leased,
        )
        session.add(assignment)
    assignment.prompt = prompt  # keeps the prompt and its loaded responses in the session for task_view
    prompt.active_count += 1
    session.flush()
    return assignment


def get_own_task(*, session: Session, task_id: int, annotator: User, lock: bool = False) -> Assignment:
    """The caller's assignment; someone else's is a 404, not a 403, so task ids can't be probed."""
    query = select(Assignment).where(Assignment.id == task_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    assignment = session.scalar(query)
    if assignment is None or assignment.annotator_id != annotator.id:
        raise NotFound("Task not found")
    return assignment


def task_view(*, session: Session, project: Project, assignment: Assignment) -> TaskRead:
    prompt = session.get(Prompt, assignment.prompt_id)  # just claimed: already in the session with its responses
    if prompt is None or "responses" in inspect(prompt).unloaded:
        prompt = session.scalar(
            select(Prompt).where(Prompt.id == assignment.prompt_id).options(selectinload(Prompt.responses))
        )
    by_id = {r.id: r for r in prompt.responses}
    return TaskRead(
        task_id=assignment.id,
        project_id=project.id,
        kind=ProjectKind(project.kind),
        prompt_id=prompt.id,
        prompt=prompt.messages if prompt.is_chat else prompt.text,
        responses=[
            ResponseView(id=rid, text=by_id[rid].text, label=chr(ord("A") + i))
            for i, rid in enumerate(assignment.shown_order)
        ],
        allow_ties=project.allow_ties,
        strength_scale=project.strength_scale,
        rating_criteria=project.rating_criteria,
        lease_expires_at=assignment.lease_expires_at,
    )


def _normalise_judgement(project: Project, response_ids: set[int], data: AnnotationCreate) -> list[list[int]] | None:
    """The label as tiers of response ids (best first), after checking it against the task."""
    if project.kind == ProjectKind.ranking:
        if data.chosen is not None or data.rejected is not None or data.tie:
            raise Unprocessable("This is a ranking project: send `ranking`, not chosen/rejected/tie")
        if data.strength is not None:
            raise Unprocessable("`strength` is only for pairwise projects")
        if data.ranking is None:
            return None
        flat = [rid for tier in data.ranking for rid in tier]
        if any(not tier for tier in data.ranking):
            raise Unprocessable("`ranking` must not contain empty groups")
        if len(flat) != len(set(flat)) or set(flat) != response_ids:
            raise Unprocessable(
                f"`ranking` must list each of this task's responses exactly once: expected {sorted(response_ids)}, "
                f"got {flat}"
            )
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


def _read(annotation: Annotation, *, duplicate: bool = False) -> AnnotationRead:
    return AnnotationRead(
        id=annotation.id, task_id=annotation.assignment_id, prompt_id=annotation.prompt_id,
        ranking=annotation.ranking, strength=annotation.strength, none_acceptable=annotation.none_acceptable,
        flag=annotation.flag, created_at=annotation.created_at, duplicate=duplicate,
    )


def submit(
    *, session: Session, project: Project, assignment: Assignment, annotator: User, data: AnnotationCreate
) -> AnnotationRead:
    """Stores the label once. A repeated submit returns the stored label (duplicate=True)."""
    if assignment.status == AssignmentStatus.done:
        stored = session.scalar(select(Annotation).where(Annotation.assignment_id == assignment.id))
        return _read(stored, duplicate=True)
    if assignment.status == AssignmentStatus.skipped:
        raise Conflict("This task was skipped; it can no longer be labelled")

    prompt_query = select(Prompt).where(Prompt.id == assignment.prompt_id)
    if session.get_bind().dialect.name == "postgresql":
        prompt_query = prompt_query.with_for_update()
    prompt = session.scalar(prompt_query)
    response_ids = set(assignment.shown_order)  # every response of the prompt, in the order shown
    tiers = _normalise_judgement(project, response_ids, data)
    _check_ratings(project, response_ids, data.ratings)
    if tiers is None and not data.none_acceptable and not data.flag:
        raise Unprocessable("Send a ranking (or chosen/rejected), or mark none_acceptable, or flag the task")
    if data.flag and not (data.flag_reason or "").strip():
        raise Unprocessable("A flag needs a `flag_reason`")

    if assignment.status == AssignmentStatus.expired:
        # The lease ran out and its slot went back to the pool: accept only if the prompt still has room.
        if prompt.active_count >= prompt.target_overlap:
            raise Conflict("Your lease on this task expired and it has since been given to others")
        prompt.active_count += 1
    # A lease past its expiry that was not yet reclaimed still holds its slot: accepted as is.

    annotation = Annotation(
        assignment_id=assignment.id, project_id=project.id, prompt_id=prompt.id, annotator_id=annotator.id,
        kind=project.kind, ranking=tiers, strength=data.strength if tiers and len(tiers) == 2 else None,
        none_acceptable=data.none_acceptable, flag=data.flag, flag_reason=data.flag_reason,
        rationale=(data.rationale or "").strip() or None,
        ratings={name: {str(k): v for k, v in values.items()} for name, values in data.ratings.items()}
        if data.ratings else None,
        time_spent_ms=data.time_spent_ms
        if data.time_spent_ms is not None
        else int((utcnow() - as_utc(assignment.leased_at)).total_seconds() * 1000),
        shown_order=assignment.shown_order,
    )
    try:
        with session.begin_nested():
            session.add(annotation)
    except IntegrityError:  # a concurrent identical submit won the race; report its row
        stored = session.scalar(select(Annotation).where(Annotation.assignment_id == assignment.id))
        return _read(stored, duplicate=True)
    assignment.status = AssignmentStatus.done
    prompt.completed_count += 1
    session.flush()
    review_prompt_overlap(session=session, project=project, prompt=prompt)
    return _read(annotation)


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
    session.flush()


def annotator_done_count(*, session: Session, project: Project, annotator: User) -> int:
    return session.scalar(
        select(func.count()).select_from(Annotation).where(
            Annotation.project_id == project.id, Annotation.annotator_id == annotator.id
        )
    )
