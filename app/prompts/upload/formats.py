"""The file formats of an upload (JSON Lines, JSON array, CSV, Parquet): which one a file is, and a streaming
parser for each that hands every record to the `RecordValidator` and yields what it makes of them, in file order.

File format (`detect_format`): `.csv` is CSV; a file starting with Parquet's magic bytes `PAR1` is Parquet, read one
record batch at a time (its rows are records like JSON objects; it needs a seekable stream). For anything else
the first non-blank byte decides when it can: `[` is a JSON array, `{` is JSON Lines (many tools write JSON Lines
as `.json`, e.g. Hugging Face `Dataset.to_json`). Otherwise the extension decides (`.jsonl`/`.ndjson`, `.json`), and
an unknown extension is an error naming the accepted ones.

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

import csv
import itertools
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import ijson

from app.prompts.upload.fields import DepthGuard, deep_message, field_path
from app.prompts.upload.records import ParsedPrompt, ParseError
from app.prompts.upload.streams import BOM, ByteReader, JsonFeed, StopParsing, TooDeep, deep_field, loads_json, utf8_error
from app.prompts.upload.validation import CsvColumns, RecordValidator

if TYPE_CHECKING:  # pyarrow is imported where Parquet is read: it is heavy
    pass

FileFormat = Literal["jsonl", "json", "csv", "parquet"]

_EXTENSION_FORMATS: dict[str, FileFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
}
_PARQUET_MAGIC = b"PAR1"
_PARQUET_BATCH = 1000  # rows per record batch read from a Parquet file
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_EXTENSION_FORMATS)


class UnsupportedFormatError(ValueError):
    pass


def detect_format(filename: str, first_bytes: bytes) -> FileFormat:
    """Pick the parser from the extension and the first bytes (rules in the module docstring)."""
    if first_bytes.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnsupportedFormatError("the file is UTF-16 encoded; save it as UTF-8")
    extension = os.path.splitext(filename)[1].lower()
    if extension == ".csv":
        return "csv"
    if first_bytes.startswith(_PARQUET_MAGIC):
        return "parquet"
    first = first_bytes.removeprefix(BOM).lstrip()[:1]
    if first == b"[":
        return "json"
    if first == b"{":
        return "jsonl"
    if extension in _EXTENSION_FORMATS:
        return _EXTENSION_FORMATS[extension]
    raise UnsupportedFormatError(
        f'cannot tell the format of "{filename}"; upload a file ending in {", ".join(SUPPORTED_EXTENSIONS)}'
    )


def _parse_jsonl(reader: ByteReader, validator: RecordValidator) -> Iterator[ParsedPrompt | ParseError]:
    for line_no, raw in reader.lines():
        location = f"line {line_no}"
        try:
            text = raw.decode("utf-8").rstrip("\r\n")  # so error positions stay within the line
        except UnicodeDecodeError as exc:
            yield utf8_error(line_no, exc)
            continue
        if not text or text.isspace():
            continue
        try:
            obj = loads_json(text)
        except TooDeep:
            limit = validator.limits.metadata_depth
            yield ParseError(location, deep_field(raw, limit), deep_message(limit))
            continue
        except ValueError as exc:
            yield ParseError(location, None, str(exc))
            continue
        yield from validator.json_record(obj, location)


def _parse_json_array(reader: ByteReader, validator: RecordValidator) -> Iterator[ParsedPrompt | ParseError]:
    if reader.head.lstrip()[:1] != b"[":
        yield ParseError(None, None, 'a .json file must hold a JSON array of prompt objects, starting with "["')
        return
    feed = JsonFeed(reader)
    limit = validator.limits.metadata_depth
    index = 0
    location = ""
    builder: ijson.ObjectBuilder | None = None
    guard = DepthGuard(limit)
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
                yield ParseError(location, field, deep_message(limit))
                return  # the file is refused; the rest of the item would be as costly to read
            builder.event(event, value)
            if not guard.open:  # the item's closing bracket
                yield from validator.json_record(builder.value, location)
                builder = None
    except ijson.JSONError as exc:
        yield ParseError(f"line {feed.line}", None, f"not valid JSON: {str(exc).splitlines()[0]}")
    except StopParsing as stop:
        yield stop.error


def _parse_parquet(reader: ByteReader, validator: RecordValidator) -> Iterator[ParsedPrompt | ParseError]:
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
            column = next(name for name, values in zip(one.schema.names, one.columns, strict=True) if _not_utf8(values))
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
        pending: list[tuple[pa.DataType, int, tuple[str, ...]]] = [(top.type, 1, (top.name,))]
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
                errors.append(ParseError(None, field_path(path), f"repeats the field name {json.dumps(twice[0])}"))
            pending.extend((child.type, depth + 1, (*path, child.name) if is_struct else path) for child in children)
        if deep:
            errors.append(ParseError(None, top.name, deep_message(depth_limit)))
    return errors


def _parse_csv(reader: ByteReader, validator: RecordValidator) -> Iterator[ParsedPrompt | ParseError]:
    bad_lines: list[ParseError] = []

    def text_lines() -> Iterator[str]:
        for line_no, raw in reader.lines():
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad_lines.append(utf8_error(line_no, exc))
                yield raw.decode("utf-8", "replace")  # keeps the CSV structure readable for the rows after it

    lines = text_lines()
    first = next(lines, "")
    delimiter = max(",;\t", key=first.count)  # Excel writes ";" in many locales; ties go to ","
    rows = csv.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
    columns: CsvColumns | None = None
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
            columns, errors = CsvColumns.from_header(row, location, validator.min_responses)
            if errors:
                yield from errors
                return
        elif any(cell.strip() for cell in row):
            yield from validator.csv_record(row, columns, location)


_PARSERS = {"jsonl": _parse_jsonl, "json": _parse_json_array, "csv": _parse_csv, "parquet": _parse_parquet}


def parse_file(fmt: FileFormat, reader: ByteReader, validator: RecordValidator) -> Iterator[ParsedPrompt | ParseError]:
    """The records of a file in format `fmt`, each checked by `validator`, in file order."""
    return _PARSERS[fmt](reader, validator)
