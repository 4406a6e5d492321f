"""Large uploads are imported in a child process, so their parsing never holds the serving process's GIL.

Parsing and validating an upload is CPU-bound Python. In a thread of the server process it shares that process's
one GIL with the annotators' requests and with an export landing on the same process, which then take turns with it
(BENCHMARKS.md, "Mixed load"). An upload of LARGE_UPLOAD_BYTES or more is imported by a child instead:
- The child reopens the upload Starlette spooled to a temporary file through a descriptor of the server (Linux:
  /proc/<pid>/fd/<n>; the file has no name); it never passes through memory. Where that path does not exist the
  import stays in the thread.
- The children are started with "spawn" (a fork of the multi-threaded server is unsafe), at the first large upload,
  and kept for the next ones (a start takes ~0.7 s); they stop with the app, or after IDLE_SECONDS without a large
  upload (an idle child holds ~90 MB: an admin's batches come minutes or days apart). Before the first, none runs.
- A child builds its own engine from the app's settings and writes like any other writer (on SQLite it waits for the
  write lock, app/db.py `began_immediate`). The app's errors (app.errors) come back pickled and answer as from the
  thread. A child that dies answers 500 (`ImportProcessDied`); its batch's owner is the child (app/prompts/service.py
  `_OWNER`), gone, so the route discards the batch at once (any next import or start would too).
- A server process that dies (killed, out of memory) while its child imports answers nobody; had the import run in its
  thread, it would have died with it. The child does the same: it stops at its next transaction and removes what it
  wrote (`_while_server_lives`), rather than showing a batch its uploader was told nothing about; then it ends
  (`_end_with_server`: a pool's child holds its own end of the pipe it is sent work by, so it would wait there for
  ever, holding its memory).
"""

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, BinaryIO

from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.db import Database
from app.errors import AppError
from app.prompts import service

# Smaller uploads stay in the server's thread: they hold its GIL for under half a second (the benches' prompts), less
# than a child's first start.
LARGE_UPLOAD_BYTES = 8 * 1024 * 1024
# Large imports of one server process running at once; more wait for the child. Each idle child keeps its memory.
CHILDREN = 1
IDLE_SECONDS = 300.0  # after the last large import ends, the children stop; the next large upload starts them again


class ImportProcessDied(AppError):
    """The child ended (killed, out of memory) before its import finished: nothing of it is shown."""

    status_code = 500


def reopenable(stream: BinaryIO) -> bool:
    """Whether a child can open the upload's file: it has a descriptor (a spooled file still in memory is written to
    its file first; Starlette keeps up to 1 MB in memory, far below LARGE_UPLOAD_BYTES) and /proc shows it."""
    try:
        return os.path.exists(_path_of(stream.fileno()))
    except (AttributeError, OSError):  # io.UnsupportedOperation is an OSError
        return False


def _path_of(descriptor: int) -> str:
    """The path by which another process opens a file of this one from its start (the upload's has no name)."""
    return f"/proc/{os.getpid()}/fd/{descriptor}"


class ServerGone(Exception):
    """The server process that asked a child for an import has ended: nobody will read its answer."""


_importing = threading.Lock()  # a child's: held while it imports
_server = 0  # a child's: the pid of its server (the parent that started it), set by `_end_with_server`


def _end_with_server() -> None:
    """A child's initializer: records its server, and starts a thread that ends the child once that server is gone
    and no import is under way (one under way stops by itself, `_while_server_lives`)."""
    global _server
    server = _server = os.getppid()

    def watch() -> None:
        while os.getppid() == server:  # an orphan is adopted by another process
            time.sleep(1)
        with _importing:
            os._exit(0)

    threading.Thread(target=watch, name="end-with-server", daemon=True).start()


def _while_server_lives(server: int) -> service.Turn:
    """The child's `turn`: the first transaction entered after the server (pid `server`) is gone raises ServerGone,
    so the import stops there; the later ones (the discard of what it wrote) go through."""
    stopped = False

    @contextmanager
    def turn() -> Iterator[None]:
        nonlocal stopped
        if not stopped and os.getppid() != server:
            stopped = True
            raise ServerGone(f"the server process {server} ended during the import")
        yield

    return turn


def _import_in_child(settings: Settings, path: str, arguments: dict[str, Any]) -> service.ImportResult:
    with _importing:
        database = Database(settings)
        try:
            with open(path, "rb") as stream:
                turn = _while_server_lives(_server)
                return service.import_file(sessions=database.sessionmaker, stream=stream, turn=turn, **arguments)
        finally:
            database.dispose()


class ImportProcesses:
    """The import children of one app (app.state.import_processes)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # guards the three below
        self._imports = 0  # imports submitted to the pool and not yet answered
        self._idle: threading.Timer | None = None  # stops the pool once it has had no import for IDLE_SECONDS

    def _started(self) -> ProcessPoolExecutor:
        """The pool, started if need be, with one more import counted on it (`_finished` counts it off)."""
        with self._lock:
            self._cancel_idle()
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    CHILDREN,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_end_with_server,
                )
            self._imports += 1
            return self._pool

    def _cancel_idle(self) -> None:
        """Under the lock: the pool is busy again, or stopping."""
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _finished(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            self._imports -= 1
            if self._imports == 0 and self._pool is pool:
                self._idle = threading.Timer(IDLE_SECONDS, self._stop_if_idle, args=(pool,))
                self._idle.daemon = True
                self._idle.start()

    def _stop_if_idle(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._imports or self._pool is not pool:  # an import came in meanwhile, or the pool was replaced
                return
            self._pool, self._idle = None, None
        pool.shutdown(wait=True)  # a child still finishing a cancelled request's import ends it first

    async def import_file(self, stream: BinaryIO, **arguments: Any) -> service.ImportResult:
        """`service.import_file` of the upload's file (`reopenable`) in a child, with these keyword arguments (all
        but the sessions, the stream and the turn)."""
        pool = self._started()
        try:
            return await self._import_in(pool, stream, arguments)
        finally:
            self._finished(pool)

    async def _import_in(self, pool: ProcessPoolExecutor, stream: BinaryIO, arguments: dict[str, Any]) -> service.ImportResult:
        # The child opens the file by a descriptor of its own, closed once the child is done with it: the request's
        # may be closed sooner (the request cancelled while the child works or waits), and a closed descriptor's
        # number can come to name another file.
        descriptor = os.dup(stream.fileno())
        try:
            future = pool.submit(_import_in_child, self.settings, _path_of(descriptor), arguments)
        except BaseException:
            os.close(descriptor)
            raise
        future.add_done_callback(lambda _: os.close(descriptor))
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as exc:
            # A broken pool takes no more work: the next import starts another. Shut down with waiting, so the dead
            # child is reaped (a zombie still answers kill(pid, 0): its batch would not count as abandoned).
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            await run_in_threadpool(pool.shutdown, True)
            raise ImportProcessDied(
                "The import stopped before it finished (its process ended); nothing was imported. Upload the file again."
            ) from exc

    def stop(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            self._cancel_idle()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
