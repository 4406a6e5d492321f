"""The FastAPI application: routers, sessions, error handlers, static files, security headers."""

from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.agreement.routes import router as agreement_router
from app.annotation.routes import router as annotation_router
from app.config import ROOT, Settings, get_settings
from app.db import Database, path_ids_in_range
from app.errors import document_errors, install_error_handlers
from app.export.routes import router as export_router
from app.limits import BodySizeLimitMiddleware
from app.projects.routes import router as projects_router
from app.prompts.routes import router as prompts_router
from app.secrets import SESSION_SECRET, shared_secret
from app.users.dependencies import csrf_protect
from app.users.routes import router as users_router
from app.users.service import SESSION_LIFETIME

SECURITY_HEADERS = {
    # No inline script anywhere: everything the pages run comes from /static.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class SessionCookieMiddleware(SessionMiddleware):
    """Starlette's signed-cookie sessions (HttpOnly, SameSite=lax), with the cookie also marked Secure on
    any request that arrived over HTTPS, not only when SESSION_HTTPS_ONLY says so. Behind a TLS-terminating
    proxy the scheme comes from its X-Forwarded-Proto: `preflab serve` runs uvicorn with --proxy-headers and
    trusts the addresses in FORWARDED_ALLOW_IPS (127.0.0.1 by default)."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https" or "secure" in self.security_flags:
            return await super().__call__(scope, receive, send)
        prefix = self.session_cookie.encode() + b"="

        async def send_secure(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, value + b"; secure" if name == b"set-cookie" and value.startswith(prefix) else value)
                    for name, value in message["headers"]
                ]
            await send(message)

        await super().__call__(scope, receive, send_secure)


class PublicUrlMiddleware:
    """Redirects never point at the Host header a client sent (README, "Security"): a Location on the
    request's own origin (what `request.url_for` and Starlette's slash redirects build from Host) becomes
    PUBLIC_BASE_URL + path, or a relative path when that is unset. Templates link by path alone
    (app.templating), so no page carries the Host either."""

    def __init__(self, app: ASGIApp, base_url: str | None) -> None:
        self.app = app
        self.base_url = base_url or ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_public(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                location = headers.get("location")
                if location and "://" in location:
                    own = str(Request(scope).base_url).rstrip("/")
                    if location == own or location.startswith(own + "/"):
                        headers["location"] = self.base_url + (location[len(own) :] or "/")
            await send(message)

        await self.app(scope, receive, send_public)


class SecurityHeadersMiddleware:
    """Adds SECURITY_HEADERS to every response that does not set its own. Plain ASGI rather than
    `@app.middleware("http")`: that wraps each response in another streaming layer and costs CPU on
    every request, and the exports stream large bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = Database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Every request holding a database slot must be able to get a thread (see Database.request_slot).
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(threads.total_tokens, database.request_slots + 8)
        yield
        database.dispose()

    app = FastAPI(
        title="Preflab",
        summary="Collect human preference labels (rankings, chosen/rejected) for reward models",
        lifespan=lifespan,
        dependencies=[Depends(csrf_protect), Depends(path_ids_in_range)],
    )
    app.state.database = database
    app.state.settings = settings
    app.add_middleware(BodySizeLimitMiddleware)  # innermost: its 413 page still has the session and the headers
    app.add_middleware(
        SessionCookieMiddleware,
        secret_key=settings.SECRET_KEY or shared_secret(database.engine, SESSION_SECRET),
        session_cookie="preflab_session",
        max_age=int(SESSION_LIFETIME.total_seconds()),  # the server-side row (UserSession) ends with it
        same_site="lax",
        https_only=settings.SESSION_HTTPS_ONLY,
    )

    app.add_middleware(PublicUrlMiddleware, base_url=settings.PUBLIC_BASE_URL)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: every answer of the app gets them

    install_error_handlers(app)
    for router in (users_router, projects_router, prompts_router, annotation_router, agreement_router, export_router):
        for route in router.routes:  # the OpenAPI schema documents the JSON API, not the pages and their forms
            if not route.path.startswith("/api/"):
                route.include_in_schema = False
        app.include_router(router)

    def openapi() -> dict:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(
                get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            )
        return app.openapi_schema

    app.openapi = openapi
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> dict:
        """For load balancers and monitors: 200 when the database answers, else 503 (see app.errors)."""
        with request.app.state.database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "database": "ok"}

    return app
