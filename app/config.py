"""Settings from the environment (and an optional .env file). One object, validated at start."""

from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent  # the repository: templates/, static/, migrations/ live here
INSECURE_SECRET = "changethis"  # the value an old default shipped with: refused everywhere
MIN_SECRET_LENGTH = 32  # `python -c "import secrets; print(secrets.token_urlsafe(48))"` gives 64


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    ENVIRONMENT: Literal["local", "test", "production"] = "local"
    DATABASE_URL: str = "sqlite:///./data/preflab.db"  # postgresql+psycopg://user@host/db in production
    # Signs session cookies. Unset: generated once and kept in the database (app.secrets), shared by every process.
    SECRET_KEY: str | None = None
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
    # Where users reach the app, e.g. https://labels.example.org: redirects are built from it, never from the
    # request's Host header. Unset: redirects are relative (Location: /path).
    PUBLIC_BASE_URL: str | None = None
    FORWARDED_ALLOW_IPS: str = "127.0.0.1"  # proxies whose X-Forwarded-For/-Proto `preflab serve` believes
    # Heavy reads (agreement reports, exports; app/heavy.py): at most this many at once per user, across every
    # app process; more get 429 with Retry-After. A slot left by a killed process frees itself after the minutes.
    HEAVY_REQUESTS_PER_USER: int = Field(default=2, ge=1)
    HEAVY_REQUEST_STALE_MINUTES: int = Field(default=10, ge=1)
    # The warm-up a second after start (app.main: numpy, templates, the export's and authentication's statements).
    # Off in the test suite, which starts hundreds of apps: a warm-up thread importing numpy raced the suite's own
    # code (hypothesis saw a half-imported numpy).
    WARM_UP: bool = True

    @field_validator("SECRET_KEY")
    @classmethod
    def _refuse_known_or_short_secret(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value == INSECURE_SECRET:
            raise ValueError(
                f"SECRET_KEY={INSECURE_SECRET!r} is a published default; unset it (a random key is then generated "
                "and kept in the database) or set a random value"
            )
        if len(value) < MIN_SECRET_LENGTH:
            raise ValueError(f"SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters (or unset: one is generated)")
        return value

    @field_validator("PUBLIC_BASE_URL")
    @classmethod
    def _origin_only(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
            raise ValueError("PUBLIC_BASE_URL must be a scheme and host only, like https://labels.example.org")
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
