from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.db import ReadSessionMakerDep
from app.export.options import FOLDER_MEDIA_TYPE, MEDIA_TYPES, ExportOptions, form_fields
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
        200: {
            "description": "The export: JSONL (one JSON object a line), gzipped JSONL or Parquet by `file_type`; "
            "with `folder=true` a zip of the dataset folder",
            "content": {MEDIA_TYPES["jsonl"]: {"schema": {"type": "string"}}}
            | {
                binary: {"schema": {"type": "string", "format": "binary"}}
                for binary in (MEDIA_TYPES["jsonl.gz"], MEDIA_TYPES["parquet"], FOLDER_MEDIA_TYPE)
            },
        }
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
        media_type=FOLDER_MEDIA_TYPE if options.folder else MEDIA_TYPES[options.file_type],
        # The options (filters) travel with every download; a JSONL body has nowhere else to record them.
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Preflab-Export-Options": options.model_dump_json()},
    )
