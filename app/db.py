"""Engine and sessions. One transaction per request, committed before the response is sent: a failed commit
is then an error answer, never a 200 for work that was lost."""

import asyncio
import contextlib
import sqlite3
import threading
import time
import weakref
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings


def normalise_url(url: str) -> str:
    """postgresql:// means psycopg 3 here (SQLAlchemy's default would be psycopg2)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


# How long a writer waits for SQLite's write lock before the request fails, and how often it tries meanwhile.
SQLITE_LOCK_WAIT_SECONDS = 30.0
SQLITE_LOCK_RETRY_SECONDS = 0.001
# Execution option for a connection of the writing engine that only reads (the start's warm-up): on SQLite its
# transaction begins deferred, so it never takes the write lock. It must not write: upgrading a deferred transaction
# that has read fails at once with "database is locked" while another writer holds the lock (no busy wait).
READ_ONLY = "preflab_read_only"
_SQLITE_BUSY = 5  # the primary result code of "database is locked" (sqlite3.OperationalError.sqlite_errorcode)


def _configure_sqlite(engine: Engine, *, immediate: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" below emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")  # for the pragmas below and the deferred engine's readers
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster commits
        if immediate:
            cursor.execute("PRAGMA busy_timeout=0")  # writers wait in began_immediate instead
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY when another
        # writer got in between; BEGIN IMMEDIATE takes the write lock up front, so request
        # transactions serialise cleanly. Long read-only streams (exports) use a deferred engine.
        if not immediate or connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        elif not began_immediate(connection.connection.dbapi_connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")  # one last try: fails as SQLAlchemy's error, as before


def began_immediate(dbapi_connection) -> bool:
    """BEGIN IMMEDIATE, waiting up to SQLITE_LOCK_WAIT_SECONDS for the write lock by trying again every millisecond;
    False if it did not begin (still locked, or another error: the caller's last try raises it).

    Not SQLite's busy handler: it sleeps 1, 2, 5 … then 100 ms between tries, so a writer of one process that has
    waited a while misses the gaps between another process's transactions (an import's chunks, a queue of requests)
    and every request queued behind it in its process waits too: convoys of seconds under a mixed load
    (BENCHMARKS.md, "Mixed load"). A short constant retry takes the lock within a millisecond of its release."""
    deadline = time.monotonic() + SQLITE_LOCK_WAIT_SECONDS
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != _SQLITE_BUSY or time.monotonic() >= deadline:  # BUSY and its variants
                return False
        time.sleep(SQLITE_LOCK_RETRY_SECONDS)


def sqlite_file(settings: Settings) -> str | None:
    """The SQLite database's file, or None (PostgreSQL, or SQLite in memory)."""
    url = normalise_url(settings.DATABASE_URL)
    database = make_url(url).database if url.startswith("sqlite") else None
    return database if database and database != ":memory:" else None


def build_engine(settings: Settings, *, read_only: bool = False) -> Engine:
    url = normalise_url(settings.DATABASE_URL)
    if url.startswith("sqlite"):
        if database := sqlite_file(settings):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine, immediate=not read_only)
        return engine
    return create_engine(url, pool_size=settings.DB_POOL_SIZE, max_overflow=settings.DB_MAX_OVERFLOW, pool_pre_ping=True)


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


CHECKPOINT_INTERVAL_SECONDS = 1.0


def _no_checkpoints_on_commit(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


class _Checkpointer(threading.Thread):
    """PASSIVE checkpoints of one SQLite file, on a connection of its own: they copy what no reader still needs and
    never wait for, nor block, readers or writers (a checkpoint running in another process makes this one skip)."""

    def __init__(self, path: str) -> None:
        super().__init__(name="sqlite-checkpointer", daemon=True)
        self.path, self._stopping = path, threading.Event()

    def run(self) -> None:
        connection = sqlite3.connect(self.path, check_same_thread=False)
        try:
            while not self._stopping.wait(CHECKPOINT_INTERVAL_SECONDS):
                with contextlib.suppress(sqlite3.Error):  # busy (another checkpoint) or briefly unreadable: next time
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=10)


class Database:
    """The engines and session factories of one app instance (kept on app.state, never global)."""

    def __init__(self, settings: Settings) -> None:
        self.engine = build_engine(settings)
        # SQLite: a second engine whose transactions are deferred, for long read-only streams.
        self.read_engine = build_engine(settings, read_only=True) if settings.is_sqlite else self.engine
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessionmaker = sessionmaker(self.read_engine, expire_on_commit=False)
        # How many requests of this process may hold a session at once: the pool's size on PostgreSQL; one on
        # SQLite, whose request transactions take the write lock and so run one at a time anyway.
        self.request_slots = 1 if settings.is_sqlite else settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW
        self._slots_by_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._sqlite_file = sqlite_file(settings)
        self._checkpointer: _Checkpointer | None = None

    def checkpoint_in_background(self) -> None:
        """SQLite (a file): fold the write-ahead log into the database from a thread of this process every
        CHECKPOINT_INTERVAL_SECONDS, instead of in the commit that grows it past SQLite's threshold.

        Left to commits, the checkpoint is paid by whichever request commits next: after an export's long read
        (which pins the log, so nothing can be folded while it runs) that is the whole backlog, tens of thousands
        of pages (50-290 ms in this thread, more inside a loaded request) for one annotator's submit (BENCHMARKS.md,
        "Mixed load"). Idempotent; the serving app
        starts it (app.main), the tests' apps too; commands keep SQLite's own checkpoints."""
        if self._sqlite_file is None or self._checkpointer is not None:
            return
        event.listen(self.engine, "connect", _no_checkpoints_on_commit)
        self.engine.dispose()  # pooled connections were made without it
        self._checkpointer = _Checkpointer(self._sqlite_file)
        self._checkpointer.start()

    def request_slot(self) -> asyncio.Semaphore:
        """The semaphore a request waits on, on the event loop, before it gets a session.

        Without it, requests beyond the pool's size would wait for a connection (or, on SQLite, for the write
        lock) inside worker threads, while the requests holding connections wait for a thread to go on with:
        with enough annotators at once every thread waits and nothing moves. Waiting here costs no thread and
        serves requests in arrival order."""
        loop = asyncio.get_running_loop()  # one per loop: tests start several
        slots = self._slots_by_loop.get(loop)
        if slots is None:
            slots = self._slots_by_loop[loop] = asyncio.Semaphore(self.request_slots)
        return slots

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
