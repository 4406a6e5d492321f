"""Domain errors carry their HTTP status; one handler renders them as JSON or as a page (STYLE 2.6)."""
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("preflab")


class AppError(Exception):
    status_code = 500

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(AppError):
    status_code = 400


class NotAuthenticated(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class Unprocessable(AppError):
    status_code = 422


def validation_messages(errors: list[dict[str, Any]]) -> list[str]:
    """Pydantic errors as `field: message` lines, for forms and the CLI."""
    return [f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'input'}: {e['msg']}" for e in errors]


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", "")


def _render(request: Request, status: int, message: str, details: Any = None) -> Response:
    if wants_json(request):
        body: dict[str, Any] = {"detail": message}
        if details is not None:
            body["errors"] = details
        return JSONResponse(body, status_code=status)
    if status == 401:  # a browser without a session goes to the login page
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    # Imported here: templating imports settings, and errors must stay importable on its own.
    from app.templating import templates

    return templates.TemplateResponse(
        request, "errors/page.html", {"status": status, "message": message, "details": details}, status_code=status
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    def _app_error(request: Request, exc: AppError) -> Response:
        return _render(request, exc.status_code, exc.message, exc.details)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _render(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return _render(request, 422, f"Invalid request: {summary}", errors)

    @app.exception_handler(OperationalError)
    def _database_down(request: Request, exc: OperationalError) -> Response:
        log.error("database error: %s", exc.orig)
        return _render(request, 503, "The database is unavailable; please retry in a moment.")

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _render(request, 500, "Internal error; it has been logged.")
