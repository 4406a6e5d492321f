from typing import Annotated

from fastapi import Depends

from app.db import SessionDep
from app.models import Project
from app.projects import service
from app.users.dependencies import CurrentUser


def visible_project(project_id: int, session: SessionDep, user: CurrentUser) -> Project:
    return service.get_visible_project(session=session, project_id=project_id, user=user)


VisibleProject = Annotated[Project, Depends(visible_project)]


def member_project(project_id: int, session: SessionDep, user: CurrentUser) -> Project:
    """Labelling needs membership, whatever the role, so staff labels never slip in by accident."""
    return service.get_visible_project(session=session, project_id=project_id, user=user, membership=True)


MemberProject = Annotated[Project, Depends(member_project)]
