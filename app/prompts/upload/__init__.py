"""Reading uploaded prompt batches (JSON Lines, JSON array, CSV, Parquet): `parse_batch` and `ErrorCollector`.

Pure: bytes in, `ParsedPrompt` / `ParseError` out, in file order; no database, no FastAPI. Imports are all-or-nothing,
so the parser reports every problem it finds instead of stopping at the first one; `ErrorCollector` caps the list.
The file formats, locations and limits are described in formats.py; preference records in preferences.py.
"""

import json
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from app.prompts.upload.fields import ImportLimits
from app.prompts.upload.formats import SUPPORTED_EXTENSIONS, UnsupportedFormatError, detect_format, parse_file
from app.prompts.upload.preferences import PREFERENCE_FORMATS
from app.prompts.upload.records import ParsedPrompt, ParsedResponse, ParseError, content_digest
from app.prompts.upload.streams import ByteReader, StopParsing
from app.prompts.upload.validation import RecordValidator
from app.text import shorten

__all__ = [
    "PREFERENCE_FORMATS",
    "RECORD_FORMATS",
    "SUPPORTED_EXTENSIONS",
    "ErrorCollector",
    "ImportLimits",
    "ParseError",
    "ParsedPrompt",
    "ParsedResponse",
    "UnsupportedFormatError",
    "content_digest",
    "detect_format",
    "parse_batch",
]

RECORD_FORMATS = ("auto", "prompts", *PREFERENCE_FORMATS, "listwise")  # listwise: listwise.py


def parse_batch(
    stream: BinaryIO,
    *,
    filename: str,
    min_responses: int,
    max_responses: int,
    pairwise: bool | None = None,
    record_format: str = "auto",
    limits: ImportLimits | None = None,
) -> Iterator[ParsedPrompt | ParseError]:
    """Yields prompts and errors in file order. Only `stream.read(n)` is used; memory stays at about one line.

    `record_format` (see preferences.py): "auto" reads a record with chosen/rejected as a preference
    pair, a record with responses and rank/ranking as a listwise judgement and any other as a prompt; "prompts" reads
    only prompts; "trl", "trl-chat", "hh", "ultrafeedback" read only preference records of that format; "listwise"
    only listwise judgements (listwise.py). `pairwise`: the project is pairwise, so preference records are
    allowed (its kind decides, not the response bounds: a ranking project may want exactly 2 responses); None
    reads it from the bounds, exactly 2 as the pairwise kind. `limits`: ImportLimits, by default from the settings."""
    limits = limits or ImportLimits.from_settings()
    if not 1 <= min_responses <= max_responses:
        raise ValueError(f"bad response bounds {min_responses}..{max_responses}")
    if record_format not in RECORD_FORMATS:
        yield ParseError(None, None, f"unknown format {json.dumps(record_format)}; choose from {', '.join(RECORD_FORMATS)}")
        return
    reader = ByteReader(stream)
    if not reader.head.strip():
        yield ParseError(None, None, "the file is empty")
        return
    try:
        fmt = detect_format(filename, reader.head)
    except UnsupportedFormatError as exc:
        yield ParseError(None, None, str(exc))
        return
    if fmt == "csv" and record_format not in ("auto", "prompts"):
        yield ParseError(None, None, f"the {record_format} format is read from JSON Lines, a JSON array or Parquet, not CSV")
        return
    if pairwise is None:
        pairwise = min_responses == max_responses == 2
    validator = RecordValidator(
        min_responses, max_responses, pairwise=pairwise, record_format=record_format, filename=filename, limits=limits
    )
    anything = False
    try:
        for item in parse_file(fmt, reader, validator):
            anything = True
            if isinstance(item, ParsedPrompt) and (too_long := limits.problems(item)):
                yield from too_long
            else:
                yield item
    except StopParsing as stop:  # a file-level problem found at a record (e.g. the wrong project kind)
        yield stop.error
        return
    if not anything:
        yield ParseError(None, None, "the file contains no prompts")


class ErrorCollector:
    """Consumes `parse_batch` once: passes prompts on in chunks while the file is clean, keeps the first
    `max_errors` errors and counts them all.

        collector = ErrorCollector()
        for chunk in collector.chunks(parse_batch(...), size=500):
            write(chunk)                       # inside the import transaction
        if not collector.ok:
            rollback(); show(collector.messages())
    """

    def __init__(self, max_errors: int = 50) -> None:
        self.max_errors = max_errors
        self.errors: list[ParseError] = []
        self.total_errors = 0
        self.prompt_count = 0  # valid prompts, also those after the first error

    @property
    def ok(self) -> bool:
        return self.total_errors == 0

    @property
    def truncated(self) -> bool:
        return self.total_errors > len(self.errors)

    def add(self, error: ParseError) -> None:
        self.total_errors += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(error)

    def chunks(self, items: Iterable[ParsedPrompt | ParseError], size: int = 500) -> Iterator[list[ParsedPrompt]]:
        """After the first error no more chunks come (the import is doomed), but the rest is still read for errors."""
        chunk: list[ParsedPrompt] = []
        for item in items:
            if isinstance(item, ParseError):
                self.add(item)
                chunk = []
                continue
            self.prompt_count += 1
            if self.ok:
                chunk.append(item)
                if len(chunk) == size:
                    yield chunk
                    chunk = []
        if self.ok and chunk:
            yield chunk

    def messages(self) -> list[str]:
        lines = [shorten(str(error), 1000) for error in self.errors]  # a message may quote a (long) key or value
        if self.truncated:
            lines.append(f"… and {self.total_errors - len(self.errors)} more errors; first {len(self.errors)} shown")
        return lines
