from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.models import Role


class UserCreate(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    name: str = Field(default="", max_length=200)
    role: Role
    password: str | None = Field(default=None, min_length=8, max_length=200)

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
    name: str = Field(default="", max_length=200)


class TokenCreated(BaseModel):
    id: int
    token: str  # shown once; only its hash is stored
