"""One place renders every error: JSON `{"detail", "errors"?}` for the API and scripts, the error page for a
browser (a login redirect for a 401). Domain errors (app.errors) bring their status; the handlers below map
FastAPI's, Starlette's and the database's own exceptions onto the same shape."""

import logging
import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount

from app.errors import AppError
from app.text import shorten
from app.web.templating import templates

log = logging.getLogger("preflab")

MAX_DETAILS = 50  # entries of an error's `errors` list; the rest are counted
HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or "text/html" not in request.headers.get("accept", "")


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
    return templates.TemplateResponse(
        request,
        "errors/page.html",
        {"status": status, "message": message, "details": details},
        status_code=status,
        headers=headers,
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app answers on this request's path, for a 405's Allow header: Starlette's
    own names only the first route matching the path. Each route is asked as the router asks it
    (`BaseRoute.matches`) with the method swapped; the /static mount, which takes any path, is left out."""
    bare = {"type": "http", "path": request.scope["path"], "root_path": request.scope.get("root_path", ""), "headers": []}
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    return [
        method for method in HTTP_METHODS if any(route.matches(bare | {"method": method})[0] is Match.FULL for route in routes)
    ]


def _invalid_field(error: dict[str, Any]) -> dict[str, str]:
    # A field of the body is named without the "body" prefix; the body itself (missing, or not an object) as "body".
    field = ".".join(str(p) for p in error["loc"] if p != "body") or ".".join(map(str, error["loc"]))
    return {"field": field, "message": error["msg"]}


def _unreadable_body(cause: BaseException | None) -> str | None:
    """Why FastAPI's "There was an error parsing the body" (a 400) happened, when the body itself is to blame."""
    if isinstance(cause, RecursionError):  # json.loads gave up
        return f"The body is not readable JSON: it nests too deeply (the limit is about {sys.getrecursionlimit():,} levels)"
    if isinstance(cause, UnicodeDecodeError):
        byte = cause.object[cause.start : cause.start + 1].hex().upper()
        return f"The body is not readable JSON: it is not UTF-8 text (byte 0x{byte} at offset {cause.start:,})"
    return None


def _invalid_json(document: Any, error: dict[str, Any]) -> dict[str, str]:
    """A body that does not parse: where (line and column, as json.JSONDecodeError counts them) and why, instead of
    FastAPI's character offset standing in for a field name."""
    position = error["loc"][-1]
    where = f"character {position}"
    if isinstance(document, str) and isinstance(position, int):
        line, column = document.count("\n", 0, position) + 1, position - document.rfind("\n", 0, position)
        where = f"line {line}, column {column}"
    reason = error.get("ctx", {}).get("error") or error["msg"]
    return {"field": "body", "message": f"not valid JSON at {where}: {reason}"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    def _app_error(request: Request, exc: AppError) -> Response:
        return render_error(request, exc.status_code, exc.message, exc.details, headers=exc.headers)

    @app.exception_handler(405)
    def _method_not_allowed(request: Request, exc: StarletteHTTPException) -> Response:
        headers = {"Allow": ", ".join(allowed_methods(request))}
        return render_error(request, 405, str(exc.detail), headers=headers)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and (message := _unreadable_body(exc.__cause__)):
            return render_error(request, 400, message, [{"field": "body", "message": message}])
        return render_error(request, exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [_invalid_json(exc.body, e) if e["type"] == "json_invalid" else _invalid_field(e) for e in exc.errors()]
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
