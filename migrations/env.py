"""Alembic environment: the URL comes from the app's settings unless a caller passes its own."""

from alembic import context

from app.config import get_settings
from app.db import build_engine, normalise_url
from app.models import Base
from app.prompts.search import include_object

config = context.config
target_metadata = Base.metadata


def _process_revision_directives(context_, revision, directives) -> None:
    # Drop empty autogenerate revisions; `alembic check` still sees differences.
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # the app and tests hand over an open connection
        _run(connection)
        return
    settings = get_settings()
    url = config.attributes.get("sqlalchemy.url") or settings.DATABASE_URL
    engine = build_engine(settings.model_copy(update={"DATABASE_URL": normalise_url(url)}))
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        include_object=include_object,  # the prompt search table and index are the migration's, not the models'
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        process_revision_directives=_process_revision_directives,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.in_transaction():
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("Offline (SQL script) migrations are not supported; run against a database.")
run_migrations_online()
