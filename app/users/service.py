"""Users and API tokens: the rules, no HTTP."""

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, bindparam, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, NotAuthenticated, NotFound, Unprocessable
from app.models import ApiToken, PasswordReset, Role, SignedIn, User, UserSession
from app.models.base import as_utc, utcnow
from app.users.schemas import UserCreate
from app.users.security import (
    hash_api_token,
    hash_password,
    new_api_token,
    verify_password,
    verify_unknown_user,
)

SESSION_LIFETIME = timedelta(days=14)  # as the cookie's max_age (app.main)
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)  # api_tokens.last_used_at is written at most this often
RESET_LIFETIME = timedelta(hours=24)  # an unused password-reset code expires after this


def create_user(*, session: Session, data: UserCreate) -> User:
    user = User(
        email=data.email,
        name=data.name,
        role=data.role,
        password_hash=hash_password(data.password) if data.password else None,
    )
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        raise Conflict(f"A user with email {data.email} already exists") from None
    return user


def get_user_by_email(*, session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def authenticate(*, session: Session, email: str, password: str) -> User | None:
    user = get_user_by_email(session=session, email=email)
    if user is None:
        verify_unknown_user(password)  # as slow as a real check: the timing does not tell which emails exist
        return None
    if not verify_password(user.password_hash, password) or not user.is_active:
        return None
    return user


# --- browser sessions: the cookie holds a random id, the server its SHA-256 --------------------------------


def start_session(*, session: Session, user: User) -> str:
    """A new server-side session for `user`; returns the id to put in the signed cookie."""
    now = utcnow()
    session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    session.add(UserSession(user_id=user.id, token_hash=hash_api_token(session_id), expires_at=now + SESSION_LIFETIME))
    session.flush()
    return session_id


# Built once: it runs on every request with a session cookie. Who a live session belongs to, as the User entity or
# as a plain row (SignedIn: the annotator's hot routes); one rule for both.
_LIVE_SESSION = (UserSession.token_hash == bindparam("token_hash")) & (UserSession.expires_at > bindparam("now")) & User.is_active
_USER_FOR_SESSION = select(User).join(UserSession, UserSession.user_id == User.id).where(_LIVE_SESSION)
_SIGNED_IN_FOR_SESSION = select(User.id, User.role).join(UserSession, UserSession.user_id == User.id).where(_LIVE_SESSION)


def user_for_session(*, session: Session, session_id: str) -> User | None:
    """The active user of a live session, in one query."""
    return session.scalar(_USER_FOR_SESSION, {"token_hash": hash_api_token(session_id), "now": utcnow()})


def signed_in_for_session(*, session: Session, session_id: str) -> SignedIn | None:
    """user_for_session as a plain row, read on the session's connection (no ORM loading)."""
    parameters = {"token_hash": hash_api_token(session_id), "now": utcnow()}
    row = session.connection().execute(_SIGNED_IN_FOR_SESSION, parameters).first()
    return None if row is None else SignedIn(row.id, row.role)


def end_session(*, session: Session, session_id: str) -> None:
    session.execute(delete(UserSession).where(UserSession.token_hash == hash_api_token(session_id)))


def revoke_sessions(*, session: Session, user: User, keep: str | None = None) -> int:
    """End every session of `user` (sign out everywhere; a password change keeps its own: `keep`)."""
    statement = delete(UserSession).where(UserSession.user_id == user.id)
    if keep is not None:
        statement = statement.where(UserSession.token_hash != hash_api_token(keep))
    result: CursorResult[Any] = session.execute(statement)  # type: ignore[assignment]  # a DELETE's result is a CursorResult
    return result.rowcount


# --- API tokens -------------------------------------------------------------------------------------------


def create_api_token(*, session: Session, user: User, name: str = "", expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    token = new_api_token()
    record = ApiToken(user_id=user.id, token_hash=hash_api_token(token), name=name, expires_at=expires_at)
    session.add(record)
    session.flush()
    return record, token


# Built once: it runs on every API call (see app.annotation.service on why statements are prebuilt there). The owner
# of a live token, as the User entity or as a plain row (SignedIn: the annotator's hot routes); one rule for both,
# and the expiry and the touch below.
_LIVE_TOKEN = (ApiToken.token_hash == bindparam("token_hash")) & ApiToken.revoked_at.is_(None) & User.is_active
_TOKEN_FIELDS = (ApiToken.id, ApiToken.last_used_at, ApiToken.expires_at)
_USER_FOR_TOKEN = select(User, *_TOKEN_FIELDS).join(ApiToken, ApiToken.user_id == User.id).where(_LIVE_TOKEN)
_SIGNED_IN_FOR_TOKEN = select(User.id, User.role, *_TOKEN_FIELDS).join(ApiToken, ApiToken.user_id == User.id).where(_LIVE_TOKEN)
# SKIP LOCKED (PostgreSQL): when another request of the same token is writing it right now, skip rather than wait.
_TOUCH_TOKEN = (
    update(ApiToken)
    .where(
        ApiToken.id.in_(
            select(ApiToken.id)
            .where(
                ApiToken.id == bindparam("token_id"),
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < bindparam("stale_before")),
            )
            .with_for_update(skip_locked=True)
        )
    )
    .values(last_used_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)


def user_for_token(*, session: Session, token: str) -> User | None:
    """The active user of an unrevoked token, in one query; raises NotAuthenticated when it has expired.
    `last_used_at` is written only when it is a minute old, so most calls add no write."""
    row = session.execute(_USER_FOR_TOKEN, {"token_hash": hash_api_token(token)}).one_or_none()
    if row is None:
        return None
    user, token_id, last_used_at, expires_at = row
    _check_token(session, token_id, last_used_at, expires_at)
    return user


def signed_in_for_token(*, session: Session, token: str) -> SignedIn | None:
    """user_for_token as a plain row, read on the session's connection (no ORM loading); the same checks."""
    row = session.connection().execute(_SIGNED_IN_FOR_TOKEN, {"token_hash": hash_api_token(token)}).one_or_none()
    if row is None:
        return None
    user_id, role, token_id, last_used_at, expires_at = row
    _check_token(session, token_id, last_used_at, expires_at)
    return SignedIn(user_id, role)


def _check_token(session: Session, token_id: int, last_used_at: datetime | None, expires_at: datetime | None) -> None:
    """An expired token is a 401; a used one has `last_used_at` written when it is a minute old."""
    now = utcnow()
    if expires_at is not None and as_utc(expires_at) <= now:
        raise NotAuthenticated(f"API token expired at {as_utc(expires_at):%Y-%m-%d %H:%M} UTC; create a new one")
    if last_used_at is None or as_utc(last_used_at) < now - TOKEN_TOUCH_INTERVAL:
        stale_before = now - TOKEN_TOUCH_INTERVAL
        session.execute(_TOUCH_TOKEN, {"token_id": token_id, "stale_before": stale_before, "now": now})


def revoke_api_token(*, session: Session, user: User, token_id: int) -> None:
    record = session.get(ApiToken, token_id)
    if record is None or (record.user_id != user.id and user.role != "admin"):
        raise NotFound("Token not found")
    record.revoked_at = record.revoked_at or utcnow()


def list_users(*, session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.role, User.email)))


