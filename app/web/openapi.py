"""The OpenAPI schema documents the JSON API only, and every error in the one shape app.web.errors renders."""

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.users.dependencies import SESSION_COOKIE

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


SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": 'An API token: `POST /api/me/tokens` or `preflab user create --token` (README, "API")',
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The browser's login (POST /login); a state change also sends the session's CSRF token as X-CSRF-Token",
    },
}


def document_security(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation of the API needs a user (anonymous calls get 401, docs/permissions.md): either scheme will do."""
    schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    schema["security"] = [{name: []} for name in SECURITY_SCHEMES]
    return schema


def api_routes_only(router: APIRouter) -> None:
    """Leave the pages and their forms out of the schema: it documents the JSON API (paths under /api/)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and not route.path.startswith("/api/"):
            route.include_in_schema = False


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            app.openapi_schema = document_security(document_errors(schema))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend its schema
