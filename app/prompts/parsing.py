"""Streaming, validating parser for uploaded prompt batches (JSON Lines, JSON array, CSV, Parquet).

Pure: bytes in, `ParsedPrompt` / `ParseError` out, in file order; no database, no FastAPI. Imports are all-or-nothing,
so the parser reports every problem it finds instead of stopping at the first one; `ErrorCollector` caps the list.

Format (`detect_format`): `.csv` is CSV; a file starting with Parquet's magic bytes `PAR1` is Parquet, read one
record batch at a time (its rows are records like JSON objects; it needs a seekable stream). For anything else the first non-blank byte decides when it can: `[` is a JSON
array, `{` is JSON Lines (many tools write JSON Lines as `.json`, e.g. Hugging Face `Dataset.to_json`). Otherwise the
extension decides (`.jsonl`/`.ndjson`, `.json`), and an unknown extension is an error naming the accepted ones.

Locations: JSON Lines "line 4"; JSON array "item 3 (line 12)" (the line the item starts on); CSV "row 5", the record
number counting the header as row 1, plus "(line 7)" when a quoted multi-line cell shifted the physical line;
Parquet "row 5", counting data rows from 1.
Fields: JSON paths index from 0 like jq and Pydantic ("responses[0].text"); CSV errors name the column ("response_2").

Limits: a CSV cell holds at most `csv.field_size_limit()` characters (131,072 by default; we don't change that
process-wide setting). Text that PostgreSQL can't store (NUL, unpaired surrogates; app.text) is rejected, also inside
metadata, and so are NaN/Infinity (jsonb rejects them). `ImportLimits` (the MAX_* settings) bounds nesting, checked
while parsing (a JSON array item stops being read at the limit; Parquet by its schema), the length of prompts,
responses, model names and metadata, and a Parquet file's decompressed size.
"""

import codecs
import csv
import difflib
import hashlib
import io
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

import ijson
import orjson

from app.text import shorten, unstorable

Format = Literal["jsonl", "json", "csv", "parquet"]

_EXTENSION_FORMATS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
}
_PARQUET_MAGIC = b"PAR1"
_PARQUET_BATCH = 1000  # rows per record batch read from a Parquet file
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_EXTENSION_FORMATS)

TOP_LEVEL_KEYS = ("id", "prompt", "responses", "metadata")
RESPONSE_KEYS = ("text", "model", "metadata")
MESSAGE_KEYS = ("role", "content")
ROLES = ("system", "user", "assistant")
MAX_ID_LENGTH = 200

_CHUNK = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_MISSING = object()  # a key absent from the object, told apart from an explicit null
_CSV_NUMBERED = re.compile(r"(response|model)_([1-9][0-9]*)")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
PREFERENCE_FORMATS = ("trl", "trl-chat", "hh", "ultrafeedback")
RECORD_FORMATS = ("auto", "prompts", *PREFERENCE_FORMATS)


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
    # An imported preference (app/prompts/preferences.py): tiers of indices into `responses`, best first.
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
        problems = _Problems(prompt.location)
        prompt_chars = sum(len(m["content"]) for m in prompt.messages)
        _check_length(problems, "prompt", prompt_chars, self.prompt_chars, "MAX_PROMPT_CHARS")
        _check_metadata_size(problems, "metadata", prompt.metadata, self.metadata_bytes)
        for i, response in enumerate(prompt.responses):
            _check_length(problems, f"responses[{i}].text", len(response.text), self.response_chars, "MAX_RESPONSE_CHARS")
            if response.model is not None:
                limit = self.model_name_chars
                _check_length(problems, f"responses[{i}].model", len(response.model), limit, "MAX_MODEL_NAME_CHARS")
            _check_metadata_size(problems, f"responses[{i}].metadata", response.metadata, self.metadata_bytes)
        return problems


