"""Login throttling: too many failed logins for one account, or from one client address, and
further attempts are refused for a while (429 with Retry-After), even with the right password.

Failures are rows in `login_attempts`, so several app processes (uvicorn --workers, several hosts on
one PostgreSQL) share the count. A successful login clears its account's failures, not its address's:
otherwise someone with one valid account could reset the address counter between guesses at others.
"""

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.models import LoginAttempt
from app.models.base import as_utc, utcnow

WINDOW = timedelta(minutes=15)
MAX_ACCOUNT_FAILURES = 5  # per account (email), whatever the address
MAX_ADDRESS_FAILURES = 20  # per client address, over all accounts (a shared NAT may hold a few users)


@dataclass(frozen=True)
class Blocked:
    retry_after: int  # seconds
    message: str


def _account_key(email: str) -> str:
    return "account:" + email.strip().lower()[:300]


def _address_key(address: str | None) -> str:
    return "ip:" + (address or "unknown")[:300]


def check(*, session: Session, email: str, address: str | None) -> Blocked | None:
    """None when a login may be tried now; else how long to wait, and why."""
    now = utcnow()
    since = now - WINDOW
    for key, limit, what in (
        (_account_key(email), MAX_ACCOUNT_FAILURES, "for this account"),
        (_address_key(address), MAX_ADDRESS_FAILURES, "from your address"),
    ):
        count, oldest = session.execute(
            select(func.count(), func.min(LoginAttempt.attempted_at)).where(
                LoginAttempt.key == key, LoginAttempt.attempted_at > since
            )
        ).one()
        if count >= limit:
            # Once the oldest of the failures in the window drops out, one more attempt is allowed.
            wait = max(1, math.ceil((as_utc(oldest) + WINDOW - now).total_seconds()))
            minutes = math.ceil(wait / 60)
            return Blocked(
                retry_after=wait,
                message=f"Too many failed logins {what} ({count} in {WINDOW.seconds // 60} minutes); "
                f"try again in {minutes} minute{'s' if minutes != 1 else ''}",
            )
    return None


def record_failure(*, session: Session, email: str, address: str | None) -> None:
    now = utcnow()
    keys = (_account_key(email), _address_key(address))
    # Keep the table small: rows of these keys that left the window are of no use any more.
    session.execute(delete(LoginAttempt).where(LoginAttempt.key.in_(keys), LoginAttempt.attempted_at <= now - WINDOW))
    session.add_all([LoginAttempt(key=key, attempted_at=now) for key in keys])
    session.flush()


def record_success(*, session: Session, email: str) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.key == _account_key(email)))
