"""Project list and page, creation, membership; as pages and JSON."""

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from app.annotation.overlap import DEFAULT_OVERLAP
from app.errors import AppError, NotFound
from app.export.availability import reference_sources, unavailable_choices
from app.export.options import form_fields
from app.markdown import render_markdown
from app.models import ProjectKind, User
from app.models.project import RESPONSE_BOUNDS
from app.projects import service
from app.projects.dependencies import VisibleProject
from app.projects.schemas import (
    LLAMA2_STRENGTH_SCALE,
    AnnotatorProgress,
    ProjectAuditRead,
    ProjectCreate,
    ProjectRead,
    ProjectStats,
    ProjectUpdate,
    field_errors,
)
from app.text import StorableText, shorten, validation_messages
from app.users import service as users_service
from app.users.dependencies import AdminUser, CurrentUser, StaffUser
from app.web.sessions import SessionDep
from app.web.templating import templates

router = APIRouter()


def _audit_value(value: Any) -> str:
    """A before/after value of the audit log, as short text (guidelines can be long)."""
    if value is None:
        return "—"
    if value == "":
        return "(empty)"
    return shorten(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False), 200)


templates.env.filters["audit_value"] = _audit_value


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
        context["audit"] = service.audit_log(session=session, project=project)

        context["progress"] = service.progress_by_annotator(session=session, project=project)
        context["export_form_fields"] = form_fields(
            unavailable_choices(session=session, project=project), reference_sources(session=session, project=project)
        )
        context["export_errors"], context["export_values"] = {}, {}
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


class ProjectForm(BaseModel):
    """The project form's fields as the browser sends them (edit page; the new page adds the kind): text as
    typed, so a page with an error shows it again unchanged. Checkboxes are absent when unticked."""

    name: str = ""
    overlap: str = ""
    allow_ties: bool = False
    strength_scale: str = ""
    rating_criteria: str = ""
    guidelines: str = ""
    adaptive_threshold: str = ""
    max_overlap: str = ""
    min_responses: str = ""
    max_responses: str = ""
    lease_minutes: str = ""
    revisions_open: bool = False


class NewProjectForm(ProjectForm):
    kind: str = "ranking"
    overlap: str = str(DEFAULT_OVERLAP)


@router.post("/projects/new", name="projects:create")
def create_project_form(
    request: Request, session: SessionDep, admin: AdminUser, typed: Annotated[NewProjectForm, Form()]
) -> Response:
    form = typed.model_dump()
    try:
        data = ProjectCreate.model_validate({"kind": typed.kind} | _settings_from_form(form))
        project = service.create_project(session=session, data=data, created_by=admin)
    except ValidationError as exc:
        errors = validation_messages(exc.errors())
    except (AppError, ValueError) as exc:
        errors = [str(exc)]
    else:
        return RedirectResponse(request.url_for("projects:page", project_id=project.id), status_code=303)
    context = {"user": admin, "errors": errors, "form": form, "llama2": LLAMA2_STRENGTH_SCALE}
    return templates.TemplateResponse(request, "projects/new.html", context, status_code=400)


def _settings_from_form(form: dict[str, Any]) -> dict[str, Any]:
    """The project form's fields (new and edit pages) as ProjectCreate/ProjectUpdate input. Empty optional
    numbers mean none (no adaptive overlap, the global lease length, the kind's response range)."""
    return {
        "name": form["name"],
        "overlap": form["overlap"],
        "allow_ties": form["allow_ties"],
        "revisions_open": form["revisions_open"],
        "strength_scale": [s for s in form["strength_scale"].splitlines() if s.strip()] or None,
        "rating_criteria": _criteria_from_text(form["rating_criteria"]),
        "guidelines": form["guidelines"],
    } | {
        field: form[field].strip() or None
        for field in ("adaptive_threshold", "max_overlap", "min_responses", "max_responses", "lease_minutes")
    }


_CRITERION_LINE = re.compile(r"(.+?)\s+(-?[0-9]+)-(-?[0-9]+)(?:\s+(.*))?")


def _criteria_from_text(text: str) -> list[dict] | None:
    """One criterion a line: `name min-max description`, e.g. `helpfulness 1-7 How useful is it?`."""
    criteria = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _CRITERION_LINE.fullmatch(line.strip())  # a name may hold spaces: the range ends it
        if match is None:
            raise ValueError(f"rating criteria, line {number}: write `name min-max description`, e.g. `helpfulness 1-7`")
        name, low, high, description = match.groups()
        criteria.append({"name": name, "min": int(low), "max": int(high), "description": description or ""})
    return criteria or None


def _criteria_as_text(criteria: list[dict] | None) -> str:
    return "\n".join(f"{c['name']} {c['min']}-{c['max']} {c.get('description') or ''}".rstrip() for c in criteria or [])


def _edit_form_of(project) -> dict[str, Any]:
    """The edit form's fields filled from the project (the inverse of _settings_from_form)."""
    return {field: "" if value is None else value for field, value in service.settings_of(project).items()} | {
        "strength_scale": "\n".join(project.strength_scale or []),
        "rating_criteria": _criteria_as_text(project.rating_criteria),
    }


def _edit_page(request: Request, session, project, admin: User, form: dict, errors: dict[str, str], status: int = 200):
    low, high = RESPONSE_BOUNDS[ProjectKind(project.kind)]
    kind_range = f"exactly {low}" if low == high else f"{low} to {high}"
    context = {"user": admin, "project": project, "form": form, "errors": errors, "kind_range": kind_range}
    context["audit"] = service.audit_log(session=session, project=project)
    return templates.TemplateResponse(request, "projects/edit.html", context, status_code=status)


