"""Benchmark: importing a preference dataset (HH-RLHF-style transcripts) into a pairwise project.

    .venv/bin/python bench/bench_preference_import.py [--records N] [--database-url URL]

Generates N hh records (a two-turn shared conversation, a chosen and a rejected answer) as a JSONL file,
then prints the seconds and records/s of (1) parsing and validating alone and (2) the whole import into a
fresh SQLite database (or DATABASE_URL; it is emptied), and the parser's peak Python allocation for N and
N/10 records: the file is streamed, so the peak should not grow with N.
"""

import argparse
import io
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.prompts.upload import ParseError, parse_batch


def generate(n: int) -> bytes:
    out = io.BytesIO()
    for i in range(n):
        shared = f"\n\nHuman: Question {i}: how do I sort a list in Python?\n\nAssistant: Which order?\n\nHuman: Descending."
        out.write(
            orjson.dumps(
                {
                    "chosen": shared + f"\n\nAssistant: Use sorted(items, reverse=True) ({i}).",
                    "rejected": shared + f"\n\nAssistant: Sorting is hard ({i}).",
                }
            )
            + b"\n"
        )
    return out.getvalue()


def parse_all(data: bytes) -> int:
    count = 0
    for item in parse_batch(io.BytesIO(data), filename="hh.jsonl", min_responses=2, max_responses=2):
        assert not isinstance(item, ParseError), item
        count += 1
    return count


def parser_peak(data: bytes) -> int:
    tracemalloc.start()
    parse_all(data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    n = args.records
    data = generate(n)

    start = time.perf_counter()
    assert parse_all(data) == n
    parse_seconds = time.perf_counter() - start

    tmp = tempfile.mkdtemp(prefix="preflab-bench-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp}/bench.db"
    from app.config import get_settings
    from app.db import Database
    from app.projects.schemas import ProjectCreate
    from app.projects.service import create_project
    from app.prompts.service import import_batch
    from bench.common import fresh_database

    fresh_database(get_settings().DATABASE_URL)
    database = Database(get_settings())
    with database.sessionmaker() as session, session.begin():
        project = create_project(session=session, data=ProjectCreate(name="bench", kind="pairwise"), created_by=None)
    with database.sessionmaker() as session:
        start = time.perf_counter()
        with session.begin():
            result = import_batch(
                session=session, project=session.merge(project), stream=io.BytesIO(data), filename="hh.jsonl", uploaded_by=None
            )
        import_seconds = time.perf_counter() - start  # with the commit
    database.dispose()
    assert result.ok and result.imported == n, result.errors

    small, large = parser_peak(generate(n // 10)), parser_peak(data)
    print(f"preference import: {n:,} hh records ({len(data) / 2**20:.0f} MiB JSONL), {database.engine.dialect.name}")
    print(f"  parse + validate   {parse_seconds:.2f} s  ({n / parse_seconds:,.0f} records/s)")
    print(f"  whole import       {import_seconds:.2f} s  ({n / import_seconds:,.0f} records/s, committed in one transaction)")
    print(f"  parser peak alloc  {large / 2**20:.1f} MiB for {n:,} records, {small / 2**20:.1f} MiB for {n // 10:,}")


if __name__ == "__main__":
    main()
