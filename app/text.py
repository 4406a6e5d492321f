"""Text the database can store: the one rule for every free-text input (form fields, JSON bodies, uploads).

PostgreSQL `text` and `jsonb` cannot hold a NUL character, and UTF-8 cannot encode an unpaired surrogate
(only a JSON escape like "\\ud800" produces one); SQLite would store both, so the rule holds on either.
Also how messages quote inputs back: shortened, and Pydantic's errors as `field: message` lines."""

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator


def unstorable(text: str) -> str | None:
    """Why `text` can't be stored, or None."""
    if (i := text.find("\x00")) >= 0:
        return f"contains a NUL character (\\x00) at position {i + 1}; remove it"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"contains an unpaired surrogate (\\u{ord(text[exc.start]):04x}) at position {exc.start + 1}"
    return None


def check_storable(text: str) -> str:
    """The validator of StorableText, for a type that adds constraints before it (e.g. a password's length)."""
    if problem := unstorable(text):
        raise ValueError(problem)  # Pydantic: a 422 naming the field
    return text


StorableText = Annotated[str, AfterValidator(check_storable)]


SHOWN_CHARS = 300  # of an input echoed in an error message


def shorten(text: str, limit: int = SHOWN_CHARS) -> str:
    """`text`, cut to `limit` characters: error messages quote inputs, never a whole one back."""
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text):,} characters)"


def validation_messages(errors: Sequence[Mapping[str, Any]]) -> list[str]:
    """Pydantic errors as `field: message` lines, for forms and the CLI."""
    return [f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'input'}: {e['msg']}" for e in errors]
