"""The annotator's side: next task, submit, skip, revise one's own labels; as JSON and as the annotation pages."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.annotation import service
from app.annotation.schemas import (
    AnnotationCreate,
    AnnotationRead,
    MyLabelsPage,
    SkipRequest,
    TaskRead,
)
from app.config import Settings
from app.errors import NotFound
from app.models import Project
from app.projects import service as projects_service
from app.projects.dependencies import MemberProject, MemberProjectQuery
from app.users.dependencies import Caller, CurrentUser, require_user
from app.web.dependencies import SettingsDep
from app.web.sessions import SessionDep
from app.web.templating import json_after_session, page_after_session

router = APIRouter()

PAGE, MAX_PAGE = 50, 500  # labels per page of "My labels"


def _lease_minutes(project: Project, settings: Settings) -> int:
    """How long a new lease lasts: the project's own length if it sets one, else the LEASE_MINUTES setting."""
    return project.lease_minutes or settings.LEASE_MINUTES


def _lease_next(session, project: Project, user, settings: Settings):
    return service.next_task(
        session=session,
        project=project,
        annotator=user,
        lease_minutes=_lease_minutes(project, settings),
        gold_rate=settings.GOLD_RATE,
    )


@router.get(
    "/api/projects/{project_id}/next",
    response_model=TaskRead,
    responses={204: {"description": "Nothing is left for this annotator"}},
)
def api_next(project_id: int, session: SessionDep, caller: Caller, settings: SettingsDep) -> Response:
    # CurrentUser's and MemberProject's checks (`member_project`), called here rather than as dependencies: they then
    # run in the route's trip to the thread pool, not trips of their own, and the caller is a plain row (the
    # annotator's hot path: BENCHMARKS.md "Annotate against the stack's floor").
    user = require_user(caller, session)
    project = projects_service.get_visible_project(session=session, project_id=project_id, user=user, membership=True)
    assignment = _lease_next(session, project, user, settings)
    if assignment is None:
        return Response(status_code=204)
    return json_after_session(session, service.task_view(session=session, project=project, assignment=assignment))


@router.get("/api/tasks/{task_id}", response_model=TaskRead)
def api_task(task_id: int, session: SessionDep, user: CurrentUser) -> Response:
    assignment, project = service.get_own_task(session=session, task_id=task_id, annotator=user)
    projects_service.require_open(project)
    return json_after_session(session, service.task_view(session=session, project=project, assignment=assignment))


@router.post(
    "/api/tasks/{task_id}/annotations",
    response_model=AnnotationRead,
    status_code=201,
    responses={200: {"description": "Already stored: a repeated submit returns the stored label"}},
)
def api_submit(task_id: int, data: AnnotationCreate, session: SessionDep, caller: Caller) -> Response:
    user = require_user(caller, session)  # in the route's trip, as in api_next
    assignment, project = service.get_own_task(session=session, task_id=task_id, annotator=user, lock=True)
    projects_service.require_open(project)
    result = service.submit(session=session, project=project, assignment=assignment, annotator=user, data=data)
    # Serialised here rather than by FastAPI, which would check the model in a trip to the thread pool of its own.
    return json_after_session(session, result, status_code=200 if result.duplicate else 201)


@router.put("/api/tasks/{task_id}/annotations", response_model=AnnotationRead, name="annotation:revise")
def api_revise(task_id: int, data: AnnotationCreate, session: SessionDep, user: CurrentUser) -> AnnotationRead:
    """Revise the caller's own stored label (same body as the submit); 404 while the task has none."""
    assignment, project = service.get_own_task(session=session, task_id=task_id, annotator=user, lock=True)
    projects_service.require_open(project)  # an archived project is read-only
    return service.revise(session=session, project=project, assignment=assignment, annotator=user, data=data)


