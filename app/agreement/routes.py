"""Agreement: the JSON report, the dashboard, one prompt's labels side by side, gold prompts."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from app.agreement import charts, formatting, service
from app.agreement.schemas import AgreementReport
from app.errors import NotFound
from app.heavy import AgreementSlot
from app.models import Annotation, Project, User
from app.projects.dependencies import VisibleProject
from app.rankings import Tiers
from app.reports.web import DeferredResponse, age_words
from app.users.dependencies import StaffUser
from app.web.sessions import SessionDep
from app.web.templating import page_after_session, templates

router = APIRouter()


class GoldUpdate(BaseModel):
    ranking: Tiers | None  # the known answer (tiers of response ids, best first); null unmarks


@router.get("/api/projects/{project_id}/agreement", response_model=AgreementReport)
def api_agreement(
    request: Request, project: VisibleProject, session: SessionDep, user: StaffUser, slot: AgreementSlot
) -> Response:
    """The cached report (app/reports/cache.py): `computed_at` says when it was computed; `stale` true means the
    data changed since and another request is computing the new one."""
    database, project_id = request.app.state.database, project.id

    def produce() -> Response:
        report = service.cached_report(database, project_id)
        return Response(report.model_dump_json(), media_type="application/json")

    return DeferredResponse(produce, slot)


@router.put("/api/projects/{project_id}/prompts/{prompt_id}/gold")
def api_set_gold(project: VisibleProject, prompt_id: int, data: GoldUpdate, session: SessionDep, user: StaffUser) -> dict:
    prompt = service.set_gold(session=session, project=project, prompt_id=prompt_id, ranking=data.ranking)
    return {"prompt_id": prompt.id, "is_gold": prompt.is_gold, "gold_ranking": prompt.gold_ranking}


@router.get("/projects/{project_id}/agreement", name="agreement:dashboard")
def dashboard(request: Request, project: VisibleProject, session: SessionDep, user: StaffUser, slot: AgreementSlot) -> Response:
    database, project_id = request.app.state.database, project.id
    return DeferredResponse(lambda: _dashboard(request, project, user, service.cached_report(database, project_id)), slot)


def _dashboard(request: Request, project: Project, user: User, report: AgreementReport) -> Response:
    annotators = sorted(report.annotators, key=lambda a: a.email or "")
    context = {
        "user": user,
        "project": project,
        "report": report,
        "report_age": age_words(report),
        "annotators": annotators,
        "fmt": formatting,
        "headline": formatting.headline(report),
        "warnings": formatting.warnings(report),
        "hist": charts.histogram(
            [p.agreement for p in report.prompts if p.agreement is not None],
            x_title="agreement rate of the prompt (tie = ½)",
            y_title="prompts",
        ),
        "loo_bars": charts.columns(
            [
                (a.name or a.email or str(a.annotator_id), a.loo_agreement.value if a.loo_agreement else None, a.careless_alert)
                for a in annotators
            ],
            top=1.0,
            as_percent=True,
            x_title="annotator",
            y_title="agreement with the others",
        ),
        "bias_bars": charts.columns(
            [
                (a.name or a.email or str(a.annotator_id), a.position_bias.observed if a.position_bias else None, a.bias_alert)
                for a in annotators
            ],
            top=1.0,
            as_percent=True,
            x_title="annotator",
            y_title="first-shown put on top",
        ),
        "day_bars": charts.columns([(d.day, d.labels, False) for d in report.labels_per_day], x_title="day", y_title="labels"),
    }
    return templates.TemplateResponse(request, "agreement/dashboard.html", context)


@router.get("/projects/{project_id}/prompts/{prompt_id}", name="agreement:prompt")
def prompt_page(request: Request, project: VisibleProject, prompt_id: int, session: SessionDep, user: StaffUser) -> Response:
    context = {"user": user, "project": project, "fmt": formatting} | service.prompt_annotations(
        session=session, project=project, prompt_id=prompt_id
    )
    return page_after_session(request, "agreement/prompt.html", context)


@router.post("/projects/{project_id}/prompts/{prompt_id}/gold", name="agreement:set_gold")
def set_gold_form(
    request: Request,
    project: VisibleProject,
    prompt_id: int,
    session: SessionDep,
    user: StaffUser,
    annotation_id: Annotated[int | None, Form()] = None,
) -> Response:
    """Use one stored label as the prompt's gold answer (no annotation_id: unmark)."""
    ranking = None
    if annotation_id is not None:
        annotation = session.get(Annotation, annotation_id)
        if annotation is None or annotation.prompt_id != prompt_id or not annotation.ranking:
            raise NotFound("Label not found")
        ranking = annotation.ranking
    service.set_gold(session=session, project=project, prompt_id=prompt_id, ranking=ranking)
    return RedirectResponse(request.url_for("agreement:prompt", project_id=project.id, prompt_id=prompt_id), status_code=303)
