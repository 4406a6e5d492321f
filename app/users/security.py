"""Passwords, API tokens and CSRF tokens."""

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from fastapi import Request

_hasher = PasswordHasher()
TOKEN_PREFIX = "pfl_"  # makes leaked tokens easy to grep for


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


_dummy: tuple[PasswordHasher, str] | None = None  # a hash of nothing anyone knows, made by the current hasher


def verify_unknown_user(password: str) -> None:
    """Spend what checking a real password costs, for an email with no account (same hasher parameters)."""
    global _dummy
    if _dummy is None or _dummy[0] is not _hasher:
        _dummy = (_hasher, _hasher.hash(secrets.token_urlsafe(16)))
    verify_password(_dummy[1], password)


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    # Tokens are 256 random bits, so a fast unsalted hash is enough (unlike passwords).
    return hashlib.sha256(token.encode()).hexdigest()


def rotate_csrf_token(request: Request) -> str:
    """A new CSRF token (at login): one an attacker planted or read before login stops working."""
    request.session["csrf"] = token = secrets.token_urlsafe(32)
    return token


def ensure_csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use; forms and fetch() send it back."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_token_matches(request: Request, sent: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and sent and hmac.compare_digest(expected, sent))
