"""Field checks shared by prompt and preference records: text (not blank, storable), metadata (JSON that PostgreSQL
stores), chat messages, nesting depth and the length limits of `ImportLimits`. Each check adds its problems, naming
the field, to the record's `Problems` and returns the value, or None when it is unusable."""

import difflib
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from app.prompts.upload.records import ParsedPrompt, ParseError, Problems
from app.text import unstorable

MESSAGE_KEYS = ("role", "content")
ROLES = ("system", "user", "assistant")
MAX_ID_LENGTH = 200
MISSING = object()  # a key absent from the object, told apart from an explicit null
PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class ImportLimits:
    """Per-field and per-file limits of an upload (settings MAX_*, docs/security.md), checked before anything is
    written: each breach is an error naming the line and the field."""

    prompt_chars: int  # a plain prompt, or all the messages of a chat
    response_chars: int
    model_name_chars: int
    metadata_bytes: int  # as compact JSON
    metadata_depth: int  # nesting below a record's top-level field; metadata's own braces are level 1
    parquet_bytes: int  # a Parquet file's data after decompression

    @classmethod
    def from_settings(cls, settings=None) -> "ImportLimits":
        if settings is None:
            from app.config import get_settings  # here: the parser itself needs no configuration

            settings = get_settings()
        return cls(
            prompt_chars=settings.MAX_PROMPT_CHARS,
            response_chars=settings.MAX_RESPONSE_CHARS,
            model_name_chars=settings.MAX_MODEL_NAME_CHARS,
            metadata_bytes=int(settings.MAX_METADATA_KB * 1024),
            metadata_depth=settings.MAX_METADATA_DEPTH,
            parquet_bytes=int(settings.MAX_PARQUET_UNCOMPRESSED_MB * 1024 * 1024),
        )

    def problems(self, prompt: "ParsedPrompt") -> list["ParseError"]:
        """The length limits a parsed prompt breaks (its nesting was checked while parsing)."""
        problems = Problems(prompt.location)
        prompt_chars = sum(len(m["content"]) for m in prompt.messages)
        check_length(problems, "prompt", prompt_chars, self.prompt_chars, "MAX_PROMPT_CHARS")
        check_metadata_size(problems, "metadata", prompt.metadata, self.metadata_bytes)
        for i, response in enumerate(prompt.responses):
            check_length(problems, f"responses[{i}].text", len(response.text), self.response_chars, "MAX_RESPONSE_CHARS")
            if response.model is not None:
                limit = self.model_name_chars
                check_length(problems, f"responses[{i}].model", len(response.model), limit, "MAX_MODEL_NAME_CHARS")
            check_metadata_size(problems, f"responses[{i}].metadata", response.metadata, self.metadata_bytes)
        return problems


def check_length(problems: "Problems", field: str, length: int, limit: int, setting: str) -> None:
    if length > limit:
        problems.add(field, f"is {length:,} characters long; the limit is {limit:,} ({setting})")


def check_metadata_size(problems: "Problems", field: str, metadata: dict | None, limit: int) -> None:
    if metadata is not None and (size := len(orjson.dumps(metadata))) > limit:
        problems.add(field, f"is {size:,} bytes as JSON; the limit is {limit:,} (MAX_METADATA_KB)")


def deep_message(limit: int) -> str:
    return f"nested deeper than {limit} (MAX_METADATA_DEPTH)"


def field_path(path: Sequence[str | int]) -> str:
    """A record's field as errors name it, from its top-level key down to the first "metadata" key, if any."""
    end = path.index("metadata") + 1 if "metadata" in path else 1
    field: str | None = None
    for part in path[:end]:
        field = f"{field or ''}[{part}]" if isinstance(part, int) else key_path(field, part)
    return field or ""


def too_deep(record: object, limit: int) -> str | None:
    """The field of `record` nested deeper than `limit` levels below the record's top level, or None.
    Iterative: a record's depth is bounded by the parser (orjson: 1,024), not by Python's recursion limit."""
    items = record.items() if isinstance(record, dict) else enumerate(record) if isinstance(record, list) else ()
    pending: list[tuple[Any, int, tuple[Any, ...]]] = [
        (value, 1, (key,)) for key, value in items if isinstance(value, dict | list)
    ]
    while pending:
        value, depth, path = pending.pop()
        if depth > limit:
            return field_path(path)
        children = value.items() if isinstance(value, dict) else enumerate(value)
        pending.extend((child, depth + 1, (*path, key)) for key, child in children if isinstance(child, dict | list))
    return None


