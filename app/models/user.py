from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Role(StrEnum):
    admin = "admin"  # creates projects and users, uploads batches
    researcher = "researcher"  # uploads batches, watches agreement, exports
    annotator = "annotator"  # labels tasks; sees only their own work


class Identity(Protocol):
    """Who is calling, as the permission checks and the queue need it: a User, or a SignedIn."""

    @property
    def id(self) -> int: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The caller as a plain row (id and role), for the annotator's hot routes: loading the User entity costs the
    ORM's machinery on every call (BENCHMARKS.md "Annotate against the stack's floor")."""

    id: int
    role: str


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'researcher', 'annotator')", name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def display_name(self) -> str:
        return self.name or self.email


class ApiToken(Base):
    """A bearer token for scripts. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]  # written at most once a minute (app.users.service)
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # None: until revoked


class UserSession(Base):
    """A signed-in browser. The cookie carries only a random id whose SHA-256 is stored here, so a session
    ends on the server: logout deletes its row; deactivation, an admin's password reset and "sign out everywhere"
    delete all of the user's rows (changing your own password, all but the one you change it from), and
    reactivating a user revives none of them."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class PasswordReset(Base):
    """A one-time password-reset code an admin made for a user (app.users.service.start_password_reset). Only its
    SHA-256 is stored; the code is shown once. Using it sets a new password and spends it; it expires unused."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class HeavyRequest(Base):
    """A heavy read (agreement report, export, later reports) in progress, so the per-user limit on them
    holds across every app process. A row outlives a killed process only until `expires_at`."""

    __tablename__ = "heavy_requests"
    __table_args__ = (Index("ix_heavy_requests_user_id_expires_at", "user_id", "expires_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class AppSecret(Base):
    """Values every app process must share and no repository may know: the session-signing key generated
    on first start when SECRET_KEY is not set (app.config / app.secrets)."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LoginAttempt(Base):
    """A failed login, kept for the throttling window (app.users.throttle).

    In the database, not in memory, so every app process sees the same count. `key` is
    "account:EMAIL" or "ip:ADDRESS"; one row per failure and key.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key_attempted_at", "key", "attempted_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(400))
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
