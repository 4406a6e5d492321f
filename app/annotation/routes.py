"""The annotator's side: next task, submit, skip; as JSON and as the annotation page."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.annotation import service
from app.annotation.schemas import (
    AnnotationCreate,
    AnnotationRead,
    SkipRequest,
    TaskRead,
)
from app.config import Settings
from app.db import SessionDep
from app.markdown import render_markdown_cached
from app.models import Project
from app.projects import service as projects_service
from app.projects.dependencies import MemberProject
from app.users.dependencies import CurrentUser
from app.web.dependencies import SettingsDep
from app.web.templating import templates

router = APIRouter()


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
def api_next(project: MemberProject, session: SessionDep, user: CurrentUser, settings: SettingsDep) -> TaskRead | Response:
    assignment = _lease_next(session, project, user, settings)
    if assignment is None:
        return Response(status_code=204)
    return service.task_view(session=session, project=project, assignment=assignment)


@router.get("/api/tasks/{task_id}", response_model=TaskRead)
def api_task(task_id: int, session: SessionDep, user: CurrentUser) -> TaskRead:
    assignment, project = service.get_own_task(session=session, task_id=task_id, annotator=user)
    projects_service.require_open(project)
    return service.task_view(session=session, project=project, assignment=assignment)


@router.post(
    "/api/tasks/{task_id}/annotations",
    response_model=AnnotationRead,
    status_code=201,
    responses={200: {"description": "Already stored: a repeated submit returns the stored label"}},
)
def api_submit(task_id: int, data: AnnotationCreate, session: SessionDep, user: CurrentUser, response: Response):
    assignment, project = service.get_own_task(session=session, task_id=task_id, annotator=user, lock=True)
    projects_service.require_open(project)
    result = service.submit(session=session, project=project, assignment=assignment, annotator=user, data=data)
    if result.duplicate:
        response.status_code = 200
    return result


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
        "guidelines_html": render_markdown_cached(project.guidelines),
    }
    if assignment is not None:
        context["task"] = service.task_view(session=session, project=project, assignment=assignment)
        context["lease_seconds"] = service.lease_seconds_left(assignment)
    return templates.TemplateResponse(request, "annotation/task.html", context)


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
        "guidelines_html": render_markdown_cached(project.guidelines),
        "task": service.task_view(session=session, project=project, assignment=assignment),
        "lease_seconds": service.lease_seconds_left(assignment),
    }
    return templates.TemplateResponse(request, "annotation/_task.html", context)