class DepthGuard:
    """`too_deep` for a record arriving as ijson `basic_parse` events, so a deep record is refused before it
    is built (building one costs memory in proportion to the square of its depth)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: list[list] = []  # per open container: [is_array, current key or index]

    def event(self, event: str, value: object) -> str | None:
        """The field nested too deeply, once this event opens a container past the limit; else None."""
        if event == "map_key":
            self.open[-1][1] = value
            return None
        if event in ("end_map", "end_array"):
            self.open.pop()
            return None
        if self.open and self.open[-1][0]:
            self.open[-1][1] += 1
        if event in ("start_map", "start_array"):
            self.open.append([event == "start_array", -1])
            if len(self.open) - 1 > self.limit:
                return field_path([key for _, key in self.open[:-1]])
        return None


def kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    names: dict[type, str] = {str: "a string", list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def did_you_mean(name: str, candidates: Sequence[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1)
    return f' (did you mean "{match[0]}"?)' if match else ""


def key_path(field: str | None, key: str) -> str:
    if not PLAIN_KEY.fullmatch(key):  # quote keys with dots, spaces or control characters
        return f"{field or ''}[{json.dumps(key)}]"
    return f"{field}.{key}" if field else key


def unknown_keys(obj: dict, allowed: Sequence[str], field: str | None, problems: Problems) -> None:
    for key in obj:
        if key not in allowed:
            suggestion = did_you_mean(key, allowed)
            problems.add(key_path(field, key), f"unknown key; allowed keys: {', '.join(allowed)}{suggestion}")


def check_text(value: object, field: str, problems: Problems) -> str | None:
    if value is MISSING:
        problems.add(field, "is required")
    elif not isinstance(value, str):
        problems.add(field, f"must be a string, got {kind(value)}")
    elif not value or value.isspace():  # blank; unlike strip(), no copy of a long text
        problems.add(field, "must not be empty")
    elif problem := unstorable(value):
        problems.add(field, problem)
    else:
        return value
    return None


def check_optional_text(value: object, field: str, problems: Problems) -> str | None:
    blank = value is None or value is MISSING or (isinstance(value, str) and not value.strip())
    return None if blank else check_text(value, field, problems)


def json_problems(value: object, field: str | None) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, str):
        if problem := unstorable(value):
            yield field, problem
    elif isinstance(value, float):
        if not math.isfinite(value):  # Parquet holds NaN and Infinity; jsonb can't
            yield field, f"must be a finite number, got {value}"
    elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        yield field, f"holds the integer {value}, past the 64 bits that can be stored exactly"
    elif value is not None and not isinstance(value, bool | int | dict | list):
        yield field, f"holds a {type(value).__name__}, which cannot be stored as JSON"
    elif isinstance(value, dict):
        for key, item in value.items():
            if problem := unstorable(key):
                yield field, f"key {json.dumps(key)} {problem}"
            yield from json_problems(item, key_path(field, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from json_problems(item, f"{field}[{i}]")


def check_metadata(value: object, field: str, problems: Problems) -> dict | None:
    if value is None or value is MISSING:
        return None
    if not isinstance(value, dict):
        problems.add(field, f"must be an object, got {kind(value)}")
        return None
    found = list(json_problems(value, field))
    for path, problem in found:
        problems.add(path, problem)
    return None if found else value


def check_chat(
    value: list, problems: Problems, name: str = "prompt", *, ends_with_user: bool = True
) -> list[dict[str, str]] | None:
    """A list of {role, content} messages; `name` is the field errors name ("prompt", "chosen", …)."""
    if not value:
        problems.add(name, "must not be an empty list")
        return None
    before = len(problems)
    messages = []
    for i, message in enumerate(value):
        field = f"{name}[{i}]"
        if not isinstance(message, dict):
            problems.add(field, f'must be an object with "role" and "content", got {kind(message)}')
            continue
        unknown_keys(message, MESSAGE_KEYS, field, problems)
        role = message.get("role", MISSING)
        if role is MISSING:
            problems.add(f"{field}.role", "is required")
        elif role not in ROLES:
            shown = json.dumps(role) if isinstance(role, str) else kind(role)
            problems.add(f"{field}.role", f"must be one of {', '.join(ROLES)}, got {shown}")
        content = check_text(message.get("content", MISSING), f"{field}.content", problems)
        messages.append({"role": role, "content": content})
    if len(problems) > before:
        return None
    if ends_with_user and messages[-1]["role"] != "user":  # the responses answer the last user turn
        problems.add(
            f"{name}[{len(messages) - 1}].role",
            f'the last message must be from the user (the responses answer it), got "{messages[-1]["role"]}"',
        )
        return None
    return messages


class ExternalIds:
    """The explicit ids of one file's records, prompts and preference pairs alike: each is checked (a string or an
    integer, at most MAX_ID_LENGTH characters) and must be unique in the file."""

    def __init__(self) -> None:
        self._seen: dict[str, str] = {}  # id -> location of the record that first had it

    def check(self, value: object, problems: Problems) -> str | None:
        """The id as a string (an integer id becomes one), or None when absent or refused."""
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        elif not isinstance(value, str):
            problems.add("id", f"must be a string or an integer, got {kind(value)}")
            return None
        if (external_id := check_text(value, "id", problems)) is None:
            return None
        if len(external_id) > MAX_ID_LENGTH:
            problems.add("id", f"must be at most {MAX_ID_LENGTH} characters, got {len(external_id)}")
            return None
        if first := self._seen.get(external_id):
            problems.add("id", f"duplicate id {json.dumps(external_id)}, first seen on {first}")
            return None
        self._seen[external_id] = problems.location
        return external_id
