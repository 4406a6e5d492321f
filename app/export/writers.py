"""Row writers: JSONL (optionally gzip) and Parquet. Each takes rows one at a time and holds at most
one Parquet row group in memory, so an export's memory does not grow with its size."""

import gzip
import hashlib
import io
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

import orjson

from app.export.formats import Spec, arrow_schema

ROW_GROUP = 20_000  # rows per Parquet row group: what an export holds in memory (~30 MB of dicts)
EXTENSIONS = {"jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz", "parquet": ".parquet"}
Rows = Sequence[Mapping[str, object]]  # rows of any format (app/export/rows.py): a writer only serialises them


class RowWriter(Protocol):
    rows: int

    def write_many(self, rows: Rows) -> None: ...

    def close(self, metadata: dict[str, str] | None = None) -> None: ...


class JsonlWriter:
    def __init__(self, sink: BinaryIO, *, compress: bool, owns_sink: bool = False) -> None:
        self.sink, self.owns_sink = sink, owns_sink
        # mtime=0 and no file name in the header: the same export gives the same bytes (and sha256).
        self.out: BinaryIO | gzip.GzipFile = (
            gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=6, mtime=0, filename="") if compress else sink
        )
        self.rows = 0

    def write_many(self, rows: Rows) -> None:
        dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        self.out.write(b"".join([dumps(row, option=option) for row in rows]))
        self.rows += len(rows)

    def close(self, metadata: dict[str, str] | None = None) -> None:
        # JSONL has no place for metadata: the CLI writes a sidecar manifest, HTTP a response header.
        if self.out is not self.sink:
            self.out.close()  # writes the gzip trailer; GzipFile leaves the sink open
        if self.owns_sink:
            self.sink.close()


class ParquetWriter:
    def __init__(self, sink: str | Path | BinaryIO, *, columns: list[tuple[str, Spec]], row_group: int = ROW_GROUP) -> None:
        import pyarrow.parquet as pq  # here, not at the top: JSONL exports never load pyarrow (+40 MiB)

        self.schema = arrow_schema(columns)
        self.writer = pq.ParquetWriter(sink, self.schema, compression="zstd")
        self.batch: list[Mapping[str, object]] = []
        self.row_group = row_group
        self.rows = 0

    def write_many(self, rows: Rows) -> None:
        self.batch.extend(rows)
        self.rows += len(rows)
        if len(self.batch) >= self.row_group:
            self._flush()

    def _flush(self) -> None:
        if self.batch:
            import pyarrow as pa  # loaded by __init__ already

            self.writer.write_table(pa.Table.from_pylist(self.batch, schema=self.schema))
            self.batch = []

    def close(self, metadata: dict[str, str] | None = None) -> None:
        """metadata: key-value pairs for the file's footer, known only once every row is written (counts)."""
        self._flush()
        if metadata:
            self.writer.add_key_value_metadata(metadata)
        self.writer.close()


def open_writer(file_type: str, path: Path, *, columns: list[tuple[str, Spec]]) -> RowWriter:
    """A writer on a new file of these columns (app/export/formats.py); closing the writer closes the file."""
    if file_type == "parquet":
        return ParquetWriter(str(path), columns=columns)
    return JsonlWriter(path.open("wb", buffering=1 << 20), compress=file_type == "jsonl.gz", owns_sink=True)


def stream_jsonl(batches: Iterator[Rows], *, compress: bool, chunk: int = 1 << 16) -> Iterator[bytes]:
    """JSONL bytes for an HTTP body, a chunk at a time, written as the rows come."""
    buffer = io.BytesIO()
    writer = JsonlWriter(buffer, compress=compress)
    for rows in batches:
        writer.write_many(rows)
        if buffer.tell() >= chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.close()
    if buffer.tell():
        yield buffer.getvalue()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
