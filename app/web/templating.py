"""The Jinja environment shared by every page, and the responses rendered only once the database is let go."""

from collections.abc import Callable
from typing import Any

import anyio.to_thread
from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.config import ROOT
from app.markdown import render_markdown
from app.web.sessions import end_request_session

templates = Jinja2Templates(directory=str(ROOT / "templates"))
templates.env.filters["markdown"] = render_markdown


def _csrf_token(request: Request) -> str:
    from app.users.security import ensure_csrf_token

    return ensure_csrf_token(request)


templates.env.globals["csrf_token"] = _csrf_token


@pass_context
def _url_for(context, name: str, /, **path_params) -> str:
    """Links by path alone: Starlette's default builds absolute URLs from the request's Host header,
    which a client chooses (README, "Security")."""
    request: Request = context["request"]
    return request.scope.get("root_path", "") + request.app.url_path_for(name, **path_params)


templates.env.globals["url_for"] = _url_for


class RenderedOnSend(Response):
    """A response whose body is made when it is sent, in a worker thread: after the route's session is committed
    and its database slot released (FastAPI ends function-scoped dependencies, app.web.sessions.get_db, before it sends the
    response). On SQLite there is one slot, so a page rendering 2 MB of model output must not hold it
    (BENCHMARKS.md, "Pages with huge responses").

    The route loads what the body needs inside its session: plain data, or ORM objects whose shown attributes are
    loaded. Past the commit the session is closed, so a lazy load raises DetachedInstanceError rather than
    querying outside the slot. The one way for routes that show model output: `page_after_session`, and for JSON
    `json_after_session` (the same order of things, done in the route's worker thread)."""

    def __init__(self, render: Callable[[], str | bytes], *, status_code: int = 200, media_type: str) -> None:
        self._render = render
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.body = b""
        self.init_headers()
        self.raw_headers = [(name, value) for name, value in self.raw_headers if name != b"content-length"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await anyio.to_thread.run_sync(self._render)  # CPU work: not on the event loop
        self.body = body.encode(self.charset) if isinstance(body, str) else body
        self.raw_headers.append((b"content-length", str(len(self.body)).encode("latin-1")))
        await super().__call__(scope, receive, send)


class _PageAfterSession(RenderedOnSend):
    def __init__(self, request: Request, name: str, context: dict[str, Any], status_code: int) -> None:
        self.template = templates.get_template(name)
        self.context = {"request": request, **context}
        super().__init__(lambda: self.template.render(self.context), status_code=status_code, media_type="text/html")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if "http.response.debug" in scope.get("extensions", {}):  # what Starlette's TemplateResponse tells TestClient
            await send({"type": "http.response.debug", "info": {"template": self.template, "context": self.context}})
        await super().__call__(scope, receive, send)


def page_after_session(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """`templates.TemplateResponse`, rendered after the route's session is released (RenderedOnSend)."""
    return _PageAfterSession(request, name, context, status_code)


def json_after_session(session: Session, model: BaseModel, status_code: int = 200) -> Response:
    """A route's model as JSON, serialised after the route's session is committed and its slot released, as
    RenderedOnSend does but in the (sync) route's own worker thread, where it is called as the route's last use of
    the session: neither the commit nor the serialisation then takes another trip to the thread pool (the annotator's
    hot path, BENCHMARKS.md "Annotate against the stack's floor")."""
    end_request_session(session)
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
