"""Users and API tokens: the rules, no HTTP."""

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.models import ApiToken, User
from app.models.base import utcnow
from app.users.schemas import UserCreate
from app.users.security import (
    hash_api_token,
    hash_password,
    new_api_token,
    verify_password,
)


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
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        return None
    return user


def create_api_token(*, session: Session, user: User, name: str = "") -> tuple[ApiToken, str]:
    token = new_api_token()
    record = ApiToken(user_id=user.id, token_hash=hash_api_token(token), name=name)
    session.add(record)
    session.flush()
    return record, token


# Built once: it runs on every API call (see app.annotation.service on why statements are prebuilt there).
_USER_FOR_TOKEN = (
    select(User)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(ApiToken.token_hash == bindparam("token_hash"), ApiToken.revoked_at.is_(None), User.is_active)
)


def user_for_token(*, session: Session, token: str) -> User | None:
    """The active user of an unrevoked token, in one query."""
    return session.scalar(_USER_FOR_TOKEN, {"token_hash": hash_api_token(token)})


def revoke_api_token(*, session: Session, user: User, token_id: int) -> None:
    record = session.get(ApiToken, token_id)
    if record is None or (record.user_id != user.id and user.role != "admin"):
        raise NotFound("Token not found")
    record.revoked_at = record.revoked_at or utcnow()


def list_users(*, session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.role, User.email)))


def set_active(*, session: Session, user_id: int, active: bool) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("User not found")
    user.is_active = active
    return user
