"""Exports: a file, a dataset folder (data per split + README.md card + manifest.json), or a JSONL stream.

Callers pass a session of their own: a streamed HTTP body is read after the request's session has closed.
"""

import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.agreement import service as agreement_service
from app.errors import Unprocessable
from app.export import card
from app.export.availability import check, check_applicable
from app.export.formats import columns
from app.export.options import FILTERS, ExportOptions
from app.export.rows import (
    RowBuilder,
    annotator_emails,
    export_source,
    iter_groups,
    iter_rows,
    iter_skip_groups,
    labelled_prompt_ids,
    skip_rows,
    skipped_prompt_ids,
)
from app.export.schemas import ExportPreview, FilterStep
from app.export.writers import EXTENSIONS, JsonlWriter, RowWriter, open_writer, sha256_of, stream_jsonl
from app.models import Project

Progress = Callable[[int], None] | None  # called with the rows written so far, once per prompt
PARQUET_KEY = "preflab"  # the Parquet footer key holding the export's manifest (options, counts) as JSON
SKIPS_FILE = "skips.jsonl"  # every dataset folder: the project's skipped tasks, beside the data (not a split)


def preview(*, session: Session, project: Project, options: ExportOptions) -> ExportPreview:
    """How many rows each filter removes, before downloading: the export's own row building (RowBuilder), run
    with the filters turned on one at a time, in the order it applies them, over one read of the labels."""
    check_applicable(session=session, project=project, options=options)
    asked = [name for name, off in FILTERS.items() if getattr(options, name) != off]
    stages = [options.model_copy(update=dict(FILTERS))]  # every filter off
    for i in range(len(asked)):
        stages.append(options.model_copy(update={n: off for n, off in FILTERS.items() if n not in asked[: i + 1]}))
    emails = annotator_emails(session, project) if options.format == "raw" else {}
    builders = [RowBuilder(options=o, project=project, emails=emails, split_column=False) for o in stages]
    counts = [0] * len(stages)
    for group in iter_groups(
        session=session, project=project, raw=options.format == "raw", source=export_source(session, project, options)
    ):
        for i, builder in enumerate(builders):
            counts[i] += len(builder.rows(group)[1])
    steps = [
        FilterStep(filter=name, value=getattr(options, name), removed=counts[i] - counts[i + 1], remaining=counts[i + 1])
        for i, name in enumerate(asked)
    ]
    return ExportPreview(
        unit="pairs" if options.is_pairs else "rows",
        before_filters=counts[0],
        steps=steps,
        rows=counts[-1],
        prompts=sum(builders[-1].prompts.values()),
    )


def count_prompts(*, session: Session, project: Project, options: ExportOptions | None = None) -> int:
    """Prompts with at least one label (or reference label): the total of a progress bar."""
    if options is not None and options.format == "skips":
        ids = skipped_prompt_ids(project)
    else:
        ids = labelled_prompt_ids(project, source=export_source(session, project, options) if options else None)
    return session.scalar(select(func.count()).select_from(ids.subquery())) or 0


def filename(project: Project, options: ExportOptions) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{project.name}-{options.format}")
    return stem + (".zip" if options.folder else EXTENSIONS[options.file_type])


def stream_file(*, session: Session, project: Project, options: ExportOptions) -> Iterator[bytes]:
    """A single JSONL (or gzip JSONL) file as bytes, written while the rows are read: nothing is buffered."""
    check(project=project, options=options)
    _, rows = iter_rows(session=session, project=project, options=options, split_column=len(options.splits) > 1)
    return stream_jsonl((batch for _, batch in rows), compress=options.file_type == "jsonl.gz")


def manifest_head(project: Project, options: ExportOptions) -> dict[str, Any]:
    """What every export records about itself: when, from which project, with which options (the filters)."""
    return {
        "preflab_export": 2,
        "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "project": {"id": project.id, "name": project.name, "kind": project.kind},
        "options": options.model_dump(),
    }


def write_file(
    *, session: Session, project: Project, options: ExportOptions, path: Path, progress: Progress = None
) -> dict[str, Any]:
    """One data file (all splits, with a `split` column when there is a test split). Returns its counts.
    A Parquet file carries its manifest (options and counts) in its footer, under PARQUET_KEY."""
    check(project=project, options=options)
    split_column = len(options.splits) > 1
    writer = open_writer(options.file_type, path, columns=columns(options, split_column=split_column))
    head = manifest_head(project, options)
    builder = _drain(session, project, options, {split: writer for split in options.splits}, progress, split_column, head)
    return _counts(builder)


def write_sidecar(*, project: Project, options: ExportOptions, counts: dict[str, Any], path: Path) -> Path:
    """`<file>.manifest.json` beside a single data file: its options, counts, bytes and sha256 (a JSONL file
    has no place of its own for them)."""
    manifest = manifest_head(project, options) | {
        "counts": counts,
        "files": [{"path": path.name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}],
    }
    target = path.with_name(path.name + ".manifest.json")
    target.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    return target


