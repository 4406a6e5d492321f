"""Login, logout, user management (admin) and API tokens."""

from collections.abc import Callable
from typing import Annotated, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.errors import AppError, TooManyRequests, Unprocessable
from app.models import ApiToken, User
from app.text import StorableText, validation_messages
from app.users import service, throttle
from app.users.dependencies import SESSION_KEY, AdminUser, CurrentUser, OptionalUser
from app.users.schemas import (
    PasswordChange,
    PasswordResetCreated,
    PasswordResetUse,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserRead,
)
from app.users.security import rotate_csrf_token
from app.web.sessions import SessionDep
from app.web.templating import templates

router = APIRouter()


def _safe_next(next_url: str | None) -> str:
    # Only same-site paths: an attacker-supplied ?next=https://evil must not redirect off-site.
    if next_url and next_url.startswith("/") and not next_url.startswith("//"):
        return next_url
    return "/"


@router.get("/login", name="users:login")
def login_page(request: Request, user: OptionalUser, next: str | None = None, reset: int = 0) -> Response:
    if user is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    context = {"next": next or "", "error": None, "password_reset": bool(reset)}
    return templates.TemplateResponse(request, "users/login.html", context)


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


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _throttle(request: Request, session, email: str) -> throttle.Blocked | None:
    """Login throttling (app.users.throttle) for a password or code about to be checked: held until the
    request's failure is recorded; a Blocked means refuse before checking anything."""
    throttle.lock(session=session, email=email, address=_address(request))
    return throttle.check(session=session, email=email, address=_address(request))


def _too_many(blocked: throttle.Blocked) -> TooManyRequests:
    return TooManyRequests(blocked.message, headers={"Retry-After": str(blocked.retry_after)})


