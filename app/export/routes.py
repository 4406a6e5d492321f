from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from app.errors import Unprocessable
from app.export.availability import check_applicable
from app.export.options import FOLDER_MEDIA_TYPE, MEDIA_TYPES, ExportOptions, parse_form
from app.export.schemas import ExportPreview
from app.heavy import ExportSlot
from app.models import Project
from app.projects.dependencies import VisibleProject
from app.projects.routes import project_page_context
from app.users.dependencies import StaffUser
from app.web.sessions import ReadSessionMakerDep, SessionDep
from app.web.templating import templates

router = APIRouter()


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
    session: SessionDep,
    user: StaffUser,
    make_session: ReadSessionMakerDep,
    options: Annotated[ExportOptions, Query()],
    slot: ExportSlot,
) -> StreamingResponse:
    """Query parameters are ExportOptions' fields; an unknown one or a bad value is a 422 naming it. A heavy request
    (app/heavy.py): the slot is held until the stream ends."""
    # Imported here: the export needs numpy, choix and pyarrow, which the app should not load to start.
    from app.export import service

    # Before the first byte: later errors could not change the status.
    check_applicable(session=session, project=project, options=options)
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


@router.get("/projects/{project_id}/export", name="export:form")
def export_form(request: Request, project: VisibleProject, session: SessionDep, user: StaffUser) -> Response:
    """The project page's export form posts here: good options go on to the download, bad ones bring the project
    page back with each error next to its field, in words."""
    try:
        options = parse_form(request.query_params)
        check_applicable(session=session, project=project, options=options)
    except Unprocessable as exc:
        context = project_page_context(
            session=session,
            project=project,
            user=user,
            export_errors=exc.details or {"form": exc.message},
            export_values=dict(request.query_params),
        )
        return templates.TemplateResponse(request, "projects/page.html", context, status_code=400)
    download = request.url_for("export:download", project_id=project.id).include_query_params(**dict(request.query_params))
    return RedirectResponse(str(download), status_code=303)


@router.get("/api/projects/{project_id}/export/preview", name="export:preview", response_model=ExportPreview)
def export_preview(
    request: Request, project: VisibleProject, session: SessionDep, user: StaffUser, _slot: ExportSlot
) -> ExportPreview:
    """How many rows (pairs, for the pair formats) each filter asked for removes, before downloading; the same
    query parameters as the export. A bad option is a 422 whose `errors` map each field to its message."""
    from app.export import service  # numpy and friends: see export()

    return service.preview(session=session, project=project, options=parse_form(request.query_params))
