"""Projects, membership and the counts on the project page; editing, archiving and deleting a project, each
change written to the project's audit log."""

from statistics import median
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.annotation import overlap
from app.annotation import service as annotation_service
from app.db import is_postgres
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.models import (
    Annotation,
    Assignment,
    AssignmentStatus,
    Identity,
    ImportBatch,
    Project,
    ProjectAudit,
    ProjectMember,
    Prompt,
    Response,
    Role,
    User,
    shown_in,
)
from app.models.base import as_utc, utcnow
from app.projects.schemas import EDITABLE_FIELDS, AnnotatorProgress, ProjectCreate, ProjectStats, field_errors
from app.text import shorten

AUDIT_SHOWN = 50  # newest audit rows on the project page
COMMAND_LINE = "command line"  # the actor of changes made with `preflab project ...`


def create_project(*, session: Session, data: ProjectCreate, created_by: User | None) -> Project:
    project = Project(
        name=data.name,
        kind=data.kind,
        overlap=data.overlap,
        allow_ties=data.allow_ties,
        strength_scale=data.strength_scale,
        rating_criteria=[c.model_dump() for c in data.rating_criteria] if data.rating_criteria else None,
        guidelines=data.guidelines,
        adaptive_threshold=data.adaptive_threshold,
        max_overlap=data.max_overlap,
        min_responses=data.min_responses,
        max_responses=data.max_responses,
        lease_minutes=data.lease_minutes,
        revisions_open=data.revisions_open,
        created_by_id=created_by.id if created_by else None,
    )
    try:
        with session.begin_nested():
            session.add(project)
    except IntegrityError:
        raise Conflict(f"A project named {data.name!r} already exists") from None
    return project


def is_member(*, session: Session, project_id: int, user_id: int) -> bool:
    return session.get(ProjectMember, (project_id, user_id)) is not None


def visible_projects(*, session: Session, user: User) -> list[Project]:
    query = select(Project).order_by(Project.id)
    if user.role == Role.annotator:  # their projects, archived ones hidden
        query = query.join(ProjectMember, ProjectMember.project_id == Project.id).where(
            ProjectMember.user_id == user.id, Project.archived_at.is_(None)
        )
    return list(session.scalars(query))


# Built once: it runs on every annotation call (see app.annotation.service on why statements are prebuilt there).
_PROJECT_AND_MEMBERSHIP = (
    select(Project, ProjectMember.user_id)
    .outerjoin(ProjectMember, (ProjectMember.project_id == Project.id) & (ProjectMember.user_id == bindparam("user")))
    .where(Project.id == bindparam("project"))
)


def _project_and_membership(*, session: Session, project_id: int, user: Identity) -> tuple[Project | None, bool]:
    """The project (None if there is none) and whether the user is a member, in one query."""
    row = session.execute(_PROJECT_AND_MEMBERSHIP, {"user": user.id, "project": project_id}).first()
    return (None, False) if row is None else (row[0], row[1] is not None)


def get_visible_project(*, session: Session, project_id: int, user: Identity, membership: bool = False) -> Project:
    """Annotators see only their projects, and not archived ones; anything else is a 404, so ids can't be probed.
    membership=True: the caller must also be a member, whatever the role (labelling), else 403; and the project
    open (409 if archived)."""
    if user.role != Role.annotator and not membership:
        project = session.get(Project, project_id)
        member = True
    else:
        project, member = _project_and_membership(session=session, project_id=project_id, user=user)
    if project is None or (user.role == Role.annotator and (not member or project.archived)):
        raise NotFound("Project not found")
    if not member:
        raise Forbidden("You are not an annotator of this project; an admin can add you on the project page")
    if membership:
        require_open(project)
    return project


def require_open(project: Project) -> None:
    """Archived projects are read-only: no new leases, labels, skips, imports or edits (export still works)."""
    if project.archived:
        raise Conflict(f"Project {project.name!r} is archived, so it is read-only; an admin can unarchive it")


