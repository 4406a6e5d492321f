from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from app.models import Role
from app.models.base import as_utc, utcnow
from app.text import StorableText, check_storable

# The one rule for a new password: at creation, on a change and on a reset.
# The length is checked first, so its message reads "at least 8 characters".
Password = Annotated[str, Field(min_length=8, max_length=200), AfterValidator(check_storable)]


class UserCreate(BaseModel):
    email: StorableText = Field(min_length=3, max_length=320)
    name: StorableText = Field(default="", max_length=200)
    role: Role
    password: Password | None = None

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str) -> str:
        value = value.strip().lower()
        local, _, domain = value.partition("@")
        if not local or "." not in domain or " " in value:
            raise ValueError("must be an email address like name@example.org")
        return value


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    name: str
    role: Role
    is_active: bool


class TokenCreate(BaseModel):
    name: StorableText = Field(default="", max_length=200)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, description="Valid for this many days")
    expires_at: datetime | None = Field(default=None, description="Or valid until then (with a time zone)")

    @model_validator(mode="after")
    def _one_expiry(self) -> "TokenCreate":
        if self.expires_in_days is not None and self.expires_at is not None:
            raise ValueError("give expires_in_days or expires_at, not both")
        if self.expires_at is not None:
            if self.expires_at.tzinfo is None:
                raise ValueError("expires_at needs a time zone, like 2027-01-31T00:00:00Z")
            if self.expires_at <= utcnow():
                raise ValueError("expires_at must be in the future")
        return self

    def expiry(self) -> datetime | None:
        if self.expires_in_days is not None:
            return utcnow() + timedelta(days=self.expires_in_days)
        return self.expires_at


class TokenCreated(BaseModel):
    id: int
    token: str  # shown once; only its hash is stored
    expires_at: datetime | None = None


class TokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None  # to the minute (app.users.service.TOKEN_TOUCH_INTERVAL)
    expires_at: datetime | None
    revoked_at: datetime | None = Field(exclude=True)

    @field_validator("created_at", "last_used_at", "expires_at", "revoked_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)  # SQLite hands back naive UTC

    @computed_field  # type: ignore[prop-decorator]  # Pydantic's documented form; mypy can't type it
    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expired(self) -> bool:
        return self.expires_at is not None and as_utc(self.expires_at) <= utcnow()


class PasswordChange(BaseModel):
    current_password: StorableText = Field(max_length=200)
    new_password: Password


class PasswordResetUse(BaseModel):
    code: StorableText = Field(min_length=1, max_length=200)
    new_password: Password


class PasswordResetCreated(BaseModel):
    user_id: int
    code: str  # shown once; only its hash is stored
    url: str  # the page that takes it, with the code filled in
    expires_at: datetime
