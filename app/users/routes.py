"""Login, logout, user management (admin) and API tokens."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.db import SessionDep
from app.errors import AppError
from app.models import ApiToken
from app.text import StorableText, validation_messages
from app.users import service, throttle
from app.users.dependencies import SESSION_KEY, AdminUser, CurrentUser, OptionalUser
from app.users.schemas import TokenCreate, TokenCreated, TokenRead, UserCreate, UserRead
from app.users.security import rotate_csrf_token
from app.web.templating import templates

router = APIRouter()


def _safe_next(next_url: str | None) -> str:
    # Only same-site paths: an attacker-supplied ?next=https://evil must not redirect off-site.
    if next_url and next_url.startswith("/") and not next_url.startswith("//"):
        return next_url
    return "/"


@router.get("/login", name="users:login")
def login_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return templates.TemplateResponse(request, "users/login.html", {"next": next or "", "error": None})


async def slow_down_guessed_account(request: Request, email: Annotated[StorableText, Form()] = "") -> None:
    """Wait before trying an account many recent failures aimed at (throttle.delay). A dependency declared
    before the request's session, so the wait holds neither a database connection nor a thread."""
    database = request.app.state.database

    def read_delay() -> float:
        with database.read_sessionmaker() as session:
            return throttle.delay(session=session, email=email)

    seconds = await run_in_threadpool(read_delay)
    if seconds:
        await throttle.pause(seconds)


@router.post("/login", name="users:login_submit")
def login_submit(
    request: Request,
    _slowed: Annotated[None, Depends(slow_down_guessed_account)],
    session: SessionDep,
    email: Annotated[StorableText, Form()] = "",  # looked up in the database: a NUL is a 422, not a driver error
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    address = request.client.host if request.client else None
    throttle.lock(session=session, email=email, address=address)  # held until the failure is recorded
    blocked = throttle.check(session=session, email=email, address=address)
    if blocked is not None:  # refused before the password is even looked at
        return templates.TemplateResponse(
            request,
            "users/login.html",
            {"next": next, "error": blocked.message, "email": email},
            status_code=429,
            headers={"Retry-After": str(blocked.retry_after)},
        )
    user = service.authenticate(session=session, email=email, password=password)
    if user is None:
        throttle.record_failure(session=session, email=email, address=address)  # committed with the request
        return templates.TemplateResponse(
            request,
            "users/login.html",
            {"next": next, "error": "Wrong email or password", "email": email},
            status_code=400,
        )
    throttle.record_success(session=session, email=email, address=address)
    request.session.clear()  # a fresh session on login (no fixation), with a new CSRF token
    request.session[SESSION_KEY] = service.start_session(session=session, user=user)
    rotate_csrf_token(request)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", name="users:logout")
def logout(request: Request, session: SessionDep) -> Response:
    session_id = request.session.get(SESSION_KEY)
    if isinstance(session_id, str):
        service.end_session(session=session, session_id=session_id)  # a copy of the cookie dies with it
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/admin/users", name="users:list")
def users_page(request: Request, session: SessionDep, admin: AdminUser) -> Response:
    return templates.TemplateResponse(
        request, "users/list.html", {"user": admin, "users": service.list_users(session=session), "errors": None}
    )


@router.post("/admin/users", name="users:create")
def users_create(
    request: Request,
    session: SessionDep,
    admin: AdminUser,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "annotator",
    password: Annotated[str, Form()] = "",
) -> Response:
    errors: list[str] = []
    try:
        data = UserCreate(email=email, name=name, role=role, password=password or None)
        service.create_user(session=session, data=data)
    except ValidationError as exc:
        errors = validation_messages(exc.errors())
    except AppError as exc:
        errors = [exc.message]
    if errors:
        context = {
            "user": admin,
            "users": service.list_users(session=session),
            "errors": errors,
            "form": {"email": email, "name": name, "role": role},
        }
        return templates.TemplateResponse(request, "users/list.html", context, status_code=400)
    return RedirectResponse(request.url_for("users:list"), status_code=303)


@router.post("/admin/users/{user_id}/active", name="users:set_active")
def users_set_active(
    request: Request, session: SessionDep, admin: AdminUser, user_id: int, active: Annotated[bool, Form()]
) -> Response:
    service.set_active(session=session, user_id=user_id, active=active)
    return RedirectResponse(request.url_for("users:list"), status_code=303)


@router.post("/admin/users/{user_id}/sign-out", name="users:sign_out")
def users_sign_out(request: Request, session: SessionDep, admin: AdminUser, user_id: int) -> Response:
    service.sign_out_everywhere(session=session, user_id=user_id)
    return RedirectResponse(request.url_for("users:list"), status_code=303)


# --- JSON API -------------------------------------------------------------------------------------


@router.get("/api/me", response_model=UserRead)
def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.get("/api/users", response_model=list[UserRead])
def api_list_users(session: SessionDep, admin: AdminUser) -> list[UserRead]:
    return [UserRead.model_validate(u) for u in service.list_users(session=session)]


@router.post("/api/users", response_model=UserRead, status_code=201)
def api_create_user(data: UserCreate, session: SessionDep, admin: AdminUser) -> UserRead:
    return UserRead.model_validate(service.create_user(session=session, data=data))


@router.post("/api/users/{user_id}/sign-out", status_code=204)
def api_sign_out_user(user_id: int, session: SessionDep, admin: AdminUser) -> Response:
    """End every browser session of the user ("sign out everywhere"); their API tokens stay."""
    service.sign_out_everywhere(session=session, user_id=user_id)
    return Response(status_code=204)


@router.post("/api/me/tokens", response_model=TokenCreated, status_code=201)
def api_create_token(data: TokenCreate, session: SessionDep, user: CurrentUser) -> TokenCreated:
    record, token = service.create_api_token(session=session, user=user, name=data.name, expires_at=data.expiry())
    return TokenCreated(id=record.id, token=token, expires_at=record.expires_at)


@router.get("/api/me/tokens", response_model=list[TokenRead])
def api_list_tokens(session: SessionDep, user: CurrentUser) -> list[TokenRead]:
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    return [TokenRead.model_validate(t) for t in rows]


@router.delete("/api/me/tokens/{token_id}", status_code=204)
def api_revoke_token(token_id: int, session: SessionDep, user: CurrentUser) -> Response:
    service.revoke_api_token(session=session, user=user, token_id=token_id)
    return Response(status_code=204)
