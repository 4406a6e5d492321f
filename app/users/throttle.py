"""Login throttling that cannot lock the owner out (README, "Security").

- Per client address and account: MAX_PAIR_FAILURES failures in WINDOW, then that address may not try that
  account for a while (429 with Retry-After), even with the right password.
- Per client address, over all accounts: MAX_ADDRESS_FAILURES, then 429 the same way.
- Per account, whatever the address: never refused, only slowed down (`delay`), so a guesser spreading over
  many addresses gains little and the owner, from their own address, still gets in.

Failures are rows in `login_attempts`, so several app processes (uvicorn --workers, several hosts on one
PostgreSQL) share the counts. Checking and recording happen in one transaction that holds a lock per key
(`lock`), so concurrent guesses cannot all pass the check before any of them is recorded. A successful login
clears its account's failures, not its address's: otherwise someone with one valid account could reset the
address counter between guesses at others.
"""

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from app.db import is_postgres
from app.models import LoginAttempt
from app.models.base import as_utc, utcnow

WINDOW = timedelta(minutes=15)
MAX_PAIR_FAILURES = 5  # per (client address, account)
MAX_ADDRESS_FAILURES = 20  # per client address, over all accounts (a shared NAT may hold a few users)
SLOW_AFTER = 5  # account-wide failures in WINDOW (from any address) before each login of it is slowed down
FIRST_DELAY = 0.25  # seconds; doubles with every further failure...
MAX_DELAY = 3.0  # ...up to this
pause = anyio.sleep  # on the event loop, holding no thread nor database connection; tests replace it
# A wrong password-reset code counts as a failed login of this pseudo-account (per address, and towards the
# address's limit over all accounts), so guessing codes and guessing passwords share one budget.
RESET_CODE_ACCOUNT = "password-reset-code"


@dataclass(frozen=True)
class Blocked:
    retry_after: int  # seconds
    message: str


def _email(email: str) -> str:
    return email.strip().lower()[:320]


def _account_key(email: str) -> str:
    return "account:" + _email(email)


def _address_key(address: str | None) -> str:
    return "ip:" + (address or "unknown")[:64]


def _pair_key(email: str, address: str | None) -> str:
    return f"pair:{(address or 'unknown')[:64]} {_email(email)}"


def _failures(session: Session, key: str, since: datetime) -> tuple[int, datetime | None]:
    return session.execute(
        select(func.count(), func.min(LoginAttempt.attempted_at)).where(
            LoginAttempt.key == key, LoginAttempt.attempted_at > since
        )
    ).one()


def delay(*, session: Session, email: str) -> float:
    """Seconds to wait before trying this account's password, from its failures at every address."""
    count, _ = _failures(session, _account_key(email), utcnow() - WINDOW)
    if count < SLOW_AFTER:
        return 0.0
    return min(MAX_DELAY, FIRST_DELAY * 2 ** (count - SLOW_AFTER))


def lock(*, session: Session, email: str, address: str | None) -> None:
    """Serialise logins of this address (and so of this address and account) until the transaction ends.
    PostgreSQL: transaction-level advisory locks, taken in one order. SQLite: the request's transaction
    began with BEGIN IMMEDIATE (app.db), which already lets one writer in at a time."""
    if not is_postgres(session):
        return
    for key in sorted({_address_key(address), _pair_key(email, address)}):
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": number})


def check(*, session: Session, email: str, address: str | None) -> Blocked | None:
    """None when a login may be tried now; else how long to wait, and why. Call `lock` first."""
    now = utcnow()
    for key, limit, what in (
        (_pair_key(email, address), MAX_PAIR_FAILURES, "for this account from your address"),
        (_address_key(address), MAX_ADDRESS_FAILURES, "from your address"),
    ):
        count, oldest = _failures(session, key, now - WINDOW)
        if count >= limit:
            # Once the oldest of the failures in the window drops out, one more attempt is allowed.
            assert oldest is not None  # count >= limit > 0 rows
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
    keys = (_pair_key(email, address), _address_key(address), _account_key(email))
    # Keep the table small: rows of these keys that left the window are of no use any more.
    session.execute(delete(LoginAttempt).where(LoginAttempt.key.in_(keys), LoginAttempt.attempted_at <= now - WINDOW))
    session.add_all([LoginAttempt(key=key, attempted_at=now) for key in keys])
    session.flush()


def record_success(*, session: Session, email: str, address: str | None) -> None:
    """The account's failures are forgotten, and this address's on it; other addresses' counts stay."""
    keys = (_account_key(email), _pair_key(email, address))
    session.execute(delete(LoginAttempt).where(LoginAttempt.key.in_(keys)))