@router.get("/projects/{project_id}/edit", name="projects:edit")
def edit_project_page(request: Request, project: VisibleProject, session: SessionDep, admin: AdminUser) -> Response:
    return _edit_page(request, session, project, admin, _edit_form_of(project), {})


@router.post("/projects/{project_id}/edit", name="projects:update")
def edit_project_form(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    admin: AdminUser,
    typed: Annotated[ProjectForm, Form()],
) -> Response:
    form = typed.model_dump()
    errors: dict[str, str]
    try:
        changes = ProjectUpdate.model_validate(_settings_from_form(form)).model_dump(exclude_unset=True)
        service.edit_project(session=session, project=project, changes=changes, user=admin)
    except ValidationError as exc:
        errors = field_errors(exc.errors())
    except ValueError as exc:  # a rating criteria line that doesn't parse
        errors = {"rating_criteria": str(exc)}
    except AppError as exc:  # refused before anything changed (see service.edit_project)
        fields = [e["field"] for e in exc.details] if isinstance(exc.details, list) else [""]
        if exc.status_code == 409:  # a conflict's message says what stands in the way, in full
            errors = dict.fromkeys(fields, exc.message)
        else:
            errors = {e["field"]: e["message"] for e in exc.details} if isinstance(exc.details, list) else {"": exc.message}
    else:
        return RedirectResponse(request.url_for("projects:page", project_id=project.id), status_code=303)
    return _edit_page(request, session, project, admin, form, errors, status=400)


@router.post("/projects/{project_id}/archive", name="projects:archive")
def archive_form(request: Request, project: VisibleProject, session: SessionDep, admin: AdminUser) -> Response:
    service.set_archived(session=session, project=project, archived=True, user=admin)
    return RedirectResponse(request.url_for("projects:page", project_id=project.id), status_code=303)


@router.post("/projects/{project_id}/unarchive", name="projects:unarchive")
def unarchive_form(request: Request, project: VisibleProject, session: SessionDep, admin: AdminUser) -> Response:
    service.set_archived(session=session, project=project, archived=False, user=admin)
    return RedirectResponse(request.url_for("projects:page", project_id=project.id), status_code=303)


@router.post("/projects/{project_id}/delete", name="projects:delete")
def delete_form(
    request: Request, project: VisibleProject, session: SessionDep, admin: AdminUser, confirm: Annotated[str, Form()] = ""
) -> Response:
    try:
        service.delete_project(session=session, project=project, confirm=confirm, user=admin)
    except AppError as exc:
        return _edit_page(request, session, project, admin, _edit_form_of(project), {"confirm": exc.message}, status=422)
    return RedirectResponse(request.url_for("projects:list"), status_code=303)


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
    if member is None:  # a typo, most likely: the form comes back with the error beside the field
        context = project_page_context(
            session=session,
            project=project,
            user=admin,
            member_error=f"No user has the email {email.strip()!r}; check the spelling, or create the user on the Users page",
            member_email=email,
        )
        return templates.TemplateResponse(request, "projects/page.html", context, status_code=400)
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


@router.get("/api/projects/{project_id}/progress", response_model=list[AnnotatorProgress])
def api_project_progress(project: VisibleProject, session: SessionDep, user: StaffUser) -> list[AnnotatorProgress]:
    """Who is doing what: per annotator done, skipped, holding, median time per task, last active."""
    return service.progress_by_annotator(session=session, project=project)


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


@router.patch(
    "/api/projects/{project_id}",
    response_model=ProjectRead,
    responses={409: {"description": "A name in use, or a change stored labels or prompts forbid (named)"}},
)
def api_edit_project(
    project: VisibleProject,
    data: ProjectUpdate,
    session: SessionDep,
    admin: AdminUser,
) -> ProjectRead:
    """Change some settings: only the fields sent, checked with the rules of creation; each change is logged."""
    service.edit_project(session=session, project=project, changes=data.model_dump(exclude_unset=True), user=admin)
    return ProjectRead.model_validate(project)


@router.post("/api/projects/{project_id}/archive", response_model=ProjectRead)
def api_archive_project(project: VisibleProject, session: SessionDep, admin: AdminUser) -> ProjectRead:
    """Read-only and hidden from annotators (their leases are released); staff still see and export it."""
    service.set_archived(session=session, project=project, archived=True, user=admin)
    return ProjectRead.model_validate(project)


@router.post("/api/projects/{project_id}/unarchive", response_model=ProjectRead)
def api_unarchive_project(project: VisibleProject, session: SessionDep, admin: AdminUser) -> ProjectRead:
    service.set_archived(session=session, project=project, archived=False, user=admin)
    return ProjectRead.model_validate(project)


@router.delete("/api/projects/{project_id}", status_code=204)
def api_delete_project(
    project: VisibleProject,
    session: SessionDep,
    admin: AdminUser,
    confirm: Annotated[str | None, Query(description="The project's exact name")] = None,
) -> Response:
    """Delete the project and everything under it; `confirm` must be its exact name (else 422)."""
    service.delete_project(session=session, project=project, confirm=confirm, user=admin)
    return Response(status_code=204)


@router.get("/api/projects/{project_id}/audit", response_model=list[ProjectAuditRead])
def api_project_audit(project: VisibleProject, session: SessionDep, user: StaffUser) -> list[ProjectAuditRead]:
    """The project's changes, newest first (the last 50)."""
    return [ProjectAuditRead.model_validate(row) for row in service.audit_log(session=session, project=project)]