def find_project(*, session: Session, name_or_id: str) -> Project:
    """For the CLI: a project by name, or by id if the argument is a number."""
    project = session.scalar(select(Project).where(Project.name == name_or_id))
    if project is None and name_or_id.isdigit():
        project = session.get(Project, int(name_or_id))
    if project is None:
        raise NotFound(f"No project named or numbered {name_or_id!r}")
    return project


def add_member(*, session: Session, project: Project, user: User) -> None:
    if not is_member(session=session, project_id=project.id, user_id=user.id):
        session.add(ProjectMember(project_id=project.id, user_id=user.id))
        session.flush()


def remove_member(*, session: Session, project: Project, user_id: int) -> None:
    """The user leaves the project; the tasks they hold go back to the pool (their later task calls are 404s)."""
    member = session.get(ProjectMember, (project.id, user_id))
    if member is not None:
        # Leases first: the UPDATE waits for a submit in flight on one of them (see release_leases).
        annotation_service.release_leases(session=session, project_id=project.id, annotator_id=user_id)
        session.delete(member)
        session.flush()


def members(*, session: Session, project: Project) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(ProjectMember, ProjectMember.user_id == User.id)
            .where(ProjectMember.project_id == project.id)
            .order_by(User.email)
        )
    )


def project_stats(*, session: Session, project: Project) -> ProjectStats:
    prompts, complete = session.execute(
        select(func.count(), func.count().filter(overlap.COMPLETE)).where(shown_in(project.id))
    ).one()
    annotations, annotators = session.execute(
        select(func.count(), func.count(func.distinct(Annotation.annotator_id))).where(Annotation.project_id == project.id)
    ).one()
    in_progress, skipped = session.execute(
        select(
            func.count().filter(overlap.held_now(utcnow())),
            func.count().filter(Assignment.status == AssignmentStatus.skipped),
        ).where(Assignment.project_id == project.id)
    ).one()
    return ProjectStats(
        prompts=prompts,
        annotations=annotations,
        complete=complete,
        in_progress=in_progress,
        skipped=skipped,
        annotators=annotators,
    )


# --- Editing, archiving, deleting -----------------------------------------------------------------


def settings_of(project: Project) -> dict[str, Any]:
    """The project's editable settings (and its kind, which their rules depend on), as JSON values."""
    return {"kind": project.kind} | {field: getattr(project, field) for field in EDITABLE_FIELDS}


def edit_project(*, session: Session, project: Project, changes: dict[str, Any], user: User | None) -> list[str]:
    """Apply a partial edit: the settings it leads to must pass ProjectCreate's rules (the same as at creation),
    else Unprocessable with `details` [{field, message}]. Every field that really changed is logged; returns them.

    Overlap changes retarget the prompts (app/annotation/overlap.py). Rating criteria and response bounds
    that stored data depends on can't be changed from under it (Conflict; README, "Editing, archiving and deleting a project")."""
    require_open(project)
    current = settings_of(project)
    try:
        new = ProjectCreate.model_validate(current | changes).model_dump(mode="json")
    except ValidationError as exc:
        errors = field_errors(exc.errors())
        summary = "; ".join(f"{field}: {message}" if field else message for field, message in errors.items())
        raise Unprocessable(f"Invalid project settings: {summary}", details=_details(errors)) from None
    changed = [field for field in EDITABLE_FIELDS if field in changes and new[field] != current[field]]
    if "rating_criteria" in changed:
        _check_criteria_unused(session, project, current["rating_criteria"], new["rating_criteria"])
    if "min_responses" in changed or "max_responses" in changed:
        _check_response_counts(session, project, new["min_responses"], new["max_responses"])
    for field in changed:
        setattr(project, field, new[field])
        _log(session, project, user, field, current[field], new[field])
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"A project named {new['name']!r} already exists", details=_details({"name": "in use"})) from None
    if "overlap" in changed:
        overlap.retarget(session=session, project=project, old_overlap=current["overlap"])
    return changed


def _details(errors: dict[str, str]) -> list[dict[str, str]]:
    """{field: message} in the API's shape of invalid fields (app/web/errors.py)."""
    return [{"field": field, "message": message} for field, message in errors.items()]


