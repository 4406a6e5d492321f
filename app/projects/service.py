"""Projects, membership and the counts on the project page."""

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.annotation import overlap
from app.annotation import service as annotation_service
from app.errors import Conflict, Forbidden, NotFound
from app.models import (
    Annotation,
    Assignment,
    AssignmentStatus,
    Project,
    ProjectMember,
    Prompt,
    Role,
    User,
)
from app.models.base import utcnow
from app.projects.schemas import ProjectCreate, ProjectStats


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
    if user.role == Role.annotator:
        query = query.join(ProjectMember, ProjectMember.project_id == Project.id).where(ProjectMember.user_id == user.id)
    return list(session.scalars(query))


# Built once: it runs on every annotation call (see app.annotation.service on why statements are prebuilt there).
_PROJECT_AND_MEMBERSHIP = (
    select(Project, ProjectMember.user_id)
    .outerjoin(ProjectMember, (ProjectMember.project_id == Project.id) & (ProjectMember.user_id == bindparam("user")))
    .where(Project.id == bindparam("project"))
)


def _project_and_membership(*, session: Session, project_id: int, user: User) -> tuple[Project | None, bool]:
    """The project (None if there is none) and whether the user is a member, in one query."""
    row = session.execute(_PROJECT_AND_MEMBERSHIP, {"user": user.id, "project": project_id}).first()
    return (None, False) if row is None else (row[0], row[1] is not None)


def get_visible_project(*, session: Session, project_id: int, user: User, membership: bool = False) -> Project:
    """Annotators see only their projects; anything else is a 404, so ids can't be probed.
    membership=True: the caller must also be a member, whatever the role (labelling), else 403."""
    if user.role != Role.annotator and not membership:
        project = session.get(Project, project_id)
        member = True
    else:
        project, member = _project_and_membership(session=session, project_id=project_id, user=user)
    if project is None or (user.role == Role.annotator and not member):
        raise NotFound("Project not found")
    if not member:
        raise Forbidden("You are not an annotator of this project; an admin can add you on the project page")
    return project


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
        select(func.count(), func.count().filter(overlap.COMPLETE)).where(Prompt.project_id == project.id)
    ).one()
    annotations, annotators = session.execute(
        select(func.count(), func.count(func.distinct(Annotation.annotator_id))).where(Annotation.project_id == project.id)
    ).one()
    in_progress, skipped = session.execute(
        select(
            func.count().filter(Assignment.status == AssignmentStatus.leased, Assignment.lease_expires_at > utcnow()),
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
