"""The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), under the app's own CSP: their scripts
and styles come from the fastapi-offline package (served under /static/api-docs, no CDN) and a module of ours,
static/js/api-docs.js, starts them; the pages hold no inline script. Public, as the schema at /openapi.json is
(docs/permissions.md)."""

from importlib.util import find_spec
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.web.middleware import SECURITY_HEADERS
from app.web.templating import templates

# swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js; found without importing the package (which imports
# FastAPI's docs module for an app factory we do not use).
ASSETS = Path(find_spec("fastapi_offline").origin).parent / "static"  # type: ignore[arg-type, union-attr]

# ReDoc styles its page with <style> elements it writes at run time (styled-components), which `style-src 'self'`
# blocks; its page alone also allows inline styles. Scripts stay 'self' only, as on every page.
REDOC_CSP = SECURITY_HEADERS["Content-Security-Policy"].replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "api/docs.html", {"viewer": "swagger"})


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    response = templates.TemplateResponse(request, "api/docs.html", {"viewer": "redoc"})
    response.headers["Content-Security-Policy"] = REDOC_CSP
    return response


def install_api_docs(app: FastAPI) -> None:
    """For an app created with docs_url=None and redoc_url=None (FastAPI's own pages load a CDN and inline script)."""
    app.mount("/static/api-docs", StaticFiles(directory=ASSETS), name="api-docs")
    app.include_router(router)
