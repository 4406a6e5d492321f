"""Checks the records of one file: prompt records from JSON (objects) and CSV (rows, under a checked header), and
preference records through `PreferenceParser` (preferences.py); a record's id must be unique in its file."""

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

from app.prompts.upload.fields import (
    MISSING,
    ExternalIds,
    ImportLimits,
    Problems,
    check_chat,
    check_metadata,
    check_optional_text,
    check_text,
    deep_message,
    did_you_mean,
    json_problems,
    kind,
    too_deep,
    unknown_keys,
)
from app.prompts.upload.listwise import is_listwise, listwise_places
from app.prompts.upload.preferences import PreferenceParser
from app.prompts.upload.records import ParsedPrompt, ParsedResponse, ParseError
from app.prompts.upload.streams import TooDeep, loads_json

TOP_LEVEL_KEYS = ("id", "prompt", "responses", "metadata")
LISTWISE_PLACES = ("rank", "ranks", "ranking")  # a record with responses and one of these is a listwise judgement
# The listwise export's bookkeeping columns (app/export/rows.py): not metadata of the prompt they describe.
_LISTWISE_EXPORT_KEYS = ("prompt_id", "response_ids", "models", "annotator_id", "annotation_id", "reference_source", "split")
RESPONSE_KEYS = ("text", "model", "metadata")
_CSV_NUMBERED = re.compile(r"(response|model)_([1-9][0-9]*)")


@dataclass(slots=True)
class CsvColumns:
    width: int
    prompt: int
    id: int | None
    metadata: int | None
    responses: list[int]  # index of response_1, response_2, …
    models: dict[int, int]  # response number → index of model_N
    unnamed: list[int]  # blank header cells; spreadsheets often add them

    @classmethod
    def from_header(cls, row: list[str], location: str, min_responses: int) -> tuple["CsvColumns | None", list[ParseError]]:
        problems = Problems(location)
        index: dict[str, int] = {}
        unnamed = []
        for i, cell in enumerate(row):
            name = cell.strip().lower()
            if not name:
                unnamed.append(i)
            elif name in index:
                problems.add(name, f"duplicate column (columns {index[name] + 1} and {i + 1})")
            elif name in ("id", "prompt", "metadata") or _CSV_NUMBERED.fullmatch(name):
                index[name] = i
            else:
                number = re.search(r"[0-9]+$", name)
                n = number.group() if number else "1"
                suggestion = did_you_mean(name, ("id", "prompt", "metadata", f"response_{n}", f"model_{n}"))
                problems.add(
                    name, f"unknown column; allowed: id, prompt, response_1 … response_N, model_1 … model_N, metadata{suggestion}"
                )
        if "prompt" not in index:
            problems.add("prompt", "column is missing")
        numbers = {
            kind: {int(m[2]) for name in index if (m := _CSV_NUMBERED.fullmatch(name)) and m[1] == kind}
            for kind in ("response", "model")
        }
        count = max(numbers["response"], default=0)
        for k in range(1, count + 1):
            if k not in numbers["response"]:
                problems.add(f"response_{k}", "column is missing; number the response columns 1, 2, 3, … without gaps")
        for k in sorted(numbers["model"] - numbers["response"]):
            problems.add(f"model_{k}", f"has no matching response_{k} column")
        if count < min_responses:
            problems.add(
                None, f"needs at least {min_responses} response columns (response_1 … response_{min_responses}), found {count}"
            )
        if problems:
            return None, problems
        return cls(
            width=len(row),
            prompt=index["prompt"],
            id=index.get("id"),
            metadata=index.get("metadata"),
            responses=[index[f"response_{k}"] for k in range(1, count + 1)],
            models={k: index[f"model_{k}"] for k in numbers["model"]},
            unnamed=unnamed,
        ), []


