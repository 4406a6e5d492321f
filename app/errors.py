"""Domain errors carry their HTTP status; one handler renders them as JSON or as a page (STYLE 2.6)."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.text import shorten

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


MAX_DETAILS = 50  # entries of an error's `errors` list; the rest are counted


def _short_details(details: Any) -> Any:
    """Error details with every string shortened and at most MAX_DETAILS entries: a 1 MB list of bad values
    must not come back as a larger list of errors."""
    if isinstance(details, str):
        return shorten(details)
    if isinstance(details, dict):
        return {key: _short_details(value) for key, value in details.items()}
    if isinstance(details, list):
        shown = [_short_details(item) for item in details[:MAX_DETAILS]]
        if len(details) > MAX_DETAILS:
            shown.append(f"… and {len(details) - MAX_DETAILS:,} more")
        return shown
    return details


def render_error(
    request: Request, status: int, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response:
    # Messages quote inputs (a bad name, a value): the one place that keeps them short.
    message, details = shorten(message, 1000), _short_details(details)
    if wants_json(request):
        body: dict[str, Any] = {"detail": message}
        if details is not None:
            body["errors"] = details
        return JSONResponse(body, status_code=status, headers=headers)
    if status == 401:  # a browser without a session goes to the login page
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    # Imported here: templating imports settings, and errors must stay importable on its own.
    from app.templating import templates

    return templates.TemplateResponse(
        request,
        "errors/page.html",
        {"status": status, "message": message, "details": details},
        status_code=status,
        headers=headers,
    )


def _walk(routes, prefix: str = ""):
    for route in routes:
        original = getattr(route, "original_router", None)  # FastAPI keeps included routers nested
        if original is not None:
            yield from _walk(original.routes, prefix + (route.include_context.prefix or ""))
        elif getattr(route, "methods", None):
            yield compile_path(prefix + route.path)[0], route.methods


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of the app answers on this path (for a 405's Allow header)."""
    if not hasattr(app.state, "route_methods"):
        app.state.route_methods = list(_walk(app.routes))
    return sorted({m for regex, methods in app.state.route_methods if regex.match(path) for m in methods})


ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What is wrong, in one sentence"},
        "errors": {"description": "Details: invalid fields ({field, message}) or import errors (strings)"},
    },
    "required": ["detail"],
}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Every error of the API has one shape, `{"detail": ..., "errors"?: ...}` (see `render_error`): the OpenAPI
    schema says so for 422 (FastAPI's default documents its own list-shaped 422) and, as `default`, for
    any other error status (401, 403, 404, 409, 413, 429, 503...)."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                described = responses["422"].get("description", "Validation Error")
                if described == "Validation Error":  # FastAPI's own: say what ours holds
                    described = "Invalid request: `errors` names each field"
                responses["422"] = {"description": described} | ref
            responses.setdefault("default", {"description": "An error; `detail` says what is wrong"} | ref)
    return schema


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    def _app_error(request: Request, exc: AppError) -> Response:
        return render_error(request, exc.status_code, exc.message, exc.details)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = exc.headers
        if exc.status_code == 405:  # Starlette names only the first route of the path; list every method it has
            headers = {"Allow": ", ".join(allowed_methods(request.app, request.url.path))}
        return render_error(request, exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]} for e in exc.errors()]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return render_error(request, 422, f"Invalid request: {summary}", errors)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    def _database_down(request: Request, exc: OperationalError | InterfaceError) -> Response:
        # Unreachable, restarting, or (SQLite) locked for too long. Nothing is cached across requests, and
        # PostgreSQL pool connections are pinged before use, so the app recovers by itself when it is back.
        log.error("database unavailable on %s %s: %s", request.method, request.url.path, exc.orig)
        return render_error(request, 503, "The database is unavailable; please retry in a moment.", headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> Response:
        # Not log.exception: a handler runs outside the `except` block, so the traceback must be passed.
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return render_error(request, 500, "Internal error; it has been logged.")
