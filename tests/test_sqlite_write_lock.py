"""SQLite writers wait for the write lock by trying BEGIN IMMEDIATE again every millisecond (app/db.py
`began_immediate`), not in SQLite's busy handler, whose sleeps grow to 100 ms and let one process's writers miss the
gaps between another's transactions (BENCHMARKS.md, "Mixed load"). On either test database: these use a SQLite file
of their own."""

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app import db as app_db
from app.config import Settings
from app.db import Database


@pytest.fixture
def lock_db(tmp_path):
    database = Database(Settings(DATABASE_URL=f"sqlite:///{tmp_path}/lock.db"))
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE events (what TEXT)"))
    yield database
    database.dispose()


def test_a_writer_waits_for_the_lock_and_writes_after_the_holder(lock_db):
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock_db.engine.begin() as connection:
            connection.execute(text("INSERT INTO events VALUES ('holder')"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    # Released only once the second writer is waiting: a timer, not a sleep in the test's own path.
    threading.Timer(0.2, release.set).start()
    with lock_db.engine.begin() as connection:  # busy_timeout is 0 on this engine: only the retry makes this wait
        assert release.is_set()  # it began after the holder let go, not beside it
        connection.execute(text("INSERT INTO events VALUES ('waiter')"))
    holder.join()
    with lock_db.engine.connect() as connection:
        assert connection.execute(text("SELECT what FROM events ORDER BY rowid")).scalars().all() == ["holder", "waiter"]


def test_a_writer_that_waits_too_long_gets_sqlalchemys_error(lock_db, monkeypatch):
    monkeypatch.setattr(app_db, "SQLITE_LOCK_WAIT_SECONDS", 0.05)
    release = threading.Event()
    with lock_db.engine.begin():  # this thread holds the lock; another writer of the same file must give up
        failed: list[BaseException] = []

        def write() -> None:
            try:
                with lock_db.engine.begin() as connection:
                    connection.execute(text("INSERT INTO events VALUES ('late')"))
            except BaseException as error:
                failed.append(error)
            release.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert release.wait(10)
        writer.join()
    # The app's 503 handler catches SQLAlchemy's OperationalError (app/web/errors.py).
    assert len(failed) == 1 and isinstance(failed[0], OperationalError) and "database is locked" in str(failed[0])
    with lock_db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM events")).scalar() == 0


def test_readers_of_the_deferred_engine_are_not_held_by_a_writer(lock_db):
    with lock_db.engine.begin() as writer:
        writer.execute(text("INSERT INTO events VALUES ('uncommitted')"))
        with lock_db.read_engine.connect() as reader:
            assert reader.execute(text("SELECT count(*) FROM events")).scalar() == 0


def test_the_serving_app_folds_the_log_in_the_background_not_in_commits(lock_db, monkeypatch, tmp_path):
    monkeypatch.setattr(app_db, "CHECKPOINT_INTERVAL_SECONDS", 0.05)
    lock_db.checkpoint_in_background()
    checkpointer = lock_db._checkpointer
    lock_db.checkpoint_in_background()  # idempotent: one thread
    assert checkpointer is lock_db._checkpointer and checkpointer.is_alive()
    with lock_db.engine.begin() as connection:  # a commit does not fold the log: SQLite's threshold is off
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
        rows = (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) SELECT hex(randomblob(500)) FROM n"
        )
        connection.execute(text(f"INSERT INTO events {rows}"))
    main_file = tmp_path / "lock.db"
    deadline = time.monotonic() + 30  # the thread folds it within a few of its intervals
    while main_file.stat().st_size < 5_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert main_file.stat().st_size >= 5_000_000  # the 10 MB of rows moved from the log into the file
    lock_db.dispose()
    assert not checkpointer.is_alive()


def test_a_read_only_connection_of_the_writing_engine_does_not_take_the_write_lock(lock_db, monkeypatch):
    monkeypatch.setattr(app_db, "SQLITE_LOCK_WAIT_SECONDS", 0.05)  # a BEGIN IMMEDIATE here would fail quickly
    with lock_db.engine.begin() as writer:  # holds the write lock
        writer.execute(text("INSERT INTO events VALUES ('uncommitted')"))
        with lock_db.engine.connect() as connection:
            reader = connection.execution_options(**{app_db.READ_ONLY: True})
            assert reader.execute(text("SELECT count(*) FROM events")).scalar() == 0


def test_healthz_answers_while_a_writer_holds_the_lock(tmp_path, monkeypatch):
    from fastapi.testclient import TestClient

    from app import migrate
    from app.config import get_settings
    from app.main import create_app

    monkeypatch.setattr(app_db, "SQLITE_LOCK_WAIT_SECONDS", 0.05)  # a probe that took the write lock would fail fast
    app = create_app(get_settings().model_copy(update={"DATABASE_URL": f"sqlite:///{tmp_path}/app.db"}))
    migrate.upgrade(app.state.database.engine)
    try:
        with TestClient(app) as client, app.state.database.engine.begin() as writer:
            writer.execute(text("DELETE FROM users"))  # holds the write lock, as an import's chunk does
            assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    finally:
        app.state.database.dispose()
