"""Run Alembic from code: `preflab serve` and the tests migrate the same way."""

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from app.config import ROOT


def alembic_config() -> Config:
    return Config(str(ROOT / "alembic.ini"))


def upgrade(engine: Engine) -> None:
    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