@router.get("/api/me/annotations", response_model=MyLabelsPage)
def api_my_labels(
    project: MemberProjectQuery,
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> MyLabelsPage:
    """The caller's own labels in project `project_id`, newest first."""
    return service.my_labels(session=session, project=project, annotator=user, limit=limit, offset=offset)


@router.post("/api/tasks/{task_id}/skip", status_code=204)
def api_skip(task_id: int, session: SessionDep, user: CurrentUser, data: SkipRequest | None = None) -> Response:
    assignment, project = service.get_own_task(session=session, task_id=task_id, annotator=user, lock=True)
    projects_service.require_open(project)
    service.skip(session=session, assignment=assignment, reason=data.reason if data else None)
    return Response(status_code=204)


@router.get("/projects/{project_id}/annotate", name="annotation:page")
def annotate_page(
    request: Request, project: MemberProject, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> Response:
    if "prefetch" in request.headers.get("sec-purpose", request.headers.get("purpose", "")).lower():
        # A browser's speculative load must not lease a task nobody sees. Not a 2xx: browsers discard such a
        # prefetch and load the page for real when the user does navigate.
        return Response(status_code=425, headers={"Cache-Control": "no-store"})
    assignment = _lease_next(session, project, user, settings)
    progress = service.annotator_progress(session=session, project=project, annotator=user)
    context = {
        "user": user,
        "project": project,
        "done": progress.done,
        "progress": progress,
        "task": None,
        "revise": None,
    }
    if assignment is not None:
        context["task"] = service.task_view(session=session, project=project, assignment=assignment)
        context["lease_seconds"] = service.lease_seconds_left(assignment)
    return page_after_session(request, "annotation/task.html", context)


@router.get(
    "/projects/{project_id}/annotate/prefetch",
    name="annotation:prefetch",
    responses={204: {"description": "Nothing else is left for this annotator"}},
)
def annotate_prefetch(
    request: Request,
    project: MemberProject,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
    after: int | None = None,
) -> Response:
    """The task after `after` (the one on screen) as the page's #annotate block, leased now: the page fetches it in
    the background and swaps it in the moment the current one is submitted or skipped."""
    assignment = service.prefetch_task(
        session=session,
        project=project,
        annotator=user,
        after_task_id=after,
        lease_minutes=_lease_minutes(project, settings),
        gold_rate=settings.GOLD_RATE,
    )
    if assignment is None:
        return Response(status_code=204)
    context = {
        "user": user,
        "project": project,
        "done": None,
        "task": service.task_view(session=session, project=project, assignment=assignment),
        "lease_seconds": service.lease_seconds_left(assignment),
    }
    return page_after_session(request, "annotation/_task.html", context)


@router.get("/projects/{project_id}/my-labels", name="annotation:my_labels")
def my_labels_page(
    request: Request,
    project: MemberProject,
    session: SessionDep,
    user: CurrentUser,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    page = service.my_labels(session=session, project=project, annotator=user, limit=PAGE, offset=offset)
    return page_after_session(request, "annotation/my_labels.html", {"user": user, "project": project, "page": page})


@router.get("/projects/{project_id}/my-labels/{task_id}", name="annotation:revise_page")
def revise_page(request: Request, project: MemberProject, task_id: int, session: SessionDep, user: CurrentUser) -> Response:
    """The annotation page's workbench on a labelled task, in revise mode: the stored label to start from, saved
    with PUT. No lease is taken and nothing in the queue moves."""
    assignment, task_project = service.get_own_task(session=session, task_id=task_id, annotator=user)
    if task_project.id != project.id:
        raise NotFound("Task not found")
    annotation = service.stored_label(session=session, assignment=assignment)
    context = {
        "user": user,
        "project": project,
        "done": None,
        "task": service.task_view(session=session, project=project, assignment=assignment),
        # templates/annotation/_task.html renders these as the workbench's revise-mode data-* attributes
        "revise": {
            "annotation": annotation,
            # what the workbench starts from: the stored label in the shape the PUT takes
            "label": service.label_as_input(annotation).model_dump(mode="json", exclude={"time_spent_ms"}),
            "submit_url": request.url_for("annotation:revise", task_id=task_id).path,
            "back_url": request.url_for("annotation:my_labels", project_id=project.id).path,
        },
    }
    return page_after_session(request, "annotation/task.html", context)
