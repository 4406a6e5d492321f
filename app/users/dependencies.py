"""Who is calling, and may they? Every route takes one of these as a parameter, so no route can skip the check; the
two routes that take `Caller` (the annotator's next and submit) call `require_user` as their first statement.
tests/security/test_permissions.py calls every route as every kind of caller."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from app.errors import Forbidden, NotAuthenticated
from app.models import Identity, Role, SignedIn, User
from app.users import service
from app.users.security import csrf_token_matches
from app.web.limits import is_upload_route
from app.web.sessions import SessionDep

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SESSION_COOKIE = "preflab_session"  # the signed cookie holding the login (app.main installs the middleware)
_LOG_IN = "Log in or send an API token (Authorization: Bearer ...)"  # the 401 of a caller who presented nothing
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


@dataclass(frozen=True)
class Credentials:
    """What the caller presented, read from the request without I/O: an API token, or the login cookie's session id."""

    request: Request  # a dead login cookie is cleared on it
    token: str | None
    session_id: str | None

    @classmethod
    def of(cls, request: Request) -> "Credentials":
        token = _bearer_token(request)
        session_id = None if token is not None else request.session.get(SESSION_KEY)
        return cls(request, token, session_id if isinstance(session_id, str) else None)

    @property
    def presented(self) -> bool:
        return self.token is not None or self.session_id is not None


def authenticate(credentials: Credentials, session: Session) -> User | None:
    """The caller's user, None when they presented nothing; an invalid, revoked or expired token is a 401. The one
    rule for who is calling: the dependencies below and the routes that take `Caller` (as a plain row) end here."""
    return _who(credentials, session, service.user_for_token, service.user_for_session)


def require_user(credentials: Credentials, session: Session) -> SignedIn:
    """For a route that takes `Caller`: authenticate's checks, the caller as a plain row (id and role), else 401."""
    return _signed_in(_who(credentials, session, service.signed_in_for_token, service.signed_in_for_session))


_Who = TypeVar("_Who", bound=Identity)  # a User or a SignedIn


def _signed_in(user: _Who | None) -> _Who:
    """The caller, or the 401 of one who presented nothing (or a dead cookie)."""
    if user is None:
        raise NotAuthenticated(_LOG_IN)
    return user


def _who(
    credentials: Credentials, session: Session, by_token: Callable[..., _Who | None], by_session: Callable[..., _Who | None]
) -> _Who | None:
    if credentials.token is not None:
        user = by_token(session=session, token=credentials.token)
        if user is None:
            raise NotAuthenticated("Invalid or revoked API token")
        return user
    if credentials.session_id is None:
        return None
    user = by_session(session=session, session_id=credentials.session_id)
    if user is None:  # logged out, signed out everywhere, deactivated or expired: the cookie is dead
        credentials.request.session.clear()
    return user


def get_optional_user(request: Request, session: SessionDep) -> User | None:
    return authenticate(Credentials.of(request), session)


def get_current_user(request: Request, session: SessionDep) -> User:
    """get_optional_user and the check in one dependency, not one depending on the other: one fewer for FastAPI to
    solve on every call."""
    return _signed_in(authenticate(Credentials.of(request), session))


async def caller_credentials(request: Request) -> Credentials:
    """For the annotator's hot routes (next, submit): the credentials, read on the event loop, and checked by the
    route itself (`require_user`) in its own trip to the thread pool, where CurrentUser would take a trip of its own
    and, on SQLite, hold the write lock across both (BENCHMARKS.md "Annotate against the stack's floor"). A caller
    who presents nothing is refused here, before the path and body are validated; one whose token turns out invalid
    gets the 401 from the route, so a malformed path or body answers them 422 first (nothing is read or written)."""
    credentials = Credentials.of(request)
    if not credentials.presented:
        raise NotAuthenticated(_LOG_IN)
    return credentials


CurrentUser = Annotated[User, Depends(get_current_user)]
Caller = Annotated[Credentials, Depends(caller_credentials)]  # the route must call require_user(caller, session)
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
