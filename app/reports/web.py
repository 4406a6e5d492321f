"""Serving a report after the route: the route checks who asks and what (in the request's session), and returns a
DeferredResponse; the report is fetched or computed when that response is sent, after the request's session has
ended. On SQLite the request's transaction holds the write lock and the process's one request slot (app.db), so a
report computed inside the route would stop every annotator of the process for as long as it takes."""

from collections.abc import Callable
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.heavy import HeavySlot


class DeferredResponse(Response):
    """The response `produce()` returns, called in a worker thread once the route's dependencies have ended; the
    heavy-request slot is held until then."""

    def __init__(self, produce: Callable[[], Response], slot: HeavySlot) -> None:
        super().__init__()
        self._produce = produce
        self._slot = slot.keep_past_return()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await run_in_threadpool(self._produce)
        finally:
            with anyio.CancelScope(shield=True):  # a disconnect must still give the slot back
                await run_in_threadpool(self._slot.release)
        await response(scope, receive, send)


def age_words(report: Any) -> str | None:
    """'computed 3 min ago', '…; being refreshed' for the pages; None for a report that was not cached."""
    from app.models.base import as_utc, utcnow

    computed_at = getattr(report, "computed_at", None)
    if computed_at is None:
        return None
    seconds = max(0, int((utcnow() - as_utc(computed_at)).total_seconds()))
    if seconds < 60:
        age = "just now" if seconds < 5 else f"{seconds} s ago"
    elif seconds < 3600:
        age = f"{seconds // 60} min ago"
    elif seconds < 86400:
        age = f"{seconds // 3600} h ago"
    else:
        age = f"{seconds // 86400} days ago"
    refreshing = "; the data changed since, a newer report is being computed (reload in a while)"
    return f"Computed {age}{refreshing if getattr(report, 'stale', False) else ''}."
