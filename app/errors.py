"""Domain errors. Each carries its HTTP status as data; services raise them and never know about HTTP.

How they are rendered (JSON for the API, the error page for a browser) is app/web/errors.py's business."""

from typing import Any


class AppError(Exception):
    status_code = 500

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers  # e.g. Retry-After on a 429


class BadRequest(AppError):
    status_code = 400


class NotAuthenticated(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class Unprocessable(AppError):
    status_code = 422


class TooManyRequests(AppError):
    status_code = 429  # with a Retry-After header
