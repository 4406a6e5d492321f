"""The FastAPI application: settings, database, middleware, error handlers, routers, static files (the HTTP
plumbing itself lives in app.web)."""

import contextlib
import gc
import importlib
import sys
import threading
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.agreement.routes import router as agreement_router
from app.annotation.routes import router as annotation_router
from app.config import ROOT, Settings, get_settings
from app.db import READ_ONLY, Database
from app.export.routes import router as export_router
from app.leaderboard.routes import router as leaderboard_router
from app.models import Project, ProjectKind
from app.projects.routes import router as projects_router
from app.prompts.processes import ImportProcesses
from app.prompts.routes import router as prompts_router
from app.prompts.service import discard_abandoned_imports
from app.rewardmodels.routes import router as rewardmodels_router
from app.secrets import SESSION_SECRET, shared_secret
from app.users.dependencies import SESSION_COOKIE, csrf_protect
from app.users.routes import router as users_router
from app.users.service import SESSION_LIFETIME
from app.web.api_docs import install_api_docs
from app.web.dependencies import path_ids_in_range
from app.web.errors import install_error_handlers
from app.web.limits import BodySizeLimitMiddleware
from app.web.middleware import PublicUrlMiddleware, SecurityHeadersMiddleware, SessionCookieMiddleware
from app.web.openapi import api_routes_only, install_openapi

# Paid once per process in a background thread at start, so the first request of each kind does not: what is cheap
# in memory only (numpy for agreement, +11 MiB; the math converter, +1 MiB; the annotation templates' compilation;
# an export of nothing and a page's reads on an empty page, compiling the export's statements: `_warm_export`; the
# authentication's reads: `_warm_authentication`). Not pyarrow (+40 MiB) nor scipy and
# choix (+70 MiB): idle RSS would pass 120 MiB. BENCHMARKS.md, "Warm-up".
WARM_MODULES = ("app.agreement.metrics", "latex2mathml.converter")
WARM_TEMPLATES = ("annotation/task.html", "annotation/_task.html", "agreement/prompt.html", "projects/page.html")
# Started this long after the app, once the first answers are out (see the lifespan below).
WARM_UP_DELAY_SECONDS = 1.0


def _warm_up(database: Database) -> None:
    from app.web.templating import templates

    for module in WARM_MODULES:
        importlib.import_module(module)
    for name in WARM_TEMPLATES:
        templates.get_template(name)
    _warm_export(database)
    _warm_authentication(database)
    _free_what_the_start_used()


def _free_what_the_start_used() -> None:
    """The warm-up's last step. A full garbage collection now, while idle: left to chance, the next one (46 ms over the
    startup's objects) fell in the first export. Then the heap freed since start goes back to the system, which glibc
    does not do by itself: ~1.6 MiB of idle RSS. BENCHMARKS.md, "Warm-up"."""
    import ctypes

    gc.collect()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(AttributeError):  # not glibc (musl has no malloc_trim)
            ctypes.CDLL(None).malloc_trim(0)


def _warm_authentication(database: Database) -> None:
    """Every first request of a kind authenticates: its token, session and project reads compiled now (no such rows)."""
    from app.users import service as users

    # The writing engine (its compiled cache is the requests'), in a read-only transaction: on SQLite the warm-up
    # never holds the write lock.
    with (
        contextlib.suppress(SQLAlchemyError),
        database.engine.connect() as connection,
        Session(bind=connection.execution_options(**{READ_ONLY: True})) as session,
    ):
        users.user_for_token(session=session, token="warm-up")
        users.user_for_session(session=session, session_id="warm-up")
        session.get(Project, 0)
        session.rollback()


def _warm_export(database: Database) -> None:
    """A JSONL export of a project that does not exist (no rows), and each kind of a page's reads on an empty page
    (an export of nothing reads no page): the export's statements compiled into the engine's cache and its code paths
    run once, so the first real export does not pay them."""
    from app.export import rows, service
    from app.export.options import ExportOptions

    with contextlib.suppress(SQLAlchemyError), database.read_sessionmaker() as session:
        try:
            for kind in ProjectKind:
                project = Project(id=0, name="warm-up", kind=kind)  # never added: only read with
                for _ in service.stream_file(session=session, project=project, options=ExportOptions()):
                    pass
            for raw, source in ((False, None), (True, None), (False, "warm-up")):
                rows.read_page(session.connection(), project, [], raw=raw, source=source)
        finally:
            session.rollback()  # writes nothing, whatever happened


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database = Database(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Every request holding a database slot must be able to get a thread (see Database.request_slot).
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(threads.total_tokens, database.request_slots + 8)
        app.state.database.checkpoint_in_background()  # SQLite: no request pays for folding the log (app.db)
        # Rows of imports a killed process left behind (app/prompts/service.py). Unreachable or not yet migrated:
        # the next import tries again.
        with contextlib.suppress(SQLAlchemyError):
            await run_in_threadpool(discard_abandoned_imports, app.state.database.sessionmaker)
        # A second after start, once the first answers are out: run at once, the imports competed with them for the
        # GIL and put ~0.4 s on the cold start (BENCHMARKS.md, "Warm-up").
        warm_up = threading.Timer(WARM_UP_DELAY_SECONDS, _warm_up, args=(database,))
        warm_up.daemon = True
        if settings.WARM_UP:
            warm_up.start()
        yield
        warm_up.cancel()  # an app stopped within the delay does not warm up afterwards
        app.state.import_processes.stop()  # the children of large imports, if any started
        database.dispose()

    app = FastAPI(
        title="Preflab",
        summary="Collect human preference labels (rankings, chosen/rejected) for reward models",
        lifespan=lifespan,
        docs_url=None,  # app.web.api_docs serves /docs and /redoc without a CDN or inline script
        redoc_url=None,
        dependencies=[Depends(csrf_protect), Depends(path_ids_in_range)],
    )
    app.state.database = database
    app.state.settings = settings
    app.state.import_processes = ImportProcesses(settings)  # no child until the first large upload
    app.add_middleware(BodySizeLimitMiddleware)  # innermost: its 413 page still has the session and the headers
    app.add_middleware(
        SessionCookieMiddleware,
        secret_key=settings.SECRET_KEY or shared_secret(database.engine, SESSION_SECRET),
        session_cookie=SESSION_COOKIE,
        max_age=int(SESSION_LIFETIME.total_seconds()),  # the server-side row (UserSession) ends with it
        same_site="lax",
        https_only=settings.SESSION_HTTPS_ONLY,
    )

    app.add_middleware(PublicUrlMiddleware, base_url=settings.PUBLIC_BASE_URL)
    app.add_middleware(SecurityHeadersMiddleware)  # outermost: every answer of the app gets them

    install_error_handlers(app)
    for router in (
        users_router,
        projects_router,
        prompts_router,
        annotation_router,
        agreement_router,
        export_router,
        leaderboard_router,
        rewardmodels_router,
    ):
        api_routes_only(router)
        app.include_router(router)
    install_openapi(app)
    install_api_docs(app)  # before /static: its assets are mounted under /static/api-docs
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz(request: Request) -> dict:
        """For load balancers and monitors: 200 when the database answers, else 503 (see app.web.errors). A read-only
        transaction: on SQLite it never waits for the write lock (an import's chunk), so a probe does not time out."""
        with request.app.state.database.engine.connect() as connection:
            connection.execution_options(**{READ_ONLY: True}).execute(text("SELECT 1"))
        return {"status": "ok", "database": "ok"}

    return app
