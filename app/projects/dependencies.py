from typing import Annotated

from fastapi import Depends, Query

from app.models import Project
from app.models.base import MAX_ID
from app.projects import service
from app.users.dependencies import CurrentUser
from app.web.sessions import SessionDep


def visible_project(project_id: int, session: SessionDep, user: CurrentUser) -> Project:
    return service.get_visible_project(session=session, project_id=project_id, user=user)


VisibleProject = Annotated[Project, Depends(visible_project)]


def member_project(project_id: int, session: SessionDep, user: CurrentUser) -> Project:
    """Labelling needs membership, whatever the role, so staff labels never slip in by accident."""
    return service.get_visible_project(session=session, project_id=project_id, user=user, membership=True)


MemberProject = Annotated[Project, Depends(member_project)]


def member_project_of_query(
    project_id: Annotated[int, Query(ge=1, le=MAX_ID, description="The project's id")], session: SessionDep, user: CurrentUser
) -> Project:
    """member_project for a route that takes the project as a query parameter (`?project_id=`); bounded like a path
    id (app.web.dependencies), so an id no INTEGER column holds is a 422, not a driver overflow."""
    return member_project(project_id, session, user)


MemberProjectQuery = Annotated[Project, Depends(member_project_of_query)]
