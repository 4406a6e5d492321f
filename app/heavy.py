"""Heavy reads (agreement reports, exports, later reports): at most HEAVY_REQUESTS_PER_USER at once per user,
across every app process, else 429 with Retry-After.

The count lives in the database (table heavy_requests), one row per request in progress. A row is written before
the work starts and deleted when it ends: when the route returns, or, for a streamed body, when the stream ends or
the client goes away. A process killed mid-request leaves its row behind; rows past `expires_at`
(HEAVY_REQUEST_STALE_MINUTES) no longer count and are deleted by the user's next acquire.

How a slot is taken, per database:
- PostgreSQL: in its own short transaction, committed at once so other processes count it while the work runs,
  under a transaction-level advisory lock on the user id, so two requests can't both see "one slot left".
- SQLite: in the request's own transaction. That transaction holds the database's write lock from the request's
  first query (BEGIN IMMEDIATE, see app.db), so a second transaction could not write before it ends; and since
  every request transaction runs under that lock, no other request counts the rows meanwhile anyway. A streamed
  body runs after the request committed the row, and deletes it in its own transaction.

Reuse: `Depends(heavy_request("kind"))` after the route's user and project dependencies (a refused caller takes no
slot); a route that streams hands its body to `slot.hold_while(body)`.
"""

from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import timedelta
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from app.db import is_postgres
from app.errors import AppError
from app.models import HeavyRequest
from app.models.base import utcnow
from app.users.dependencies import CurrentUser
from app.web.sessions import SessionDep

RETRY_AFTER_SECONDS = 10  # a report takes seconds to tens of seconds; the client may ask again after this
_LOCK_CLASS = 0x48565952  # first key of pg_advisory_xact_lock(int, int): this module's locks; the second is the user id
_LOCK = text("SELECT pg_advisory_xact_lock(:cls, :user)")


class HeavySlot:
    """One heavy request in progress: its heavy_requests row, deleted once by `release()`."""

    def __init__(self, *, row_id: int, make_session: sessionmaker[Session], request_session: Session | None) -> None:
        self.row_id = row_id
        self._make_session = make_session
        self._request_session = request_session  # SQLite: the row is in the request's transaction (see above)
        self._streaming = False
        self.released = False

    def release(self, *, request_failed: bool = False) -> None:
        if self.released:
            return
        self.released = True
        if self._request_session is not None:  # the row is in the request's transaction, not committed yet
            if not request_failed:  # (a failed request's rollback takes the row away)
                self._request_session.execute(delete(HeavyRequest).where(HeavyRequest.id == self.row_id))
            return
        with self._make_session() as session, session.begin():
            session.execute(delete(HeavyRequest).where(HeavyRequest.id == self.row_id))

    def hold_while(self, body: Iterable) -> AsyncIterator:
        """The streamed body, holding the slot until it ends or the client disconnects (then the body is closed
        first, so its own session ends before the slot is given back)."""
        return _stream_holding(self.keep_past_return(), body)

    def keep_past_return(self) -> "HeavySlot":
        """Hold the slot after the route returns, until the caller's `release()` (a stream, a deferred response)."""
        self._streaming = True
        self._request_session = None  # the request commits the row before the work goes on
        return self


async def _stream_holding(slot: HeavySlot, body: Iterable) -> AsyncIterator:
    iterator = iter(body)
    try:
        async for chunk in iterate_in_threadpool(iterator):
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):  # a disconnect cancels the stream; the slot must still be freed
            await run_in_threadpool(_close_and_release, iterator, slot)


def _close_and_release(iterator: Iterator, slot: HeavySlot) -> None:
    try:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    finally:
        slot.release()


class TooManyHeavyRequests(AppError):
    """429 with Retry-After."""

    status_code = 429

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} reports or exports running (the limit per user); "
            f"retry in {RETRY_AFTER_SECONDS} seconds, when one has finished",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def acquire(
    *, session: Session, make_session: sessionmaker[Session], user_id: int, kind: str, limit: int, stale_minutes: int
) -> HeavySlot:
    """A slot for `user_id`, or TooManyHeavyRequests. `session` is the request's; on PostgreSQL the slot is taken in
    a transaction of `make_session` instead (see the module's docstring)."""
    if is_postgres(session):
        with make_session() as own, own.begin():
            own.execute(_LOCK, {"cls": _LOCK_CLASS, "user": user_id})  # held until this commit
            row_id = _take(own, user_id=user_id, kind=kind, limit=limit, stale_minutes=stale_minutes)
        return HeavySlot(row_id=row_id, make_session=make_session, request_session=None)
    row_id = _take(session, user_id=user_id, kind=kind, limit=limit, stale_minutes=stale_minutes)
    return HeavySlot(row_id=row_id, make_session=make_session, request_session=session)


def _take(session: Session, *, user_id: int, kind: str, limit: int, stale_minutes: int) -> int:
    now = utcnow()
    mine = HeavyRequest.user_id == user_id
    session.execute(delete(HeavyRequest).where(mine, HeavyRequest.expires_at <= now))  # left by killed processes
    if session.execute(select(func.count()).select_from(HeavyRequest).where(mine)).scalar_one() >= limit:
        raise TooManyHeavyRequests(limit)
    row = HeavyRequest(user_id=user_id, kind=kind, started_at=now, expires_at=now + timedelta(minutes=stale_minutes))
    session.add(row)
    session.flush()
    return row.id


def heavy_request(kind: str) -> Callable[..., Iterator[HeavySlot]]:
    """A dependency holding a slot of `kind` (agreement, export, ...) for the request: released when the route
    returns, or by the stream if the route called `slot.hold_while(body)`."""

    def dependency(request: Request, session: SessionDep, user: CurrentUser) -> Iterator[HeavySlot]:
        settings = request.app.state.settings
        slot = acquire(
            session=session,
            make_session=request.app.state.database.sessionmaker,
            user_id=user.id,
            kind=kind,
            limit=settings.HEAVY_REQUESTS_PER_USER,
            stale_minutes=settings.HEAVY_REQUEST_STALE_MINUTES,
        )
        try:
            yield slot
        except BaseException:
            if not slot._streaming:
                slot.release(request_failed=True)
            raise
        if not slot._streaming:
            slot.release()

    dependency.__name__ = f"heavy_request_{kind}"
    return dependency


AgreementSlot = Annotated[HeavySlot, Depends(heavy_request("agreement"), scope="function")]
ExportSlot = Annotated[HeavySlot, Depends(heavy_request("export"), scope="function")]
LeaderboardSlot = Annotated[HeavySlot, Depends(heavy_request("leaderboard"), scope="function")]
RewardModelSlot = Annotated[HeavySlot, Depends(heavy_request("reward_models"), scope="function")]
