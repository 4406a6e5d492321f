"""Project list and page, creation, membership; as pages and JSON."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from app.annotation.overlap import DEFAULT_OVERLAP
from app.db import SessionDep
from app.errors import AppError, NotFound
from app.markdown import render_markdown
from app.models import User
from app.projects import service
from app.projects.dependencies import VisibleProject
from app.projects.schemas import LLAMA2_STRENGTH_SCALE, ProjectCreate, ProjectRead, ProjectStats
from app.text import StorableText, validation_messages
from app.users import service as users_service
from app.users.dependencies import AdminUser, CurrentUser, StaffUser
from app.web.templating import templates

router = APIRouter()


def project_page_context(*, session, project, user: User, **extra) -> dict:
    context = {
        "user": user,
        "project": project,
        "stats": service.project_stats(session=session, project=project),
        "is_member": service.is_member(session=session, project_id=project.id, user_id=user.id),
        "guidelines_html": render_markdown(project.guidelines),
        "import_result": None,
    }
    if user.role != "annotator":
        context["members"] = service.members(session=session, project=project)
    return context | extra


@router.get("/", name="projects:list")
def projects_page(request: Request, session: SessionDep, user: CurrentUser) -> Response:
    projects = service.visible_projects(session=session, user=user)
    return templates.TemplateResponse(request, "projects/list.html", {"user": user, "projects": projects})


@router.get("/projects/new", name="projects:new")
def new_project_page(request: Request, admin: AdminUser) -> Response:
    return templates.TemplateResponse(
        request,
        "projects/new.html",
        {
            "user": admin,
            "errors": None,
            "form": {"overlap": DEFAULT_OVERLAP, "revisions_open": True},
            "llama2": LLAMA2_STRENGTH_SCALE,
        },
    )


@router.post("/projects/new", name="projects:create")
def create_project_form(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    name: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "ranking",
    overlap: Annotated[str, Form()] = str(DEFAULT_OVERLAP),
    allow_ties: Annotated[bool, Form()] = False,
    strength_scale: Annotated[str, Form()] = "",
    rating_criteria: Annotated[str, Form()] = "",
    guidelines: Annotated[str, Form()] = "",
    adaptive_threshold: Annotated[str, Form()] = "",
    max_overlap: Annotated[str, Form()] = "",
    revisions_open: Annotated[bool, Form()] = False,  # a checkbox: absent when unticked (the page ticks it)
) -> Response:
    form = {
        "name": name,
        "kind": kind,
        "overlap": overlap,
        "allow_ties": allow_ties,
        "strength_scale": strength_scale,
        "rating_criteria": rating_criteria,
        "guidelines": guidelines,
        "adaptive_threshold": adaptive_threshold,
        "max_overlap": max_overlap,
        "revisions_open": revisions_open,
    }
    try:
        data = ProjectCreate(
            name=name,
            kind=kind,
            overlap=overlap,
            allow_ties=allow_ties,
            strength_scale=[s for s in strength_scale.splitlines() if s.strip()] or None,
            rating_criteria=_criteria_from_text(rating_criteria),
            guidelines=guidelines,
            # empty fields: no adaptive overlap
            adaptive_threshold=adaptive_threshold.strip() or None,
            max_overlap=max_overlap.strip() or None,
            revisions_open=revisions_open,
        )
        project = service.create_project(session=session, data=data, created_by=admin)
    except ValidationError as exc:
        errors = validation_messages(exc.errors())
    except (AppError, ValueError) as exc:
        errors = [str(exc)]
    else:
        return RedirectResponse(request.url_for("projects:page", project_id=project.id), status_code=303)
    context = {"user": admin, "errors": errors, "form": form, "llama2": LLAMA2_STRENGTH_SCALE}
    return templates.TemplateResponse(request, "projects/new.html", context, status_code=400)


def _criteria_from_text(text: str) -> list[dict] | None:
    """One criterion a line: `name min-max description`, e.g. `helpfulness 1-7 How useful is it?`."""
    criteria = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=2)
        try:
            low, high = (int(x) for x in parts[1].split("-"))
        except (IndexError, ValueError):
            raise ValueError(
                f"rating criteria, line {number}: write `name min-max description`, e.g. `helpfulness 1-7`"
            ) from None
        criteria.append({"name": parts[0], "min": low, "max": high, "description": parts[2] if len(parts) > 2 else ""})
    return criteria or None


@router.get("/projects/{project_id}", name="projects:page")
def project_page(request: Request, project: VisibleProject, session: SessionDep, user: CurrentUser) -> Response:
    return templates.TemplateResponse(
        request, "projects/page.html", project_page_context(session=session, project=project, user=user)
    )


@router.post("/projects/{project_id}/members", name="projects:add_member")
def add_member_form(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    admin: AdminUser,
    email: Annotated[StorableText, Form()] = "",  # looked up in the database: a NUL is a 422, not a driver error
) -> Response:
    member = users_service.get_user_by_email(session=session, email=email)
    if member is None:
        raise NotFound(f"No user with email {email!r}")
    service.add_member(session=session, project=project, user=member)
    return RedirectResponse(request.url_for("projects:page", project_id=project.id), status_code=303)


@router.post("/projects/{project_id}/members/{user_id}/remove", name="projects:remove_member")
def remove_member_form(
    request: Request, project: VisibleProject, user_id: int, session: SessionDep, admin: AdminUser
) -> Response:
    service.remove_member(session=session, project=project, user_id=user_id)
    return RedirectResponse(request.url_for("projects:page", project_id=project.id), status_code=303)


# --- JSON API -------------------------------------------------------------------------------------


@router.post("/api/projects", response_model=ProjectRead, status_code=201)
def api_create_project(data: ProjectCreate, session: SessionDep, admin: AdminUser) -> ProjectRead:
    return ProjectRead.model_validate(service.create_project(session=session, data=data, created_by=admin))


@router.get("/api/projects", response_model=list[ProjectRead])
def api_list_projects(session: SessionDep, user: CurrentUser) -> list[ProjectRead]:
    return [ProjectRead.model_validate(p) for p in service.visible_projects(session=session, user=user)]


@router.get("/api/projects/{project_id}", response_model=ProjectRead)
def api_get_project(project: VisibleProject) -> ProjectRead:
    return ProjectRead.model_validate(project)


@router.get("/api/projects/{project_id}/stats", response_model=ProjectStats)
def api_project_stats(project: VisibleProject, session: SessionDep, user: StaffUser) -> ProjectStats:
    return service.project_stats(session=session, project=project)


@router.put("/api/projects/{project_id}/members/{user_id}", status_code=204)
def api_add_member(project: VisibleProject, user_id: int, session: SessionDep, admin: AdminUser) -> Response:
    member = session.get(User, user_id)
    if member is None:
        raise NotFound("User not found")
    service.add_member(session=session, project=project, user=member)
    return Response(status_code=204)


@router.delete("/api/projects/{project_id}/members/{user_id}", status_code=204)
def api_remove_member(project: VisibleProject, user_id: int, session: SessionDep, admin: AdminUser) -> Response:
    service.remove_member(session=session, project=project, user_id=user_id)
    return Response(status_code=204)
