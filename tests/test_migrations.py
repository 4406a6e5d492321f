"""The schema exists only through Alembic, and the migrations match the models."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app import migrate
from app.config import get_settings
from app.db import build_engine
from app.models import Base
from app.prompts.search import include_object


def test_migrations_match_the_models(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": include_object})
        assert compare_metadata(context, Base.metadata) == []


def test_downgrade_to_base_and_up_again(tmp_path):
    engine = build_engine(get_settings().model_copy(update={"DATABASE_URL": f"sqlite:///{tmp_path}/m.db"}))
    migrate.upgrade(engine)
    assert {"users", "prompts", "annotations", "assignments"} <= set(inspect(engine).get_table_names())
    config = migrate.alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert set(inspect(create_engine(f"sqlite:///{tmp_path}/m.db")).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(engine)
    assert "annotations" in inspect(engine).get_table_names()
    engine.dispose()
