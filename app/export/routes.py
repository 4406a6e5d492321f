from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.db import ReadSessionMakerDep
from app.export.options import ExportOptions, form_fields
from app.heavy import ExportSlot
from app.models import Project
from app.projects.dependencies import VisibleProject
from app.users.dependencies import StaffUser
from app.web.templating import templates

router = APIRouter()
# The project page's export form is built from the options model (static data, not a query).
templates.env.globals["export_form_fields"] = form_fields()


@router.get(
    "/api/projects/{project_id}/export",
    name="export:download",
    response_class=StreamingResponse,
    responses={
        200: {"description": "One JSON object a line", "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}
    },
)
def export(
    project: VisibleProject,
    user: StaffUser,
    make_session: ReadSessionMakerDep,
    options: Annotated[ExportOptions, Query()],
    slot: ExportSlot,
) -> StreamingResponse:
    """Query parameters are ExportOptions' fields; an unknown one or a bad value is a 422 naming it. A heavy request
    (app/heavy.py): the slot is held until the stream ends."""
    # Imported here: the export needs numpy, choix and pyarrow, which the app should not load to start.
    from app.export import service
    from app.export.writers import MEDIA_TYPES

    service.check(project=project, options=options)  # before the first byte: later errors could not change the status
    project_id, name = project.id, service.filename(project, options)
    if options.folder or options.file_type == "parquet":
        body = service.stream_built(session_factory=make_session, project_id=project_id, options=options)
    else:

        def jsonl() -> Iterator[bytes]:
            # The request's session is closed before a streamed body is read: open our own.
            with make_session() as session, session.begin():
                project_now = session.get_one(Project, project_id)  # gone since the request: NoResultFound
                yield from service.stream_file(session=session, project=project_now, options=options)

        body = jsonl()
    return StreamingResponse(
        slot.hold_while(body),
        media_type="application/zip" if options.folder else MEDIA_TYPES[options.file_type],
        # The options (filters) travel with every download; a JSONL body has nowhere else to record them.
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Preflab-Export-Options": options.model_dump_json()},
    )