def _criterion_used(name: str, session: Session):
    """Annotations holding a rating for criterion `name` (ratings is {criterion: {response id: value}})."""
    if is_postgres(session):
        return Annotation.ratings.op("?")(name)
    return func.json_extract(Annotation.ratings, f'$."{name}"').is_not(None)  # names are [A-Za-z0-9_- ]


def _check_criteria_unused(session: Session, project: Project, old: list | None, new: list | None) -> None:
    """A criterion stored labels rate by may not be removed, nor its range changed (its values would fall
    outside it or mean something else); its description may change, and criteria may be added."""
    kept = {c["name"]: (c["min"], c["max"]) for c in new or []}
    for criterion in old or []:
        if kept.get(criterion["name"]) == (criterion["min"], criterion["max"]):
            continue
        used = session.scalar(
            select(func.count())
            .select_from(Annotation)
            .where(
                Annotation.project_id == project.id, Annotation.ratings.is_not(None), _criterion_used(criterion["name"], session)
            )
        )
        if used:
            raise Conflict(
                f"Rating criterion {criterion['name']!r} is used by {used} stored label(s): it can't be removed "
                "or given another range; add a new criterion instead",
                details=_details({"rating_criteria": f"{criterion['name']!r} is in use"}),
            )


def _check_response_counts(session: Session, project: Project, low: int, high: int) -> None:
    """New bounds must hold for the prompts already imported: they are the project's promise to its exports."""
    counts = (
        select(func.count(Response.id).label("n"))
        .join(Prompt, Prompt.id == Response.prompt_id)
        .where(Prompt.project_id == project.id)
        .group_by(Response.prompt_id)
        .subquery()
    )
    outside = session.scalar(select(func.count()).select_from(counts).where(or_(counts.c.n < low, counts.c.n > high)))
    if outside:
        wanted = f"exactly {low}" if low == high else f"{low} to {high}"
        raise Conflict(
            f"{outside} prompt(s) of this project have a number of responses outside {wanted}; "
            "the bounds must hold for the prompts already imported",
            details=_details({"max_responses" if high < project.max_responses else "min_responses": f"{outside} outside"}),
        )


def _log(session: Session, project: Project, user: User | None, field: str, before: Any, after: Any) -> None:
    session.add(
        ProjectAudit(
            project_id=project.id,
            project_name=project.name,
            user_id=user.id if user else None,
            actor=user.email if user else COMMAND_LINE,
            field=field,
            before=before,
            after=after,
        )
    )


def set_archived(*, session: Session, project: Project, archived: bool, user: User | None) -> None:
    """Archive (read-only, hidden from annotators; leases out are released) or unarchive. Idempotent."""
    if project.archived == archived:
        return
    if archived:
        for annotator_id in session.scalars(select(ProjectMember.user_id).where(ProjectMember.project_id == project.id)):
            annotation_service.release_leases(session=session, project_id=project.id, annotator_id=annotator_id)
    project.archived_at = utcnow() if archived else None
    _log(session, project, user, "archived", not archived, archived)
    session.flush()


def delete_project(*, session: Session, project: Project, confirm: str | None, user: User | None) -> None:
    """Delete the project and everything under it (prompts, responses, leases, labels, imports, members, its
    audit log). `confirm` must be the project's exact name. A row recording the deletion stays in the audit log
    (project_id NULL). Children go first, each in one statement by project, rather than row by row through
    the foreign keys' ON DELETE CASCADE."""
    if confirm != project.name:
        given = "missing" if confirm is None else f"{shorten(confirm, 100)!r} is not the project's name"
        raise Unprocessable(f"confirm: {given}; to delete, confirm with the exact name {project.name!r}")
    snapshot = settings_of(project) | {
        "prompts": session.scalar(select(func.count()).select_from(Prompt).where(shown_in(project.id))),
        "annotations": session.scalar(select(func.count()).select_from(Annotation).where(Annotation.project_id == project.id)),
    }
    prompt_ids = select(Prompt.id).where(Prompt.project_id == project.id)
    for statement in (
        delete(Annotation).where(Annotation.project_id == project.id),
        delete(Assignment).where(Assignment.project_id == project.id),
        delete(Response).where(Response.prompt_id.in_(prompt_ids)),
        delete(Prompt).where(Prompt.project_id == project.id),
        delete(ImportBatch).where(ImportBatch.project_id == project.id),
        delete(ProjectMember).where(ProjectMember.project_id == project.id),
        delete(ProjectAudit).where(ProjectAudit.project_id == project.id),
    ):
        session.execute(statement.execution_options(synchronize_session=False))
    name = project.name
    session.delete(project)
    session.flush()
    session.add(
        ProjectAudit(
            project_id=None,
            project_name=name,
            user_id=user.id if user else None,
            actor=user.email if user else COMMAND_LINE,
            field="deleted",
            before=snapshot,
            after=None,
        )
    )
    session.flush()


