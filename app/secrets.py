"""Secrets every app process must share and no repository may know (the `app_secrets` table)."""

import secrets

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from app.models import AppSecret

SESSION_SECRET = "session_secret"


def shared_secret(engine: Engine, name: str) -> str:
    """The stored value of `name`, generated on first use. Several processes may start at once (replicas,
    uvicorn workers): each inserts a candidate only if none exists (ON CONFLICT DO NOTHING, on both
    databases), then all read back the one that won."""
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    candidate = dialect.insert(AppSecret).values(name=name, value=secrets.token_urlsafe(48))
    with engine.begin() as connection:
        connection.execute(candidate.on_conflict_do_nothing(index_elements=[AppSecret.name]))
        return connection.execute(select(AppSecret.value).where(AppSecret.name == name)).scalar_one()
