"""What reading an upload yields: parsed prompts (with their responses) and errors naming where and what."""

import hashlib
from dataclasses import dataclass

import orjson


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    text: str
    model: str | None
    metadata: dict | None


@dataclass(frozen=True, slots=True)
class ParsedPrompt:
    location: str  # "line 4" / "row 5" / "item 3 (line 12)", for messages from later stages
    external_id: str | None
    messages: list[dict[str, str]]  # always a chat: a plain string prompt becomes [{"role": "user", "content": text}]
    is_chat: bool  # False when the source gave a plain string
    responses: list[ParsedResponse]
    metadata: dict | None
    # An imported preference (preferences.py): tiers of indices into `responses`, best first.
    reference: list[list[int]] | None = None
    reference_source: str | None = None  # e.g. "hh: train.jsonl"


@dataclass(frozen=True, slots=True)
class ParseError:
    location: str | None  # None for file-level problems
    field: str | None  # "responses[2].text", or a CSV column name
    message: str

    def __str__(self) -> str:
        where = ", ".join(part for part in (self.location, self.field and f'field "{self.field}"') if part)
        return f"{where}: {self.message}" if where else self.message


class Problems(list[ParseError]):
    """The errors of one record, all at the same location."""

    def __init__(self, location: str) -> None:
        super().__init__()
        self.location = location

    def add(self, field: str | None, message: str) -> None:
        self.append(ParseError(self.location, field, message))


def content_digest(messages: list[dict[str, str]], texts: list[str]) -> str:
    """sha256 hex of a prompt's content; ids of prompts and preference pairs uploaded without one derive from it."""
    return hashlib.sha256(orjson.dumps([messages, texts])).hexdigest()
