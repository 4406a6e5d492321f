"""The Jinja environment shared by every page."""

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from app.config import ROOT
from app.markdown import render_markdown

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
