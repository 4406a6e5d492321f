from typing import Annotated

from fastapi import Depends

from app.db import SessionDep
from app.errors import Forbidden
from app.models import Project
from app.projects import service
from app.users.dependencies import CurrentUser


def visible_project(project_id: int, session: SessionDep, user: CurrentUser) -> Project:
    return service.get_visible_project(session=session, project_id=project_id, user=user)


VisibleProject = Annotated[Project, Depends(visible_project)]


def member_project(project: VisibleProject, session: SessionDep, user: CurrentUser) -> Project:
    """Labelling needs membership, whatever the role, so staff labels never slip in by accident."""
    if not service.is_member(session=session, project_id=project.id, user_id=user.id):
        raise Forbidden("You are not an annotator of this project; an admin can add you on the project page")
    return project


MemberProject = Annotated[Project, Depends(member_project)]