def audit_log(*, session: Session, project: Project, limit: int = AUDIT_SHOWN) -> list[ProjectAudit]:
    """The project's changes, newest first."""
    return list(
        session.scalars(
            select(ProjectAudit).where(ProjectAudit.project_id == project.id).order_by(ProjectAudit.id.desc()).limit(limit)
        )
    )


def progress_by_annotator(*, session: Session, project: Project) -> list[AnnotatorProgress]:
    """Per annotator: done, skipped, holding, median time per task, last active; in four grouped queries.

    Holding: the annotation queue leases at most two tasks per annotator, the one on screen (the oldest live
    lease) and the next one prefetched (app.annotation.service.prefetch_task), so of n live leases one is on
    screen and n - 1 prefetched. Time per task is the label's `time_spent_ms`: the time the page showed the task,
    or, for a client that sends none, lease start to submit (as app.annotation.service.submit stores it). Lease
    start alone would count a prefetched task's time from when it was leased, while the one before was on screen."""
    now = utcnow()
    leases = {
        row.annotator_id: row
        for row in session.execute(
            select(
                Assignment.annotator_id,
                func.count().filter(Assignment.status == AssignmentStatus.skipped).label("skipped"),
                func.count()
                .filter(Assignment.status == AssignmentStatus.leased, Assignment.lease_expires_at > now)
                .label("live"),
                func.max(Assignment.leased_at).label("last_lease"),
            )
            .where(Assignment.project_id == project.id)
            .group_by(Assignment.annotator_id)
        )
    }
    labels = {
        row.annotator_id: row
        for row in session.execute(
            select(Annotation.annotator_id, func.count().label("done"), func.max(Annotation.created_at).label("last_label"))
            .where(Annotation.project_id == project.id)
            .group_by(Annotation.annotator_id)
        )
    }
    times: dict[int, list[int]] = {}
    for annotator_id, ms in session.execute(
        select(Annotation.annotator_id, Annotation.time_spent_ms).where(
            Annotation.project_id == project.id, Annotation.time_spent_ms.is_not(None)
        )
    ):
        if ms is not None:  # filtered out by the query; this tells the type checker
            times.setdefault(annotator_id, []).append(ms)
    member_ids = select(ProjectMember.user_id).where(ProjectMember.project_id == project.id)
    users = session.execute(
        select(User, ProjectMember.user_id.is_not(None))
        .outerjoin(ProjectMember, (ProjectMember.user_id == User.id) & (ProjectMember.project_id == project.id))
        .where(User.id.in_(member_ids) | User.id.in_(list(leases.keys() | labels.keys())))
        .order_by(User.email)
    ).all()
    rows = []
    for user, member in users:
        lease, label = leases.get(user.id), labels.get(user.id)
        live = lease.live if lease else 0
        moments = [as_utc(m) for m in (lease and lease.last_lease, label and label.last_label) if m is not None]
        rows.append(
            AnnotatorProgress(
                annotator_id=user.id,
                email=user.email,
                name=user.display_name,
                member=bool(member),
                done=label.done if label else 0,
                skipped=lease.skipped if lease else 0,
                holding=min(live, 1),
                prefetched=max(live - 1, 0),
                median_seconds=round(median(times[user.id]) / 1000, 1) if user.id in times else None,
                last_active=max(moments, default=None),
            )
        )
    return rows