def _check_length(problems: "_Problems", field: str, length: int, limit: int, setting: str) -> None:
    if length > limit:
        problems.add(field, f"is {length:,} characters long; the limit is {limit:,} ({setting})")


def _check_metadata_size(problems: "_Problems", field: str, metadata: dict | None, limit: int) -> None:
    if metadata is not None and (size := len(orjson.dumps(metadata))) > limit:
        problems.add(field, f"is {size:,} bytes as JSON; the limit is {limit:,} (MAX_METADATA_KB)")


def _deep_message(limit: int) -> str:
    return f"nested deeper than {limit} (MAX_METADATA_DEPTH)"


def _field_path(path: Sequence[str | int]) -> str:
    """A record's field as errors name it, from its top-level key down to the first "metadata" key, if any."""
    end = path.index("metadata") + 1 if "metadata" in path else 1
    field: str | None = None
    for part in path[:end]:
        field = f"{field or ''}[{part}]" if isinstance(part, int) else _key_path(field, part)
    return field or ""


def _too_deep(record: object, limit: int) -> str | None:
    """The field of `record` nested deeper than `limit` levels below the record's top level, or None.
    Iterative: a record's depth is bounded by the parser (orjson: 1,024), not by Python's recursion limit."""
    items = record.items() if isinstance(record, dict) else enumerate(record) if isinstance(record, list) else ()
    pending = [(value, 1, (key,)) for key, value in items if isinstance(value, dict | list)]
    while pending:
        value, depth, path = pending.pop()
        if depth > limit:
            return _field_path(path)
        children = value.items() if isinstance(value, dict) else enumerate(value)
        pending.extend((child, depth + 1, (*path, key)) for key, child in children if isinstance(child, dict | list))
    return None


class _DepthGuard:
    """`_too_deep` for a record arriving as ijson `basic_parse` events, so a deep record is refused before it
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
                return _field_path([key for _, key in self.open[:-1]])
        return None


class UnsupportedFormatError(ValueError):
    pass


def detect_format(filename: str, first_bytes: bytes) -> Format:
    """Pick the parser from the extension and the first bytes (rules in the module docstring)."""
    if first_bytes.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnsupportedFormatError("the file is UTF-16 encoded; save it as UTF-8")
    extension = os.path.splitext(filename)[1].lower()
    if extension == ".csv":
        return "csv"
    if first_bytes.startswith(_PARQUET_MAGIC):
        return "parquet"
    first = first_bytes.removeprefix(_BOM).lstrip()[:1]
    if first == b"[":
        return "json"
    if first == b"{":
        return "jsonl"
    if extension in _EXTENSION_FORMATS:
        return _EXTENSION_FORMATS[extension]
    raise UnsupportedFormatError(
        f'cannot tell the format of "{filename}"; upload a file ending in {", ".join(SUPPORTED_EXTENSIONS)}'
    )


def content_digest(messages: list[dict[str, str]], texts: list[str]) -> str:
    """sha256 hex of a prompt's content; ids of prompts and preference pairs uploaded without one derive from it."""
    return hashlib.sha256(orjson.dumps([messages, texts])).hexdigest()


def parse_batch(
    stream: BinaryIO,
    *,
    filename: str,
    min_responses: int,
    max_responses: int,
    record_format: str = "auto",
    limits: ImportLimits | None = None,
) -> Iterator[ParsedPrompt | ParseError]:
    """Yields prompts and errors in file order. Only `stream.read(n)` is used; memory stays at about one line.

    `record_format` (see app/prompts/preferences.py): "auto" reads a record with chosen/rejected as a preference
    pair and any other as a prompt; "prompts" reads only prompts; "trl", "trl-chat", "hh", "ultrafeedback" read
    only preference records of that format. `limits`: ImportLimits, by default from the settings."""
    limits = limits or ImportLimits.from_settings()
    if not 1 <= min_responses <= max_responses:
        raise ValueError(f"bad response bounds {min_responses}..{max_responses}")
    if record_format not in RECORD_FORMATS:
        yield ParseError(None, None, f"unknown format {json.dumps(record_format)}; choose from {', '.join(RECORD_FORMATS)}")
        return
    reader = _ByteReader(stream)
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
    parse = {"jsonl": _parse_jsonl, "json": _parse_json_array, "csv": _parse_csv, "parquet": _parse_parquet}[fmt]
    validator = _Validator(min_responses, max_responses, record_format=record_format, filename=filename, limits=limits)
    anything = False
    try:
        for item in parse(reader, validator):
            anything = True
            if isinstance(item, ParsedPrompt) and (too_long := limits.problems(item)):
                yield from too_long
            else:
                yield item
    except _StopParsing as stop:  # a file-level problem found at a record (e.g. the wrong project kind)
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


