"""Who is calling, and may they? Every route takes one of these as a parameter, so no route can skip the check."""

from typing import Annotated

from fastapi import Depends, Request

from app.db import SessionDep
from app.errors import Forbidden, NotAuthenticated
from app.models import Role, User
from app.users import service
from app.users.security import csrf_token_matches
from app.web.limits import is_upload_route

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SESSION_COOKIE = "preflab_session"  # the signed cookie holding the login (app.main installs the middleware)
SESSION_KEY = "sid"  # in the signed cookie: the id of a user_sessions row (app.users.service.start_session)


def _bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def csrf_protect(request: Request) -> None:
    """Cookie-authenticated state changes must echo the session's CSRF token.

    Bearer-token calls are exempt: a browser never attaches them on its own.
    """
    if request.method in SAFE_METHODS or _bearer_token(request):
        return
    if SESSION_KEY not in request.session and request.url.path != "/login":
        return  # anonymous: the route's own check answers 401
    sent = request.headers.get("x-csrf-token")
    # An upload's body is read only after its route's permission checks (app.web.limits): its page sends the header.
    if (
        sent is None
        and not is_upload_route(request)
        and request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded", "multipart/form-data"))
    ):
        field = (await request.form()).get("csrf_token")  # parsed once, within MAX_REQUEST_KB; the route reuses it
        sent = field if isinstance(field, str) else None
    if not csrf_token_matches(request, sent):
        raise Forbidden("CSRF token missing or invalid; reload the page and try again")


def get_optional_user(request: Request, session: SessionDep) -> User | None:
    token = _bearer_token(request)
    if token is not None:
        user = service.user_for_token(session=session, token=token)
        if user is None:
            raise NotAuthenticated("Invalid or revoked API token")
        return user
    session_id = request.session.get(SESSION_KEY)
    if not isinstance(session_id, str):
        return None
    user = service.user_for_session(session=session, session_id=session_id)
    if user is None:  # logged out, signed out everywhere, deactivated or expired: the cookie is dead
        request.session.clear()
    return user


def get_current_user(request: Request, session: SessionDep) -> User:
    """get_optional_user and the check in one dependency, not one depending on the other: one fewer for FastAPI to
    solve on every call."""
    user = get_optional_user(request, session)
    if user is None:
        raise NotAuthenticated("Log in or send an API token (Authorization: Bearer ...)")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]
OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def require_roles(*roles: Role):
    # No I/O, so `async def`: FastAPI runs it on the event loop, where a plain `def` would cost a hop to the thread
    # pool and back on every request.
    async def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden("Your role does not allow this")
        return user

    return check


AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
StaffUser = Annotated[User, Depends(require_roles(Role.admin, Role.researcher))]  # uploads, agreement, export
