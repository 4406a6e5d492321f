"""The model leaderboard: JSON and a page, for researchers and admins (a heavy request, app/heavy.py)."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.db import SessionDep
from app.heavy import LeaderboardSlot
from app.leaderboard.schemas import Leaderboard, LeaderboardOptions
from app.projects.dependencies import VisibleProject
from app.users.dependencies import StaffUser
from app.web.templating import templates

router = APIRouter()


@router.get("/api/projects/{project_id}/leaderboard")
def api_leaderboard(
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    options: Annotated[LeaderboardOptions, Query()],
    _slot: LeaderboardSlot,
) -> Leaderboard:
    """Bradley–Terry ratings of the responses' models from the human decisions (docs/leaderboard.md). Query parameters
    are LeaderboardOptions' fields; an unknown one or a bad value is a 422 naming it."""
    from app.leaderboard import service  # numpy and scipy: loaded when first asked for, not at start

    return service.leaderboard(session=session, project=project, options=options)


@router.get("/projects/{project_id}/leaderboard", name="leaderboard:page")
def page(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    options: Annotated[LeaderboardOptions, Query()],
    _slot: LeaderboardSlot,
) -> Response:
    from app.leaderboard import charts, service

    board = service.leaderboard(session=session, project=project, options=options)
    context = {
        "user": user,
        "project": project,
        "board": board,
        "ratings_chart": charts.rating_chart(board),
        "heat": charts.heat_map(board),
        "annotators": service.annotators_with_labels(session=session, project=project),
        "criteria": [c["name"] for c in project.rating_criteria or []],
    }
    return templates.TemplateResponse(request, "leaderboard/page.html", context)
