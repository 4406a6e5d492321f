import re
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from app.db import ReadSessionMakerDep
from app.export import service
from app.models import Project
from app.projects.dependencies import VisibleProject
from app.users.dependencies import StaffUser

router = APIRouter()


@router.get(
    "/api/projects/{project_id}/export",
    name="export:download",
    response_class=StreamingResponse,
    responses={200: {"description": "One JSON object a line", "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
def export(
    project: VisibleProject, user: StaffUser, make_session: ReadSessionMakerDep, format: Literal["trl"] = "trl"
) -> StreamingResponse:
    project_id, filename = project.id, re.sub(r"[^A-Za-z0-9._-]+", "_", f"{project.name}-{format}.jsonl")

    def body():
        # The request's session is closed before a streamed body is read: open our own (STYLE 2.13).
        with make_session() as session, session.begin():
            yield from service.iter_jsonl(service.iter_trl_rows(session=session, project=session.get(Project, project_id)))

    return StreamingResponse(
        body(), media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