class RecordValidator:
    """Checks records of one file; remembers ids to catch duplicates."""

    def __init__(
        self,
        min_responses: int,
        max_responses: int,
        *,
        pairwise: bool,
        record_format: str = "auto",
        filename: str = "",
        limits: ImportLimits | None = None,
    ) -> None:
        self.limits = limits or ImportLimits.from_settings()
        self.min_responses = min_responses
        self.max_responses = max_responses
        self.record_format = record_format
        self._ids = ExternalIds()  # prompts and preference pairs alike
        self._source = f"listwise: {os.path.basename(filename)}"[:200]  # a listwise judgement's default source
        self._preferences = PreferenceParser(self._ids, record_format, filename, pairwise=pairwise)

    def json_record(self, obj: object, location: str) -> Iterator[ParsedPrompt | ParseError]:
        if (deep := too_deep(obj, self.limits.metadata_depth)) is not None:  # before anything walks it recursively
            return iter([ParseError(location, deep, deep_message(self.limits.metadata_depth))])
        if self.record_format == "listwise" or (self.record_format == "auto" and is_listwise(obj)):
            return self._listwise_record(obj, location)
        if self.record_format != "prompts" and (self.record_format != "auto" or self._preferences.is_preference(obj)):
            return self._preferences.record(obj, location)
        problems = Problems(location)
        if not isinstance(obj, dict):
            problems.add(None, f"must be a JSON object, got {kind(obj)}")
            return iter(problems)
        unknown_keys(obj, TOP_LEVEL_KEYS, None, problems)
        external_id = self._ids.check(obj.get("id"), problems)
        messages, is_chat = self._prompt(obj.get("prompt", MISSING), problems)
        responses = self._json_responses(obj.get("responses", MISSING), problems)
        metadata = check_metadata(obj.get("metadata"), "metadata", problems)
        return self._result(problems, external_id, messages, is_chat, responses, metadata)

    def _listwise_record(self, obj: object, location: str) -> Iterator[ParsedPrompt | ParseError]:
        """A listwise judgement (see listwise.py): a prompt record plus its ranking, kept as a reference label."""
        problems = Problems(location)
        if not isinstance(obj, dict):
            problems.add(None, f"must be a JSON object, got {kind(obj)}")
            return iter(problems)
        raw_id = obj.get("id") if obj.get("id") is not None else obj.get("prompt_id")
        external_id = self._ids.check(raw_id, problems)
        messages, is_chat = self._prompt(obj.get("prompt", MISSING), problems)
        responses = self._json_responses(obj.get("responses", MISSING), problems)
        if isinstance(obj.get("models"), list) and len(obj["models"]) == len(responses):  # the listwise export's column
            models = [check_optional_text(m, f"models[{i}]", problems) for i, m in enumerate(obj["models"])]
            responses = [ParsedResponse(r.text, r.model or m, r.metadata) for r, m in zip(responses, models, strict=True)]
        places = listwise_places(obj, len(obj["responses"]) if isinstance(obj.get("responses"), list) else None, problems)
        extra = {k: v for k, v in obj.items() if k not in (*TOP_LEVEL_KEYS, *LISTWISE_PLACES, *_LISTWISE_EXPORT_KEYS)}
        metadata = check_metadata(obj.get("metadata"), "metadata", problems)
        for path, problem in json_problems(extra, None):  # other keys are kept as metadata, as in the preference formats
            problems.add(path, problem)
        metadata = (metadata or {}) | extra
        if problems or messages is None or places is None:
            return iter(problems)
        return iter(
            [
                ParsedPrompt(
                    location,
                    external_id,
                    messages,
                    is_chat,
                    responses,
                    metadata or None,
                    reference=places,
                    reference_source=self._source,
                )
            ]
        )

    @staticmethod
    def _prompt(prompt: object, problems: Problems) -> tuple[list[dict[str, str]] | None, bool]:
        if isinstance(prompt, list):
            return check_chat(prompt, problems), True
        if isinstance(prompt, str) or prompt is MISSING:
            text = check_text(prompt, "prompt", problems)
            return ([{"role": "user", "content": text}] if text else None), False
        problems.add("prompt", f"must be a string or a list of messages, got {kind(prompt)}")
        return None, False

    def csv_record(self, row: list[str], columns: CsvColumns, location: str) -> Iterator[ParsedPrompt | ParseError]:
        problems = Problems(location)
        if any(extra.strip() for extra in row[columns.width :]):
            problems.add(None, f"has {len(row)} cells but the header has {columns.width} columns")
            return iter(problems)

        def cell(i: int | None) -> str:  # short rows: trailing cells count as empty
            return row[i] if i is not None and i < len(row) else ""

        for i in columns.unnamed:
            if cell(i).strip():
                problems.add(None, f"column {i + 1} has a value but no header")
        raw_id = cell(columns.id)
        external_id = self._ids.check(raw_id if raw_id.strip() else None, problems)
        text = check_text(cell(columns.prompt), "prompt", problems)
        cells = [cell(i) for i in columns.responses]
        count = max((k for k, value in enumerate(cells, start=1) if value.strip()), default=0)
        responses = []
        for k, value in enumerate(cells, start=1):
            model = cell(columns.models.get(k))
            if k > count or not value.strip():
                if k < count:
                    problems.add(
                        f"response_{k}",
                        f"is empty but response_{count} is filled; fill responses from left to right without gaps",
                    )
                if model.strip():
                    problems.add(f"model_{k}", f"is set but response_{k} is empty")
                continue
            response_text = check_text(value, f"response_{k}", problems)
            response_model = check_optional_text(model, f"model_{k}", problems)
            if response_text is not None:
                responses.append(ParsedResponse(response_text, response_model, None))
        self._check_count(count, None, problems)
        metadata = None
        if (raw_metadata := cell(columns.metadata)).strip():
            depth = self.limits.metadata_depth
            try:
                parsed_metadata = loads_json(raw_metadata)
            except TooDeep:
                problems.add("metadata", deep_message(depth))
            except ValueError as exc:
                problems.add("metadata", str(exc))
            else:
                if (deep := too_deep({"metadata": parsed_metadata}, depth)) is not None:
                    problems.add(deep, deep_message(depth))
                else:
                    metadata = check_metadata(parsed_metadata, "metadata", problems)
        messages = [{"role": "user", "content": text}] if text else None
        return self._result(problems, external_id, messages, False, responses, metadata)

    def _json_responses(self, value: object, problems: Problems) -> list[ParsedResponse]:
        if value is MISSING:
            problems.add("responses", "is required")
            return []
        if not isinstance(value, list):
            problems.add("responses", f"must be an array, got {kind(value)}")
            return []
        self._check_count(len(value), "responses", problems)
        responses = []
        for i, item in enumerate(value):
            field = f"responses[{i}]"
            if isinstance(item, str):
                text, model, metadata = check_text(item, field, problems), None, None
            elif isinstance(item, dict):
                unknown_keys(item, RESPONSE_KEYS, field, problems)
                text = check_text(item.get("text", MISSING), f"{field}.text", problems)
                model = check_optional_text(item.get("model"), f"{field}.model", problems)
                metadata = check_metadata(item.get("metadata"), f"{field}.metadata", problems)
            else:
                problems.add(field, f'must be a string or an object with "text", got {kind(item)}')
                continue
            if text is not None:
                responses.append(ParsedResponse(text, model, metadata))
        return responses

    def _check_count(self, count: int, field: str | None, problems: Problems) -> None:
        if not self.min_responses <= count <= self.max_responses:
            low, high = self.min_responses, self.max_responses
            expected = f"exactly {low}" if low == high else f"{low} to {high}"
            problems.add(field, f"expected {expected} responses, got {count}")

    @staticmethod
    def _result(
        problems: Problems,
        external_id: str | None,
        messages: list[dict[str, str]] | None,
        is_chat: bool,
        responses: list[ParsedResponse],
        metadata: dict | None,
    ) -> Iterator[ParsedPrompt | ParseError]:
        if problems or messages is None:
            return iter(problems)
        return iter([ParsedPrompt(problems.location, external_id, messages, is_chat, responses, metadata)])
