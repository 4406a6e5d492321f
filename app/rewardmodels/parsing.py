"""Reading a reward model's score file (JSON Lines). Pure: bytes in, score rows and errors out, in file order.

Two record shapes (README "Reward-model evaluation"):
- one response: {"prompt_id": the prompt's external id, "response": …, "score": number}, where "response" is the
  response's text, its index in the prompt's uploaded `responses` list (Response.position), or {"response_id": id};
- one pair, TRL-shaped: {"prompt", "chosen", "rejected", "score_chosen", "score_rejected"}, the prompt and the texts
  read as the preference import reads them (app/prompts/upload/preferences.py), matched by content.
Errors reuse the upload's `ParseError` ("line 4, field "score": …") and its JSON reading (UTF-8 checked, NaN refused,
nesting limited); the service matches rows to the project's prompts and reports the unknown ones by line too.
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from app.prompts.upload import ParseError
from app.prompts.upload.fields import MISSING, deep_message, kind
from app.prompts.upload.preferences import read_pair
from app.prompts.upload.records import Problems
from app.prompts.upload.streams import ByteReader, TooDeep, deep_field, loads_json, utf8_error

RESPONSE_KEYS = ("prompt_id", "response", "score")
PAIR_KEYS = ("prompt", "chosen", "rejected", "score_chosen", "score_rejected")


@dataclass(frozen=True, slots=True)
class ResponseRef:
    """How a row names a response: by text, by upload position, or by id."""

    text: str | None = None
    position: int | None = None
    response_id: int | None = None


@dataclass(frozen=True, slots=True)
class ScoreRow:
    location: str  # "line 4"
    field: str  # where the score came from: "score", "score_chosen", "score_rejected"
    response: ResponseRef
    score: float
    prompt_id: str | None = None  # the external id (response rows)
    messages: list[dict[str, str]] | None = None  # the prompt's content (pair rows)
    partner: str | None = None  # pair rows: the other response's text, to tell prompts with the same content apart


def _score(obj: dict, key: str, problems: Problems) -> float | None:
    value = obj.get(key, MISSING)
    if value is MISSING or value is None:
        problems.add(key, "is required")
    elif isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(key, f"must be a number, got {kind(value)}")
    elif not math.isfinite(float(value)):
        problems.add(key, "must be a finite number")
    else:
        return float(value)
    return None


def _response_ref(value: object, problems: Problems) -> ResponseRef | None:
    if isinstance(value, str):
        return ResponseRef(text=value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            problems.add("response", f"an index into the prompt's responses must be 0 or more, got {value}")
            return None
        return ResponseRef(position=value)
    if isinstance(value, dict) and set(value) == {"response_id"}:
        rid = value["response_id"]
        if isinstance(rid, int) and not isinstance(rid, bool) and rid >= 1:
            return ResponseRef(response_id=rid)
        problems.add("response.response_id", f"must be a positive integer, got {kind(rid)}")
        return None
    problems.add("response", f'must be the response\'s text, its index, or {{"response_id": id}}, got {kind(value)}')
    return None


def _record(obj: object, location: str) -> list[ScoreRow | ParseError]:
    problems = Problems(location)
    if not isinstance(obj, dict):
        problems.add(None, f"must be a JSON object, got {kind(obj)}")
        return list(problems)
    if "chosen" in obj or "rejected" in obj:
        if unknown := sorted(set(obj) - set(PAIR_KEYS) - {"id", "prompt_id"}):
            problems.add(unknown[0], f"unknown key; a pair row has {', '.join(PAIR_KEYS)}")
        chosen, rejected = _score(obj, "score_chosen", problems), _score(obj, "score_rejected", problems)
        pair = read_pair(obj, problems)
        if problems or pair is None or chosen is None or rejected is None:
            return list(problems)
        messages, chosen_text, rejected_text = pair
        return [
            ScoreRow(location, "score_chosen", ResponseRef(text=chosen_text), chosen, messages=messages, partner=rejected_text),
            ScoreRow(
                location, "score_rejected", ResponseRef(text=rejected_text), rejected, messages=messages, partner=chosen_text
            ),
        ]
    if unknown := sorted(set(obj) - set(RESPONSE_KEYS)):
        problems.add(
            unknown[0], f"unknown key; a row has {', '.join(RESPONSE_KEYS)} (or the TRL pair keys {', '.join(PAIR_KEYS)})"
        )
    prompt_id = obj.get("prompt_id", MISSING)
    if isinstance(prompt_id, int) and not isinstance(prompt_id, bool):
        prompt_id = str(prompt_id)
    if prompt_id is MISSING or prompt_id is None:
        problems.add("prompt_id", "is required (the prompt's id as uploaded)")
    elif not isinstance(prompt_id, str):
        problems.add("prompt_id", f"must be a string, got {kind(prompt_id)}")
    if "response" not in obj:
        problems.add("response", "is required")
        ref = None
    else:
        ref = _response_ref(obj["response"], problems)
    score = _score(obj, "score", problems)
    if problems or ref is None or score is None or not isinstance(prompt_id, str):
        return list(problems)
    return [ScoreRow(location, "score", ref, score, prompt_id=prompt_id)]


def parse_scores(stream: BinaryIO, *, depth: int) -> Iterator[ScoreRow | ParseError]:
    """Rows and errors in file order; a blank line is skipped. `depth`: MAX_METADATA_DEPTH, the upload's nesting limit."""
    reader = ByteReader(stream)
    if not reader.head.strip():
        yield ParseError(None, None, "the file is empty")
        return
    anything = False
    for line_no, raw in reader.lines():
        location = f"line {line_no}"
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            yield utf8_error(line_no, exc)
            continue
        if not text or text.isspace():
            continue
        anything = True
        # Nesting is checked before the record is built (as the import does), only when it could be too deep.
        if text.count("[") + text.count("{") > depth and (field := deep_field(raw, depth)) is not None:
            yield ParseError(location, field, deep_message(depth))
            continue
        try:
            obj = loads_json(text)
        except TooDeep:
            yield ParseError(location, deep_field(raw, depth), deep_message(depth))
            continue
        except ValueError as exc:
            yield ParseError(location, None, str(exc))
            continue
        yield from _record(obj, location)
    if not anything:
        yield ParseError(None, None, "the file holds no score rows")
