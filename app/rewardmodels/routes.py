"""Reward models: upload a score file, the evaluation report (JSON and pages), side by side, delete. Researchers and
admins only; the reports and the uploads (a whole score file parsed and matched, then the report page) are heavy
requests (app/heavy.py): a caller with HEAVY_REQUESTS_PER_USER of them in flight gets 429 before the body is read."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from app.heavy import HeavySlot, RewardModelSlot
from app.models import Project, User
from app.projects.dependencies import VisibleProject
from app.prompts.routes import UPLOAD_BODY
from app.reports.web import DeferredResponse, age_words
from app.rewardmodels import service
from app.rewardmodels.schemas import ReportOptions, RewardModelList, RewardModelReport
from app.users.dependencies import StaffUser
from app.web.dependencies import SettingsDep
from app.web.limits import UploadForm, uploaded_file
from app.web.sessions import SessionDep
from app.web.templating import templates

router = APIRouter()


def _json(report: RewardModelList | RewardModelReport) -> Response:
    return Response(report.model_dump_json(), media_type="application/json")


def _upload(settings, session, project: Project, user: User, form: FormData, name: str, replace: bool) -> service.UploadOutcome:
    file, filename = uploaded_file(form)
    return service.upload(
        session=session,
        project=project,
        name=name,
        stream=file.file,
        filename=filename,
        user=user,
        replace=replace,
        depth=settings.MAX_METADATA_DEPTH,
    )


@router.get("/api/projects/{project_id}/reward-models")
def api_list(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    options: Annotated[ReportOptions, Query()],
    slot: RewardModelSlot,
) -> Response:
    """Every reward model of the project with its full report, side by side; cached (`computed_at`, `stale`)."""
    database, project_id = request.app.state.database, project.id
    return DeferredResponse(lambda: _json(service.cached_compare(database, project_id, options.consensus)), slot)


@router.post(
    "/api/projects/{project_id}/reward-models",
    status_code=201,
    responses={
        409: {"description": "The name is taken (send replace=true)"},
        422: {"description": "Nothing stored; `errors` lists why, by line and field"},
    },
    openapi_extra=UPLOAD_BODY,
)
def api_upload(
    settings: SettingsDep,
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    name: Annotated[str, Query(description="The reward model's name, e.g. rm-v3")],
    slot: RewardModelSlot,
    form: UploadForm,  # after the checks above: read only for a caller allowed to upload
    replace: Annotated[bool, Query(description="Replace the reward model of this name")] = False,
) -> JSONResponse:
    """A score file (JSON Lines; docs/reward-models.md): all rows stored, or none."""
    service.check_name(name)
    outcome = _upload(settings, session, project, user, form, name, replace)
    if outcome.result is not None:
        return JSONResponse(outcome.result.model_dump(), status_code=201)
    detail = f"Nothing stored: {outcome.total_errors} error(s)"
    return JSONResponse({"detail": detail, "errors": outcome.errors, "total_errors": outcome.total_errors}, status_code=422)


@router.get("/api/projects/{project_id}/reward-models/{name}")
def api_report(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    name: str,
    options: Annotated[ReportOptions, Query()],
    slot: RewardModelSlot,
) -> Response:
    """The reward model against the human decisions: accuracies, human ceiling, breakdowns, calibration; cached
    (`computed_at`, `stale`)."""
    service.get(session=session, project=project, name=name)  # a 404 before any work
    database, project_id = request.app.state.database, project.id
    return DeferredResponse(lambda: _json(service.cached_report(database, project_id, name, options.consensus)), slot)


@router.delete("/api/projects/{project_id}/reward-models/{name}", status_code=204)
def api_delete(project: VisibleProject, session: SessionDep, user: StaffUser, name: str) -> Response:
    service.remove(session=session, project=project, name=name)
    return Response(status_code=204)


def _list_page(request: Request, project: Project, user: User, slot: HeavySlot, status: int = 200, **extra) -> Response:
    """The reward models side by side (cached), made after the route's session has ended: after an upload, with it."""
    database, project_id = request.app.state.database, project.id

    def produce() -> Response:
        board = service.cached_compare(database, project_id)
        context = {"user": user, "project": project, "board": board, "report_age": age_words(board)} | extra
        return templates.TemplateResponse(request, "rewardmodels/list.html", context, status_code=status)

    return DeferredResponse(produce, slot)


@router.get("/projects/{project_id}/reward-models", name="rewardmodels:list")
def list_page(request: Request, project: VisibleProject, session: SessionDep, user: StaffUser, slot: RewardModelSlot) -> Response:
    return _list_page(request, project, user, slot)


@router.post("/projects/{project_id}/reward-models", name="rewardmodels:upload")
def upload_form(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    settings: SettingsDep,
    slot: RewardModelSlot,
    form: UploadForm,
) -> Response:
    name = form.get("name")
    name = name.strip() if isinstance(name, str) else ""
    service.check_name(name)
    outcome = _upload(settings, session, project, user, form, name, form.get("replace") == "true")
    return _list_page(request, project, user, slot, 200 if outcome.result else 422, outcome=outcome)


@router.get("/projects/{project_id}/reward-models/{name}", name="rewardmodels:report")
def report_page(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    name: str,
    options: Annotated[ReportOptions, Query()],
    slot: RewardModelSlot,
) -> Response:
    from app.rewardmodels import charts

    service.get(session=session, project=project, name=name)  # a 404 before any work
    database, project_id = request.app.state.database, project.id

    def produce() -> Response:
        report = service.cached_report(database, project_id, name, options.consensus)
        context = {"user": user, "project": project, "report": report, "chart": charts.calibration_chart(report)}
        context["report_age"] = age_words(report)
        return templates.TemplateResponse(request, "rewardmodels/report.html", context)

    return DeferredResponse(produce, slot)


@router.post("/projects/{project_id}/reward-models/{name}/delete", name="rewardmodels:delete")
def delete_form(request: Request, project: VisibleProject, session: SessionDep, user: StaffUser, name: str) -> Response:
    service.remove(session=session, project=project, name=name)
    return RedirectResponse(request.url_for("rewardmodels:list", project_id=project.id), status_code=303)