# --- reading bytes ------------------------------------------------------------------------------------------


class _ByteReader:
    """Line reader over anything with read(n) (raw streams too), buffering one line or `limit` bytes at most."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._eof = False
        # Read far enough to see a BOM and the first non-blank byte, for sniffing.
        while len(self._buf) < _CHUNK and (len(self._buf) < 3 or not self._buf.removeprefix(_BOM).strip()):
            if not self._fill():
                break
        if self._buf.startswith(_BOM):
            del self._buf[:3]
        self.head = bytes(self._buf)

    def _fill(self) -> bool:
        chunk = b"" if self._eof else self._stream.read(_CHUNK)
        self._eof = not chunk
        self._buf += chunk
        return bool(chunk)

    def readline(self, limit: int | None = None) -> bytes:
        searched = 0
        while (end := self._buf.find(b"\n", searched)) < 0:
            if limit is not None and len(self._buf) >= limit:
                break
            searched = len(self._buf)
            if not self._fill():
                break
        end = len(self._buf) if end < 0 else end + 1
        if limit is not None:
            end = min(end, limit)
        line = bytes(self._buf[:end])
        del self._buf[:end]
        return line

    def lines(self) -> Iterator[tuple[int, bytes]]:
        return enumerate(iter(self.readline, b""), start=1)

    @property
    def stream(self) -> BinaryIO:
        return self._stream

    def rewind(self) -> None:
        """Back to the start of the stream (formats that need random access, like Parquet)."""
        self._stream.seek(0)
        self._buf.clear()
        self._eof = False


def _utf8_error(line_no: int, exc: UnicodeDecodeError, chars_before: int = 0) -> ParseError:
    position = chars_before + len(exc.object[: exc.start].decode("utf-8")) + 1
    byte = exc.object[exc.start]
    return ParseError(
        f"line {line_no}", None, f"not valid UTF-8 (byte 0x{byte:02x} at position {position}); save the file as UTF-8"
    )


class _StopParsing(Exception):
    def __init__(self, error: ParseError) -> None:
        self.error = error


class _JsonFeed:
    """File object for ijson that hands over at most one line per read, so `line` is the line of every event ijson
    yields (it parses each read before asking for more); validates UTF-8 on the way, which ijson would only garble."""

    def __init__(self, reader: _ByteReader) -> None:
        self._reader = reader
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._next_line = 1
        self._chars = 0  # characters of the current line already handed over, for error positions
        self._error: ParseError | None = None
        self.line = 1

    def read(self, size: int = -1) -> bytes:
        if self._error:
            raise _StopParsing(self._error)
        if size == 0:  # ijson probes read(0) for bytes vs str
            return b""
        self.line = self._next_line
        piece = self._reader.readline(size if size > 0 else None)
        try:
            text = self._decoder.decode(piece, final=not piece)
        except UnicodeDecodeError as exc:
            self._error = _utf8_error(self.line, exc, self._chars)
            valid = exc.start - (len(exc.object) - len(piece))  # bytes of `piece` before the bad one
            if valid <= 0:
                raise _StopParsing(self._error) from None
            return piece[:valid]  # let ijson finish what precedes it, so errors stay in file order
        if piece.endswith(b"\n"):
            self._next_line += 1
            self._chars = 0
        else:
            self._chars += len(text)
        return piece


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


# A run of 19 ASCII digits, found by mapping digits to NUL (which valid JSON text never holds raw) and looking for
# 19 NULs: 3 µs a line where a regex search took 20-70 µs, ten times orjson's parse (a fifth of an import's CPU).
_DIGITS_TO_NUL = bytes.maketrans(b"0123456789", b"\0" * 10)
_LONG_DIGIT_RUN = b"\0" * 19


def _has_long_digit_run(text: str) -> bool:
    return _LONG_DIGIT_RUN in text.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_NUL)


class _TooDeep(ValueError):
    """JSON nested deeper than the JSON parser goes; the caller names the field (`_DepthGuard`)."""


def _deep_field(raw: bytes, limit: int) -> str | None:
    """The field of a JSON record (one line) nested deeper than `limit`, found without building the record."""
    guard = _DepthGuard(limit)
    try:
        for event, value in ijson.basic_parse(io.BytesIO(raw)):
            if (field := guard.event(event, value)) is not None:
                return field
    except ijson.JSONError:
        pass
    return None


def _loads(text: str) -> object:
    """JSON without NaN/Infinity; the ValueError carries a message for the user.

    orjson first (strict, and several times faster on the import's hot path), except on text with a
    19-digit run, where orjson would turn an integer past 64 bits into a float and lose digits; what it
    refuses goes to the standard library, which either accepts it (lone surrogate escapes, long
    integers: the field checks then judge them) or says precisely what is wrong and where."""
    if not _has_long_digit_run(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if str(exc).startswith("depth limit exceeded"):  # 1,024 levels, past any MAX_METADATA_DEPTH
                raise _TooDeep from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        message = exc.msg.removesuffix(" at")  # "Invalid control character at"
        raise ValueError(f"not valid JSON: {message} at position {exc.pos + 1}") from None
    except RecursionError:
        raise _TooDeep from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None


# --- formats ------------------------------------------------------------------------------------------------


def _parse_jsonl(reader: _ByteReader, validator: "_Validator") -> Iterator[ParsedPrompt | ParseError]:
    for line_no, raw in reader.lines():
        location = f"line {line_no}"
        try:
            text = raw.decode("utf-8").rstrip("\r\n")  # so error positions stay within the line
        except UnicodeDecodeError as exc:
            yield _utf8_error(line_no, exc)
            continue
        if not text or text.isspace():
            continue
        try:
            obj = _loads(text)
        except _TooDeep:
            limit = validator.limits.metadata_depth
            yield ParseError(location, _deep_field(raw, limit), _deep_message(limit))
            continue
        except ValueError as exc:
            yield ParseError(location, None, str(exc))
            continue
        yield from validator.json_record(obj, location)


def _parse_json_array(reader: _ByteReader, validator: "_Validator") -> Iterator[ParsedPrompt | ParseError]:
    if reader.head.lstrip()[:1] != b"[":
        yield ParseError(None, None, 'a .json file must hold a JSON array of prompt objects, starting with "["')
        return
    feed = _JsonFeed(reader)
    limit = validator.limits.metadata_depth
    index = 0
    location = ""
    builder: ijson.ObjectBuilder | None = None
    guard = _DepthGuard(limit)
    try:
        # basic_parse: ijson's prefixes ("item.metadata.a.a…") would cost time and memory growing with the depth.
        for event, value in itertools.islice(ijson.basic_parse(feed, use_float=True), 1, None):  # after the "["
            if builder is None:
                if event == "end_array":  # the file's array closes
                    continue
                index += 1
                location = f"item {index} (line {feed.line})"
                if event not in ("start_map", "start_array"):
                    yield from validator.json_record(value, location)
                    continue
                builder = ijson.ObjectBuilder()
            if (field := guard.event(event, value)) is not None:
                yield ParseError(location, field, _deep_message(limit))
                return  # the file is refused; the rest of the item would be as costly to read
            builder.event(event, value)
            if not guard.open:  # the item's closing bracket
                yield from validator.json_record(builder.value, location)
                builder = None
    except ijson.JSONError as exc:
        yield ParseError(f"line {feed.line}", None, f"not valid JSON: {str(exc).splitlines()[0]}")
    except _StopParsing as stop:
        yield stop.error


def _parse_parquet(reader: _ByteReader, validator: "_Validator") -> Iterator[ParsedPrompt | ParseError]:
    import pyarrow as pa  # imported here: heavy, and only Parquet uploads need it
    import pyarrow.parquet as pq

    limit = validator.limits.parquet_bytes
    too_large = f"holds more than {limit:,} bytes of data once decompressed (MAX_PARQUET_UNCOMPRESSED_MB)"
    row = 0
    try:
        reader.rewind()  # Parquet's index is at the end of the file
        file = pq.ParquetFile(reader.stream)
        if schema_errors := _parquet_schema_errors(file.schema_arrow, validator.limits.metadata_depth):
            yield from schema_errors
            return
        groups = (file.metadata.row_group(i) for i in range(file.metadata.num_row_groups))
        if sum(group.total_byte_size for group in groups) > limit:  # declared by the writer: refused before reading
            yield ParseError(None, None, f"the file {too_large}")
            return
        decoded = 0  # and counted while reading, in case the declared sizes lie
        for batch in file.iter_batches(batch_size=_PARQUET_BATCH):
            decoded += batch.nbytes
            if decoded > limit:
                yield ParseError(f"row {row + 1}", None, f"the file {too_large}")
                return
            for record in _parquet_records(batch, row):
                row += 1
                if isinstance(record, ParseError):
                    yield record
                else:
                    yield from validator.json_record(record, f"row {row}")
    except (OSError, pa.ArrowException) as exc:  # io.UnsupportedOperation (not seekable) is an OSError
        yield ParseError(f"row {row + 1}" if row else None, None, f"not a readable Parquet file: {exc}")


def _parquet_records(batch, first_row: int) -> list[dict | ParseError]:
    """The rows of a record batch as dicts; a row holding text that is not UTF-8 becomes an error naming its column."""
    try:
        return batch.to_pylist()
    except UnicodeDecodeError:
        pass
    records: list[dict | ParseError] = []
    for i in range(batch.num_rows):
        one = batch.slice(i, 1)
        try:
            records.extend(one.to_pylist())
        except UnicodeDecodeError:
            column = next(name for name, values in zip(one.schema.names, one.columns) if _not_utf8(values))
            records.append(ParseError(f"row {first_row + i + 1}", column, "holds text that is not valid UTF-8"))
    return records


def _not_utf8(values) -> bool:
    try:
        values.to_pylist()
    except UnicodeDecodeError:
        return True
    return False


def _parquet_schema_errors(schema, depth_limit: int) -> list[ParseError]:
    """Columns nested deeper than MAX_METADATA_DEPTH, and structs repeating a field name (a record can't hold
    both), found in the schema before any data is read."""
    import pyarrow as pa

    errors: list[ParseError] = []
    if repeated := sorted({name for name in schema.names if schema.names.count(name) > 1}):
        errors.append(ParseError(None, repeated[0], "is the name of more than one column"))
    for top in schema:
        pending: list[tuple[object, int, tuple[str, ...]]] = [(top.type, 1, (top.name,))]
        deep = False
        while pending:
            arrow_type, depth, path = pending.pop()
            children = [arrow_type.field(i) for i in range(arrow_type.num_fields)]
            if not children:
                continue
            if depth > depth_limit:
                deep = True
                continue
            names = [child.name for child in children]
            is_struct = pa.types.is_struct(arrow_type)
            if is_struct and (twice := sorted({n for n in names if names.count(n) > 1})):
                errors.append(ParseError(None, _field_path(path), f"repeats the field name {json.dumps(twice[0])}"))
            pending.extend((child.type, depth + 1, (*path, child.name) if is_struct else path) for child in children)
        if deep:
            errors.append(ParseError(None, top.name, _deep_message(depth_limit)))
    return errors


def _parse_csv(reader: _ByteReader, validator: "_Validator") -> Iterator[ParsedPrompt | ParseError]:
    bad_lines: list[ParseError] = []

    def text_lines() -> Iterator[str]:
        for line_no, raw in reader.lines():
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad_lines.append(_utf8_error(line_no, exc))
                yield raw.decode("utf-8", "replace")  # keeps the CSV structure readable for the rows after it

    lines = text_lines()
    first = next(lines, "")
    delimiter = max(",;\t", key=first.count)  # Excel writes ";" in many locales; ties go to ","
    rows = csv.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
    columns: _CsvColumns | None = None
    last_line = 0
    for record in itertools.count(1):
        start = last_line + 1
        location = f"row {record}" if start == record else f"row {record} (line {start})"
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:  # the reader can't resynchronise after broken quoting
            yield ParseError(location, None, f"malformed CSV: {exc}")
            return
        last_line = rows.line_num
        if bad_lines:  # its text is garbled; the encoding error is what to fix
            yield from bad_lines
            bad_lines.clear()
            if columns is None:
                return
        elif columns is None:
            columns, errors = _CsvColumns.from_header(row, location, validator.min_responses)
            if errors:
                yield from errors
                return
        elif any(cell.strip() for cell in row):
            yield from validator.csv_record(row, columns, location)


@dataclass(slots=True)
class _CsvColumns:
    width: int
    prompt: int
    id: int | None
    metadata: int | None
    responses: list[int]  # index of response_1, response_2, …
    models: dict[int, int]  # response number → index of model_N
    unnamed: list[int]  # blank header cells; spreadsheets often add them

    @classmethod
    def from_header(cls, row: list[str], location: str, min_responses: int) -> tuple["_CsvColumns | None", list[ParseError]]:
        problems = _Problems(location)
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
                suggestion = _did_you_mean(name, ("id", "prompt", "metadata", f"response_{n}", f"model_{n}"))
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


# --- validation ---------------------------------------------------------------------------------------------


class _Problems(list[ParseError]):
    """The errors of one record, all at the same location."""

    def __init__(self, location: str) -> None:
        super().__init__()
        self.location = location

    def add(self, field: str | None, message: str) -> None:
        self.append(ParseError(self.location, field, message))


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {str: "a string", list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _did_you_mean(name: str, candidates: Sequence[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1)
    return f' (did you mean "{match[0]}"?)' if match else ""


def _key_path(field: str | None, key: str) -> str:
    if not _PLAIN_KEY.fullmatch(key):  # quote keys with dots, spaces or control characters
        return f"{field or ''}[{json.dumps(key)}]"
    return f"{field}.{key}" if field else key


def _unknown_keys(obj: dict, allowed: Sequence[str], field: str | None, problems: _Problems) -> None:
    for key in obj:
        if key not in allowed:
            suggestion = _did_you_mean(key, allowed)
            problems.add(_key_path(field, key), f"unknown key; allowed keys: {', '.join(allowed)}{suggestion}")


def _text(value: object, field: str, problems: _Problems) -> str | None:
    if value is _MISSING:
        problems.add(field, "is required")
    elif not isinstance(value, str):
        problems.add(field, f"must be a string, got {_kind(value)}")
    elif not value or value.isspace():  # blank; unlike strip(), no copy of a long text
        problems.add(field, "must not be empty")
    elif problem := unstorable(value):
        problems.add(field, problem)
    else:
        return value
    return None


def _optional_text(value: object, field: str, problems: _Problems) -> str | None:
    blank = value is None or value is _MISSING or (isinstance(value, str) and not value.strip())
    return None if blank else _text(value, field, problems)


def _json_problems(value: object, field: str) -> Iterator[tuple[str, str]]:
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
            yield from _json_problems(item, _key_path(field, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_problems(item, f"{field}[{i}]")


def _metadata(value: object, field: str, problems: _Problems) -> dict | None:
    if value is None or value is _MISSING:
        return None
    if not isinstance(value, dict):
        problems.add(field, f"must be an object, got {_kind(value)}")
        return None
    found = list(_json_problems(value, field))
    for path, problem in found:
        problems.add(path, problem)
    return None if found else value


def _chat(value: list, problems: _Problems, name: str = "prompt", *, ends_with_user: bool = True) -> list[dict[str, str]] | None:
    """A list of {role, content} messages; `name` is the field errors name ("prompt", "chosen", …)."""
    if not value:
        problems.add(name, "must not be an empty list")
        return None
    before = len(problems)
    messages = []
    for i, message in enumerate(value):
        field = f"{name}[{i}]"
        if not isinstance(message, dict):
            problems.add(field, f'must be an object with "role" and "content", got {_kind(message)}')
            continue
        _unknown_keys(message, MESSAGE_KEYS, field, problems)
        role = message.get("role", _MISSING)
        if role is _MISSING:
            problems.add(f"{field}.role", "is required")
        elif role not in ROLES:
            shown = json.dumps(role) if isinstance(role, str) else _kind(role)
            problems.add(f"{field}.role", f"must be one of {', '.join(ROLES)}, got {shown}")
        content = _text(message.get("content", _MISSING), f"{field}.content", problems)
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


class _Validator:
    """Checks records of one file; remembers ids to catch duplicates."""

    def __init__(
        self,
        min_responses: int,
        max_responses: int,
        *,
        record_format: str = "auto",
        filename: str = "",
        limits: ImportLimits | None = None,
    ) -> None:
        from app.prompts.preferences import PreferenceReader  # it builds on this module's helpers

        self.limits = limits or ImportLimits.from_settings()
        self.min_responses = min_responses
        self.max_responses = max_responses
        self.record_format = record_format
        self._seen_ids: dict[str, str] = {}
        self._preferences = PreferenceReader(self, record_format, filename)

    def json_record(self, obj: object, location: str) -> Iterator[ParsedPrompt | ParseError]:
        if (deep := _too_deep(obj, self.limits.metadata_depth)) is not None:  # before anything walks it recursively
            return iter([ParseError(location, deep, _deep_message(self.limits.metadata_depth))])
        if self.record_format != "prompts" and (self.record_format != "auto" or self._preferences.is_preference(obj)):
            return self._preferences.record(obj, location)
        problems = _Problems(location)
        if not isinstance(obj, dict):
            problems.add(None, f"must be a JSON object, got {_kind(obj)}")
            return iter(problems)
        _unknown_keys(obj, TOP_LEVEL_KEYS, None, problems)
        external_id = self._id(obj.get("id"), problems)
        prompt = obj.get("prompt", _MISSING)
        if isinstance(prompt, list):
            messages, is_chat = _chat(prompt, problems), True
        elif isinstance(prompt, str) or prompt is _MISSING:
            text = _text(prompt, "prompt", problems)
            messages, is_chat = [{"role": "user", "content": text}] if text else None, False
        else:
            problems.add("prompt", f"must be a string or a list of messages, got {_kind(prompt)}")
            messages, is_chat = None, False
        responses = self._json_responses(obj.get("responses", _MISSING), problems)
        metadata = _metadata(obj.get("metadata"), "metadata", problems)
        return self._result(problems, external_id, messages, is_chat, responses, metadata)

    def csv_record(self, row: list[str], columns: _CsvColumns, location: str) -> Iterator[ParsedPrompt | ParseError]:
        problems = _Problems(location)
        if any(extra.strip() for extra in row[columns.width :]):
            problems.add(None, f"has {len(row)} cells but the header has {columns.width} columns")
            return iter(problems)

        def cell(i: int | None) -> str:  # short rows: trailing cells count as empty
            return row[i] if i is not None and i < len(row) else ""

        for i in columns.unnamed:
            if cell(i).strip():
                problems.add(None, f"column {i + 1} has a value but no header")
        raw_id = cell(columns.id)
        external_id = self._id(raw_id if raw_id.strip() else None, problems)
        text = _text(cell(columns.prompt), "prompt", problems)
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
            response_text = _text(value, f"response_{k}", problems)
            response_model = _optional_text(model, f"model_{k}", problems)
            if response_text is not None:
                responses.append(ParsedResponse(response_text, response_model, None))
        self._check_count(count, None, problems)
        metadata = None
        if (raw_metadata := cell(columns.metadata)).strip():
            depth = self.limits.metadata_depth
            try:
                value = _loads(raw_metadata)
            except _TooDeep:
                problems.add("metadata", _deep_message(depth))
            except ValueError as exc:
                problems.add("metadata", str(exc))
            else:
                if (deep := _too_deep({"metadata": value}, depth)) is not None:
                    problems.add(deep, _deep_message(depth))
                else:
                    metadata = _metadata(value, "metadata", problems)
        messages = [{"role": "user", "content": text}] if text else None
        return self._result(problems, external_id, messages, False, responses, metadata)

    def _id(self, value: object, problems: _Problems) -> str | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        elif not isinstance(value, str):
            problems.add("id", f"must be a string or an integer, got {_kind(value)}")
            return None
        if (external_id := _text(value, "id", problems)) is None:
            return None
        if len(external_id) > MAX_ID_LENGTH:
            problems.add("id", f"must be at most {MAX_ID_LENGTH} characters, got {len(external_id)}")
            return None
        if first := self._seen_ids.get(external_id):
            problems.add("id", f"duplicate id {json.dumps(external_id)}, first seen on {first}")
            return None
        self._seen_ids[external_id] = problems.location
        return external_id

    def _json_responses(self, value: object, problems: _Problems) -> list[ParsedResponse]:
        if value is _MISSING:
            problems.add("responses", "is required")
            return []
        if not isinstance(value, list):
            problems.add("responses", f"must be an array, got {_kind(value)}")
            return []
        self._check_count(len(value), "responses", problems)
        responses = []
        for i, item in enumerate(value):
            field = f"responses[{i}]"
            if isinstance(item, str):
                text, model, metadata = _text(item, field, problems), None, None
            elif isinstance(item, dict):
                _unknown_keys(item, RESPONSE_KEYS, field, problems)
                text = _text(item.get("text", _MISSING), f"{field}.text", problems)
                model = _optional_text(item.get("model"), f"{field}.model", problems)
                metadata = _metadata(item.get("metadata"), f"{field}.metadata", problems)
            else:
                problems.add(field, f'must be a string or an object with "text", got {_kind(item)}')
                continue
            if text is not None:
                responses.append(ParsedResponse(text, model, metadata))
        return responses

    def _check_count(self, count: int, field: str | None, problems: _Problems) -> None:
        if not self.min_responses <= count <= self.max_responses:
            low, high = self.min_responses, self.max_responses
            expected = f"exactly {low}" if low == high else f"{low} to {high}"
            problems.add(field, f"expected {expected} responses, got {count}")

    @staticmethod
    def _result(
        problems: _Problems,
        external_id: str | None,
        messages: list[dict[str, str]] | None,
        is_chat: bool,
        responses: list[ParsedResponse],
        metadata: dict | None,
    ) -> Iterator[ParsedPrompt | ParseError]:
        if problems or messages is None:
            return iter(problems)
        return iter([ParsedPrompt(problems.location, external_id, messages, is_chat, responses, metadata)])
