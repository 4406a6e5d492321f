"""The model leaderboard: JSON and a page, for researchers and admins (a heavy request, app/heavy.py)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.heavy import LeaderboardSlot
from app.leaderboard.schemas import Leaderboard, LeaderboardOptions
from app.projects.dependencies import VisibleProject
from app.reports.web import DeferredResponse, age_words
from app.users.dependencies import StaffUser
from app.web.sessions import SessionDep
from app.web.templating import templates

router = APIRouter()


@router.get("/api/projects/{project_id}/leaderboard", response_model=Leaderboard)
def api_leaderboard(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    options: Annotated[LeaderboardOptions, Query()],
    slot: LeaderboardSlot,
) -> Response:
    """Bradley–Terry ratings of the responses' models from the human decisions (docs/leaderboard.md). Query parameters
    are LeaderboardOptions' fields; an unknown one or a bad value is a 422 naming it. Cached per options
    (app/reports/cache.py): `computed_at` says when it was computed, `stale` that a newer one is being computed."""
    from app.leaderboard import service  # numpy and scipy: loaded when first asked for, not at start

    service.check(session=session, project=project, options=options)  # a 422 before any work
    database, project_id = request.app.state.database, project.id

    def produce() -> Response:
        board = service.cached_leaderboard(database, project_id, options)
        return Response(board.model_dump_json(), media_type="application/json")

    return DeferredResponse(produce, slot)


@router.get("/projects/{project_id}/leaderboard", name="leaderboard:page")
def page(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    options: Annotated[LeaderboardOptions, Query()],
    slot: LeaderboardSlot,
) -> Response:
    from app.leaderboard import charts, service

    service.check(session=session, project=project, options=options)
    database, project_id = request.app.state.database, project.id
    annotators = service.annotators_with_labels(session=session, project=project)

    def produce() -> Response:
        board = service.cached_leaderboard(database, project_id, options)
        context = {
            "user": user,
            "project": project,
            "board": board,
            "report_age": age_words(board),
            "ratings_chart": charts.rating_chart(board),
            "heat": charts.heat_map(board),
            "annotators": annotators,
            "criteria": [c["name"] for c in project.rating_criteria or []],
        }
        return templates.TemplateResponse(request, "leaderboard/page.html", context)

    return DeferredResponse(produce, slot)