def get_user(*, session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    return user


def sign_out_everywhere(*, session: Session, user_id: int) -> User:
    user = get_user(session=session, user_id=user_id)
    revoke_sessions(session=session, user=user)
    return user


def set_active(*, session: Session, user_id: int, active: bool) -> User:
    """Deactivation ends the user's sessions and revokes their API tokens, so reactivating revives neither."""
    user = get_user(session=session, user_id=user_id)
    if not active and user.is_active and user.role == Role.admin:
        # Locked, so two admins deactivating each other at once cannot both succeed.
        admins = session.scalars(
            select(User.id).where(User.role == Role.admin, User.is_active).order_by(User.id).with_for_update()
        ).all()
        if admins == [user.id]:
            raise Conflict("The last active admin cannot be deactivated; make another user admin first")
    if not active:
        revoke_access(session=session, user=user)
    user.is_active = active
    return user


def revoke_access(*, session: Session, user: User) -> None:
    """Every way in that the user holds ends: browser sessions and API tokens (deactivation, a password reset)."""
    revoke_sessions(session=session, user=user)
    session.execute(
        update(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    )


# --- passwords: change your own, or an admin's one-time reset code ---------------------------------------


def _spend_reset_codes(session: Session, user: User) -> None:
    """Codes still open for the user are spent: used after a newer code or a change, one would undo it."""
    session.execute(
        update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None)).values(used_at=utcnow())
    )


def _set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    _spend_reset_codes(session, user)


def change_password(*, session: Session, user: User, current: str, new: str, keep: str | None) -> int:
    """The user's own change: the current password is required. Ends every other browser session (`keep` is the
    caller's own session id, or None for an API call); returns how many ended. API tokens stay."""
    if not verify_password(user.password_hash, current):
        raise Unprocessable("current_password: this is not your current password")
    _set_password(session, user, new)
    return revoke_sessions(session=session, user=user, keep=keep)


def start_password_reset(*, session: Session, user_id: int, admin: User) -> tuple[PasswordReset, str]:
    """A one-time code (shown once; its hash stored) with which the user sets a new password. The user is signed
    out everywhere now (sessions and API tokens, as deactivation) and the old password stops working: a reset is
    also how a password that leaked is taken back."""
    user = get_user(session=session, user_id=user_id)
    if user.id == admin.id:
        raise Conflict("Change your own password on your account page; a reset would sign you out with no way back in")
    code = secrets.token_urlsafe(24)
    user.password_hash = None  # no password at all until the code is used
    _spend_reset_codes(session, user)
    revoke_access(session=session, user=user)
    reset = PasswordReset(
        user_id=user.id, code_hash=hash_api_token(code), created_by_id=admin.id, expires_at=utcnow() + RESET_LIFETIME
    )
    session.add(reset)
    session.flush()
    return reset, code


_OPEN_RESET = (
    select(PasswordReset)
    .where(
        PasswordReset.code_hash == bindparam("code_hash"),
        PasswordReset.used_at.is_(None),
        PasswordReset.expires_at > bindparam("now"),
    )
    .with_for_update()  # two uses of one code at once: the second waits, then finds it used
)


def use_password_reset(*, session: Session, code: str, new_password: str) -> User | None:
    """Sets the new password and spends the code; None when the code is unknown, used or expired (the caller
    counts that as a failed login, app.users.throttle)."""
    reset = session.scalar(_OPEN_RESET, {"code_hash": hash_api_token(code.strip()), "now": utcnow()})
    if reset is None:
        return None
    user = session.get_one(User, reset.user_id)
    _set_password(session, user, new_password)  # spends this code
    return user