@router.post("/login", name="users:login_submit")
def login_submit(
    request: Request,
    _slowed: Annotated[None, Depends(slow_down_guessed_account)],
    session: SessionDep,
    email: Annotated[StorableText, Form()] = "",  # looked up in the database: a NUL is a 422, not a driver error
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    address = _address(request)
    blocked = _throttle(request, session, email)
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


@router.post("/admin/users/{user_id}/password-reset", name="users:password_reset")
def users_password_reset(request: Request, session: SessionDep, admin: AdminUser, user_id: int) -> Response:
    """Shows the one-time code once, on this answer (no redirect: the code is not kept anywhere to show again)."""
    reset, code = service.start_password_reset(session=session, user_id=user_id, admin=admin)
    context = {
        "user": admin,
        "users": service.list_users(session=session),
        "errors": None,
        "reset": _reset_created(request, reset, code),
        "reset_user": service.get_user(session=session, user_id=user_id),
    }
    return templates.TemplateResponse(request, "users/list.html", context)


def _reset_created(request: Request, reset, code: str) -> PasswordResetCreated:
    # PUBLIC_BASE_URL + path, or the path alone: never the Host header a client sent (README, "Security").
    path = request.app.url_path_for("users:reset_page")
    url = f"{request.app.state.settings.PUBLIC_BASE_URL or ''}{path}?{urlencode({'code': code})}"
    return PasswordResetCreated(user_id=reset.user_id, code=code, url=url, expires_at=reset.expires_at)


@router.post("/admin/users/{user_id}/sign-out", name="users:sign_out")
def users_sign_out(request: Request, session: SessionDep, admin: AdminUser, user_id: int) -> Response:
    service.sign_out_everywhere(session=session, user_id=user_id)
    return RedirectResponse(request.url_for("users:list"), status_code=303)


# --- your own account, and a reset code's use --------------------------------------------------------------


def _field_errors(exc: ValidationError) -> dict[str, str]:
    """Pydantic's errors by field, in words, for a form that shows each next to its field."""
    return {str(e["loc"][0]) if e["loc"] else "input": e["msg"] for e in exc.errors()}


@router.get("/account", name="users:account")
def account_page(request: Request, user: CurrentUser, changed: int | None = None) -> Response:
    return templates.TemplateResponse(request, "users/account.html", {"user": user, "errors": {}, "changed": changed})


@router.post("/account/password", name="users:change_password")
def change_password_form(
    request: Request,
    session: SessionDep,
    user: CurrentUser,
    current_password: Annotated[str, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    new_password_again: Annotated[str, Form()] = "",
) -> Response:
    data, errors = _password_form(
        lambda: PasswordChange(current_password=current_password, new_password=new_password), new_password, new_password_again
    )
    if data is not None and not errors:
        try:
            ended = _change_password(request, session, user, data)
        except Unprocessable as exc:
            errors["current_password"] = exc.message.removeprefix("current_password: ")
        else:
            return RedirectResponse(request.url_for("users:account").include_query_params(changed=ended), status_code=303)
    context = {"user": user, "errors": errors, "changed": None}
    return templates.TemplateResponse(request, "users/account.html", context, status_code=400)


PasswordFormT = TypeVar("PasswordFormT", bound=BaseModel)


def _password_form(
    build: Callable[[], PasswordFormT], new_password: str, new_password_again: str
) -> tuple[PasswordFormT | None, dict[str, str]]:
    """A password form's fields checked (the model's rules, then the repeated password): the model, and errors by
    field for the page."""
    errors: dict[str, str] = {}
    data = None
    try:
        data = build()
    except ValidationError as exc:
        errors = _field_errors(exc)
    if new_password != new_password_again:
        errors.setdefault("new_password_again", "does not match the new password")
    return data, errors


def _change_password(request: Request, session, user: User, data: PasswordChange) -> int:
    """The change, behind the login throttle: a wrong current password is a failed login of the account, so a
    session left open cannot be used to guess it. Returns how many other sessions ended."""
    if (blocked := _throttle(request, session, user.email)) is not None:
        raise _too_many(blocked)
    try:
        session_id = request.session.get(SESSION_KEY)
        return service.change_password(
            session=session,
            user=user,
            current=data.current_password,
            new=data.new_password,
            keep=session_id if isinstance(session_id, str) else None,
        )
    except Unprocessable:
        throttle.record_failure(session=session, email=user.email, address=_address(request))
        session.commit()  # the failure counts although the request fails
        raise


@router.get("/reset-password", name="users:reset_page")
def reset_page(request: Request, user: OptionalUser, code: str = "") -> Response:
    return templates.TemplateResponse(request, "users/reset.html", {"user": user, "code": code, "errors": {}})


@router.post("/reset-password", name="users:reset_submit")
def reset_form(
    request: Request,
    session: SessionDep,
    user: OptionalUser,
    code: Annotated[StorableText, Form()] = "",
    new_password: Annotated[str, Form()] = "",
    new_password_again: Annotated[str, Form()] = "",
) -> Response:
    data, errors = _password_form(
        lambda: PasswordResetUse(code=code, new_password=new_password), new_password, new_password_again
    )
    if data is not None and not errors:
        try:
            _use_reset_code(request, session, data)
        except TooManyRequests as exc:
            errors["code"] = exc.message
        except Unprocessable as exc:
            errors["code"] = exc.message.removeprefix("code: ")
        else:
            return RedirectResponse(request.url_for("users:login").include_query_params(reset=1), status_code=303)
    context = {"user": user, "code": code, "errors": errors}
    return templates.TemplateResponse(request, "users/reset.html", context, status_code=400)


def _use_reset_code(request: Request, session, data: PasswordResetUse) -> User:
    """A code's use, behind the login throttle (as a login of throttle.RESET_CODE_ACCOUNT)."""
    if (blocked := _throttle(request, session, throttle.RESET_CODE_ACCOUNT)) is not None:
        raise _too_many(blocked)
    user = service.use_password_reset(session=session, code=data.code, new_password=data.new_password)
    if user is None:
        throttle.record_failure(session=session, email=throttle.RESET_CODE_ACCOUNT, address=_address(request))
        session.commit()  # the failure counts although the request fails
        raise Unprocessable("code: unknown, already used or expired; ask an admin for a new one")
    return user


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


@router.post("/api/me/password", status_code=204)
def api_change_password(request: Request, data: PasswordChange, session: SessionDep, user: CurrentUser) -> Response:
    """Your own password; the current one is required. Your other browser sessions end (this one, if the call
    comes from it, stays); API tokens stay. A wrong current password counts as a failed login (429 after several)."""
    _change_password(request, session, user, data)
    return Response(status_code=204)


@router.post("/api/users/{user_id}/password-reset", response_model=PasswordResetCreated, status_code=201)
def api_password_reset(request: Request, user_id: int, session: SessionDep, admin: AdminUser) -> PasswordResetCreated:
    """A one-time code (answered once, only its hash kept) with which the user sets a new password, valid 24 hours.
    The user is signed out everywhere at once (sessions and API tokens) and their old password stops working."""
    reset, code = service.start_password_reset(session=session, user_id=user_id, admin=admin)
    return _reset_created(request, reset, code)


@router.post("/api/password-reset", status_code=204)
def api_use_password_reset(request: Request, data: PasswordResetUse, session: SessionDep) -> Response:
    """Set a new password with a reset code (no login needed). Wrong codes count as failed logins (429 after several)."""
    _use_reset_code(request, session, data)
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
