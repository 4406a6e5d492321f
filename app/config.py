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
    MAX_UPLOAD_MB: float = 200  # larger request bodies (uploads) are refused with 413
    SESSION_HTTPS_ONLY: bool = False  # mark the session cookie Secure (set behind HTTPS)
    DB_POOL_SIZE: int = 10  # per app process (PostgreSQL only)
    DB_MAX_OVERFLOW: int = 10
    # Heavy reads (agreement reports, exports; app/heavy.py): at most this many at once per user, across every
    # app process; more get 429 with Retry-After. A slot left by a killed process frees itself after the minutes.
    HEAVY_REQUESTS_PER_USER: int = Field(default=2, ge=1)
    HEAVY_REQUEST_STALE_MINUTES: int = Field(default=10, ge=1)

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
