"""The Jinja environment shared by every page."""

from fastapi import Request
from fastapi.templating import Jinja2Templates

from app.config import ROOT
from app.markdown import render_markdown

templates = Jinja2Templates(directory=str(ROOT / "templates"))
templates.env.filters["markdown"] = render_markdown


def _csrf_token(request: Request) -> str:
    from app.users.security import ensure_csrf_token

    return ensure_csrf_token(request)


templates.env.globals["csrf_token"] = _csrf_token
