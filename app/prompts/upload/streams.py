"""Reading an upload's bytes: a line reader over any stream, UTF-8 checks that name the line, the feed ijson reads
a JSON array from, and the JSON decoder (NaN/Infinity refused, big integers kept exact)."""

import codecs
import io
import json
from collections.abc import Iterator
from typing import BinaryIO

import ijson
import orjson

from app.prompts.upload.fields import DepthGuard
from app.prompts.upload.records import ParseError

_CHUNK = 64 * 1024
BOM = b"\xef\xbb\xbf"


class ByteReader:
    """Line reader over anything with read(n) (raw streams too), buffering one line or `limit` bytes at most."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buf = bytearray()
        self._eof = False
        # Read far enough to see a BOM and the first non-blank byte, for sniffing.
        while len(self._buf) < _CHUNK and (len(self._buf) < 3 or not self._buf.removeprefix(BOM).strip()):
            if not self._fill():
                break
        if self._buf.startswith(BOM):
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


def utf8_error(line_no: int, exc: UnicodeDecodeError, chars_before: int = 0) -> ParseError:
    position = chars_before + len(exc.object[: exc.start].decode("utf-8")) + 1
    byte = exc.object[exc.start]
    return ParseError(
        f"line {line_no}", None, f"not valid UTF-8 (byte 0x{byte:02x} at position {position}); save the file as UTF-8"
    )


class StopParsing(Exception):
    def __init__(self, error: ParseError) -> None:
        self.error = error


class JsonFeed:
    """File object for ijson that hands over at most one line per read, so `line` is the line of every event ijson
    yields (it parses each read before asking for more); validates UTF-8 on the way, which ijson would only garble."""

    def __init__(self, reader: ByteReader) -> None:
        self._reader = reader
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._next_line = 1
        self._chars = 0  # characters of the current line already handed over, for error positions
        self._error: ParseError | None = None
        self.line = 1

    def read(self, size: int = -1) -> bytes:
        if self._error:
            raise StopParsing(self._error)
        if size == 0:  # ijson probes read(0) for bytes vs str
            return b""
        self.line = self._next_line
        piece = self._reader.readline(size if size > 0 else None)
        try:
            text = self._decoder.decode(piece, final=not piece)
        except UnicodeDecodeError as exc:
            self._error = utf8_error(self.line, exc, self._chars)
            valid = exc.start - (len(exc.object) - len(piece))  # bytes of `piece` before the bad one
            if valid <= 0:
                raise StopParsing(self._error) from None
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


class TooDeep(ValueError):
    """JSON nested deeper than the JSON parser goes; the caller names the field (`DepthGuard`)."""


def deep_field(raw: bytes, limit: int) -> str | None:
    """The field of a JSON record (one line) nested deeper than `limit`, found without building the record."""
    guard = DepthGuard(limit)
    try:
        for event, value in ijson.basic_parse(io.BytesIO(raw)):
            if (field := guard.event(event, value)) is not None:
                return field
    except ijson.JSONError:
        pass
    return None


def loads_json(text: str) -> object:
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
                raise TooDeep from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        message = exc.msg.removesuffix(" at")  # "Invalid control character at"
        raise ValueError(f"not valid JSON: {message} at position {exc.pos + 1}") from None
    except RecursionError:
        raise TooDeep from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