def write_folder(
    *, session: Session, project: Project, options: ExportOptions, directory: Path, progress: Progress = None
) -> dict[str, Any]:
    """A dataset folder that `datasets.load_dataset(directory)` loads as it is. Returns the manifest."""
    check(project=project, options=options)
    if directory.exists() and any(directory.iterdir()):
        # Files of an earlier export would sit beside the new ones, unlisted in card and manifest.
        raise Unprocessable(f"out: {directory} is not empty; give a new or empty directory for the dataset folder")
    (directory / "data").mkdir(parents=True, exist_ok=True)
    cols = columns(options, split_column=False)
    data_files = {split: f"data/{split}{EXTENSIONS[options.file_type]}" for split in options.splits}
    writers = {split: open_writer(options.file_type, directory / path, columns=cols) for split, path in data_files.items()}
    head = manifest_head(project, options)
    builder = _drain(session, project, options, writers, progress, False, head)
    manifest = head | {"counts": _counts(builder), "files": []}
    # `datasets` refuses a split without rows: an empty split gets no file and no entry in the card.
    rows = manifest["counts"]["rows"]
    data_files = {s: path for s, path in data_files.items() if rows[s]} or {"train": data_files["train"]}
    for split in writers:
        if split not in data_files:
            (directory / f"data/{split}{EXTENSIONS[options.file_type]}").unlink()
    manifest["counts"]["skips"] = write_skips(session=session, project=project, path=directory / SKIPS_FILE)
    report = agreement_service.project_report(session=session, project=project)
    (directory / "README.md").write_text(
        card.render(manifest=manifest, cols=cols, data_files=data_files, report=report), encoding="utf-8"
    )
    for path in [*data_files.values(), SKIPS_FILE, "README.md"]:
        file = directory / path
        file_split = next((s for s, p in data_files.items() if p == path), None)  # None: skips.jsonl, README.md
        manifest["files"].append(
            {
                "path": path,
                "split": file_split,
                "rows": manifest["counts"]["skips"] if path == SKIPS_FILE else manifest["counts"]["rows"].get(file_split),
                "bytes": file.stat().st_size,
                "sha256": sha256_of(file),
            }
        )
    (directory / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n")
    return manifest


def write_skips(*, session: Session, project: Project, path: Path) -> int:
    """Every skip of the project as JSONL (the skips format's rows, no filter, no split). Returns the count."""
    emails = annotator_emails(session, project)
    with path.open("wb") as sink:
        writer = JsonlWriter(sink, compress=False)
        for group in iter_skip_groups(session=session, project=project):
            writer.write_many(skip_rows(group, emails))
        writer.close()
    return writer.rows


def zip_folder(directory: Path, target: Path) -> None:
    """The folder as one zip; Parquet is already compressed, so it is stored, JSONL deflated."""
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(p for p in directory.rglob("*") if p.is_file()):
            method = zipfile.ZIP_STORED if file.suffix in (".parquet", ".gz") else zipfile.ZIP_DEFLATED
            archive.write(file, file.relative_to(directory).as_posix(), compress_type=method)


def stream_built(
    *, session_factory: Callable[[], Session], project_id: int, options: ExportOptions, chunk: int = 1 << 20
) -> Iterator[bytes]:
    """Parquet files and folders need the whole file before its first byte can go out (a Parquet footer,
    a zip directory): build it in a temporary directory, then stream it and delete it."""
    with tempfile.TemporaryDirectory(prefix="preflab-export-") as tmp:
        with session_factory() as session, session.begin():
            project = session.get_one(Project, project_id)  # gone since the request: NoResultFound
            if options.folder:
                write_folder(session=session, project=project, options=options, directory=Path(tmp) / "folder")
                target = Path(tmp) / "export.zip"
                zip_folder(Path(tmp) / "folder", target)
            else:
                target = Path(tmp) / filename(project, options)
                write_file(session=session, project=project, options=options, path=target)
        with target.open("rb") as f:
            while block := f.read(chunk):
                yield block


def _drain(
    session: Session,
    project: Project,
    options: ExportOptions,
    writers: dict[str, RowWriter],
    progress: Progress,
    split_column: bool,
    head: dict[str, Any],
) -> RowBuilder:
    written, done = 0, False

    def tick() -> None:
        if progress:
            progress(written)

    builder, rows = iter_rows(session=session, project=project, options=options, split_column=split_column, on_group=tick)
    try:
        for split, batch in rows:
            writers[split].write_many(batch)
            written += len(batch)
        done = True
    finally:
        metadata = {PARQUET_KEY: orjson.dumps(head | {"counts": _counts(builder)}).decode()} if done else None
        for writer in {id(w): w for w in writers.values()}.values():
            writer.close(metadata)
    tick()
    return builder


def _counts(builder: RowBuilder) -> dict[str, Any]:
    return {
        "rows": dict(builder.split_rows),
        "prompts": dict(builder.prompts),
        "annotators": len(builder.annotators),
        "dropped": dict(builder.dropped),
    }
