"""Settings from the environment (and an optional .env file). One object, validated at start."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent  # the repository: templates/, static/, migrations/ live here
INSECURE_SECRET = "changethis"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    ENVIRONMENT: Literal["local", "test", "production"] = "local"
    DATABASE_URL: str = "sqlite:///./data/preflab.db"  # postgresql+psycopg://user@host/db in production
    SECRET_KEY: str = INSECURE_SECRET  # signs session cookies; must be set in production
    LEASE_MINUTES: int = 30  # an abandoned task returns to the pool after this
    GOLD_RATE: float = 0.1  # share of "next task" calls that try a gold prompt first
    # Input sizes (docs/security.md). Every request body is limited to MAX_REQUEST_KB; only the upload routes,
    # once the caller is authenticated and allowed, accept up to MAX_UPLOAD_MB. Larger bodies get a 413.
    MAX_REQUEST_KB: float = Field(default=1024, gt=0)
    MAX_UPLOAD_MB: float = Field(default=200, gt=0)
    # Per-field limits of an uploaded batch, checked before anything is written (a 422 naming line and field).
    MAX_PROMPT_CHARS: int = Field(default=500_000, ge=1)  # a prompt; a chat counts all its messages
    MAX_RESPONSE_CHARS: int = Field(default=500_000, ge=1)
    MAX_MODEL_NAME_CHARS: int = Field(default=200, ge=1, le=200)  # the column holds 200
    MAX_METADATA_KB: float = Field(default=64, gt=0)  # a prompt's or a response's metadata, as JSON
    MAX_METADATA_DEPTH: int = Field(default=32, ge=1, le=200)  # nesting of metadata objects and arrays
    MAX_PARQUET_UNCOMPRESSED_MB: float = Field(default=256, gt=0)  # a Parquet upload's data after decompression
    SESSION_HTTPS_ONLY: bool = False  # mark the session cookie Secure (set behind HTTPS)
    DB_POOL_SIZE: int = 10  # per app process (PostgreSQL only)
    DB_MAX_OVERFLOW: int = 10

    @model_validator(mode="after")
    def _enforce_secret_outside_local(self) -> "Settings":
        if self.ENVIRONMENT == "production" and self.SECRET_KEY == INSECURE_SECRET:
            raise ValueError("SECRET_KEY must be set to a random value when ENVIRONMENT=production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
