"""Batch upload: over the API (JSON result) and from the project page's form. The prompt browser (page and API).

Both take the file through `UploadForm` (app.web.limits), declared after the user and the project: the body,
up to MAX_UPLOAD_MB, is read only for a caller allowed to upload into this project."""

import asyncio
import contextlib
import functools
from collections.abc import Iterator
from dataclasses import asdict
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import anyio.from_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app.agreement import formatting
from app.annotation.overlap import PROMPT_STATUSES
from app.config import Settings
from app.db import Database
from app.errors import Unprocessable
from app.models import Project, User
from app.projects.dependencies import VisibleProject
from app.projects.routes import project_page_context
from app.prompts import browse, processes, service
from app.prompts.schemas import PromptPage, PromptQuery
from app.prompts.upload import RECORD_FORMATS, ImportLimits
from app.users.dependencies import StaffUser
from app.web.dependencies import SettingsDep
from app.web.limits import UploadForm, uploaded_file
from app.web.sessions import SessionDep, release_db
from app.web.templating import page_after_session, templates

router = APIRouter()

# "auto": a record with chosen/rejected is a preference pair (its format told by its keys), any other a prompt.
RecordFormat = Literal[RECORD_FORMATS]  # type: ignore[valid-type]

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            }
        },
    }
}


def _slot_turn(slot: asyncio.Semaphore) -> service.Turn:
    """For the import's worker thread: each of its transactions waits its turn for a request slot on the event
    loop (app.db), so chunks and annotators' requests take the database in arrival order."""

    @contextlib.contextmanager
    def turn() -> Iterator[None]:
        anyio.from_thread.run(slot.acquire)
        try:
            yield
        finally:
            anyio.from_thread.run_sync(slot.release)

    return turn


async def _run_import(
    request: Request,
    settings: Settings,
    project: Project,
    user: User,
    form: FormData,
    record_format: str,
    source: str | None = None,
) -> service.ImportResult:
    """The request's own session is already given back (`Released`): the import parses in a worker thread, or a
    child process for a large upload (app/prompts/processes.py), and writes in short transactions of its own, so
    annotators are served between its chunks."""
    file, filename = uploaded_file(form)
    if record_format not in RECORD_FORMATS:
        raise Unprocessable(f"format: must be one of {', '.join(RECORD_FORMATS)}")
    database = request.app.state.database
    arguments: dict[str, Any] = {
        "project_id": project.id,
        "filename": filename,
        "uploaded_by_id": user.id,
        "record_format": record_format,
        "limits": ImportLimits.from_settings(settings),
        "source": source,
    }
    large = file.size is not None and file.size >= processes.LARGE_UPLOAD_BYTES
    if large and processes.reopenable(file.file):
        try:
            return await request.app.state.import_processes.import_file(file.file, **arguments)
        except processes.ImportProcessDied:
            # The dead child's rows (never shown) go now, not at the next import: its process is gone.
            await run_in_threadpool(
                functools.partial(
                    service.discard_abandoned_imports, database.sessionmaker, turn=_slot_turn(database.request_slot())
                )
            )
            raise
    return await run_in_threadpool(
        functools.partial(
            service.import_file,
            sessions=database.sessionmaker,
            stream=file.file,
            turn=_slot_turn(database.request_slot()),
            **arguments,
        )
    )


# Declared after the user and project checks, before the body: ends the request's session and gives its slot back.
Released = Annotated[None, Depends(release_db)]


@router.post(
    "/api/projects/{project_id}/imports",
    responses={422: {"description": "Nothing imported; `errors` lists why, by line and field"}},
    openapi_extra=UPLOAD_BODY,
)
async def api_import(
    request: Request,
    settings: SettingsDep,
    project: VisibleProject,
    user: StaffUser,
    _released: Released,
    form: UploadForm,  # last: read only after the checks above
    format: Annotated[RecordFormat, Query(description="Record format; preference formats need a pairwise project")] = "auto",
    source: Annotated[
        str | None,
        Query(
            max_length=200,
            description='Name of the reference labels the file\'s judgements become (e.g. "judge-gpt"); '
            'default "<format>: <file name>". A source already on a prompt is replaced.',
        ),
    ] = None,
) -> JSONResponse:
    result = await _run_import(request, settings, project, user, form, format, source)
    if result.ok:
        return JSONResponse(asdict(result))
    # The API's error shape (app.errors): `detail` first, then the result with its `errors`.
    detail = f"Nothing imported: {result.total_errors} error(s) in {uploaded_file(form)[1]}"
    return JSONResponse({"detail": detail} | asdict(result), status_code=422)


def _page_context(database: Database, project_id: int, user_id: int, result: service.ImportResult) -> dict:
    with database.sessionmaker() as session, session.begin():
        project, user = session.get_one(Project, project_id), session.get_one(User, user_id)
        return project_page_context(session=session, project=project, user=user, import_result=result)


@router.post("/projects/{project_id}/imports", name="prompts:import_form")
async def import_form(
    request: Request, project: VisibleProject, user: StaffUser, settings: SettingsDep, _released: Released, form: UploadForm
) -> HTMLResponse:
    record_format = form.get("format") or "auto"
    source = form.get("source")
    result = await _run_import(
        request,
        settings,
        project,
        user,
        form,
        record_format if isinstance(record_format, str) else "",
        source.strip() or None if isinstance(source, str) else None,
    )
    database: Database = request.app.state.database
    async with database.request_slot():  # the page's figures, after the import, in a short session of its own
        context = await run_in_threadpool(_page_context, database, project.id, user.id, result)
    return templates.TemplateResponse(request, "projects/page.html", context, status_code=200 if result.ok else 422)


def _path(request: Request, name: str, **params) -> str:
    """A link by path alone, as templates make them (app/web/templating.py: never from the Host header)."""
    return request.scope.get("root_path", "") + request.app.url_path_for(name, **params)


def _browse(request: Request, session, project, query: PromptQuery) -> PromptPage:
    return browse.browse(
        session=session,
        project=project,
        query=query,
        url_for=lambda prompt_id: _path(request, "agreement:prompt", project_id=project.id, prompt_id=prompt_id),
    )


@router.get("/api/projects/{project_id}/prompts")
def api_browse(
    request: Request, project: VisibleProject, user: StaffUser, session: SessionDep, query: Annotated[PromptQuery, Query()]
) -> PromptPage:
    """The project's prompts, filtered and sorted; `next_cursor` (null on the last page) fetches the next page
    with the same filters. Researchers and admins only: a row tells who labelled and skipped what."""
    return _browse(request, session, project, query)


@router.get("/projects/{project_id}/prompts", name="prompts:browse")
def browse_page(
    request: Request, project: VisibleProject, user: StaffUser, session: SessionDep, query: Annotated[PromptQuery, Query()]
) -> Response:
    page = _browse(request, session, project, query)
    here = _path(request, "prompts:browse", project_id=project.id)
    filters = query.filters()
    context = {
        "user": user,
        "project": project,
        "query": query,
        "page": page,
        "next_url": f"{here}?{urlencode(filters | {'cursor': page.next_cursor})}" if page.next_cursor else None,
        "first_url": f"{here}?{urlencode(filters)}" if query.cursor else None,
        "annotators": browse.labelling_annotators(session=session, project=project),
        "statuses": PROMPT_STATUSES,
        "fmt": formatting,
    }
    return page_after_session(request, "prompts/browse.html", context)
