"""The request's database session: a slot of the process's (`Database.request_slot`), a session, and its end —
committed when the route succeeds, rolled back on any exception, or given back earlier by a route that is done with it
(`release_db`, `end_request_session`). The web's half of app/db.py: the commands never load FastAPI through it."""

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from app.db import Database


def _finish(session: Session, commit: bool) -> None:
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


_LEASE = "request_lease"  # in Session.info: the _Lease of a request's session


class _Lease:
    """A request's session and its slot, given back once: when the route ends, or earlier (`release_db`,
    `end_request_session`)."""

    def __init__(self, session: Session, slot: asyncio.Semaphore) -> None:
        self.session, self.slot, self.ended = session, slot, False
        self.loop = asyncio.get_running_loop()
        session.info[_LEASE] = self

    async def end(self, commit: bool) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            if self.session.in_transaction():  # a client that hangs up must not leave the transaction open
                with anyio.CancelScope(shield=True):
                    await run_in_threadpool(_finish, self.session, commit)
            else:
                self.session.close()  # never touched the database: nothing to end
        finally:
            self.slot.release()

    def end_in_worker_thread(self) -> None:
        """`end(True)` from the route's own worker thread: the commit needs no trip there, and the slot is handed
        back to the event loop that owns it. A failed commit raises, leaving the lease to the teardown as before."""
        if self.ended:
            return
        _finish(self.session, True)
        self.ended = True
        self.loop.call_soon_threadsafe(self.slot.release)


async def get_db(request: Request) -> AsyncIterator[Session]:
    """The request's session: committed when the route succeeds, rolled back on any exception.

    Async on purpose: opening a session does no I/O, so only the commit takes a trip to the thread pool."""
    database: Database = request.app.state.database
    slot = database.request_slot()
    await slot.acquire()
    lease = _Lease(database.sessionmaker(), slot)
    request.state.db_lease = lease
    commit = False
    try:
        yield lease.session
        commit = True
    finally:
        await lease.end(commit)


async def release_db(request: Request) -> None:
    """Commits and closes the request's session now and gives its slot back, for a route whose long work (an
    import) runs in short transactions of its own: objects already loaded stay readable, detached."""
    lease: _Lease | None = getattr(request.state, "db_lease", None)
    if lease is not None:
        await lease.end(True)


def end_request_session(session: Session) -> None:
    """Commit and close the request's session and give its slot back now, from the (sync) route that holds it, as its
    last use of the session: the teardown then finds nothing to do, where it would take a trip to the thread pool to
    commit (the annotator's hot path, BENCHMARKS.md "Annotate against the stack's floor"). A failed commit raises
    here: the route answers with an error, as when the teardown's commit fails."""
    lease: _Lease = session.info[_LEASE]
    lease.end_in_worker_thread()


def get_read_sessionmaker(request: Request) -> sessionmaker[Session]:
    return request.app.state.database.read_sessionmaker


SessionDep = Annotated[Session, Depends(get_db, scope="function")]
ReadSessionMakerDep = Annotated[sessionmaker[Session], Depends(get_read_sessionmaker)]
