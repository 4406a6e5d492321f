"""Batch upload: over the API (JSON result) and from the project page's form."""

from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from app.db import SessionDep
from app.errors import BadRequest
from app.projects.dependencies import VisibleProject
from app.projects.routes import project_page_context
from app.prompts import service
from app.prompts.parsing import RECORD_FORMATS
from app.templating import templates
from app.users.dependencies import StaffUser

router = APIRouter()

# "auto": a record with chosen/rejected is a preference pair (its format told by its keys), any other a prompt.
RecordFormat = Literal[RECORD_FORMATS]  # type: ignore[valid-type]


def _run_import(session, project, user, file: UploadFile | None, record_format: str) -> service.ImportResult:
    if file is None or not file.filename:
        raise BadRequest("Choose a file to upload (multipart field `file`)")
    return service.import_batch(
        session=session, project=project, stream=file.file, filename=file.filename, uploaded_by=user, record_format=record_format
    )


@router.post(
    "/api/projects/{project_id}/imports",
    responses={422: {"description": "Nothing imported; `errors` lists why, by line and field"}},
)
def api_import(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    file: UploadFile | None = None,
    format: Annotated[RecordFormat, Query(description="Record format; preference formats need a pairwise project")] = "auto",
) -> JSONResponse:
    result = _run_import(session, project, user, file, format)
    if result.ok:
        return JSONResponse(asdict(result))
    # The API's error shape (app.errors): `detail` first, then the result with its `errors`.
    detail = f"Nothing imported: {result.total_errors} error(s) in {file.filename}"
    return JSONResponse({"detail": detail} | asdict(result), status_code=422)


@router.post("/projects/{project_id}/imports", name="prompts:import_form")
def import_form(
    request: Request,
    project: VisibleProject,
    session: SessionDep,
    user: StaffUser,
    file: UploadFile | None = None,
    format: Annotated[RecordFormat, Form()] = "auto",
) -> Response:
    result = _run_import(session, project, user, file, format)
    context = project_page_context(session=session, project=project, user=user, import_result=result)
    return templates.TemplateResponse(request, "projects/page.html", context, status_code=200 if result.ok else 422)
