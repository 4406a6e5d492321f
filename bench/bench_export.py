"""Benchmark: export ~1,000,000 pairs from the database to JSONL and Parquet.

    .venv/bin/python bench/bench_export.py [--prompts 100000] [--database-url postgresql://...]

Generates a ranking project (N prompts x 4 responses; 75 % of prompts ranked by 2 annotators, the
rest by 1, ~8 % ties: about 10 pairs per prompt), bulk-inserts it with SQLAlchemy core executemany into
a temporary SQLite database (or into --database-url, then deletes it again), and exports it with the
app's own code (`app.export.service.write_file`), each export in a fresh child process so its peak RSS
is the export's alone. Also prints a floor: serialising the same rows from memory with orjson.
Target: >= 100,000 pairs/s to JSONL on one core, peak memory independent of the size (run two sizes).
Rates are per CPU second of the exporting process (the machine is shared, so wall time varies); the
database server's own time (PostgreSQL) is not in the CPU figure but is in the wall figure.
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SECRET_KEY", "bench-export-secret-at-least-32-characters")

from sqlalchemy import delete, func, insert, select  # noqa: E402

from app import migrate  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import Database  # noqa: E402
from app.models import Annotation, Assignment, Project, Prompt, Response, User  # noqa: E402

K = 4
BATCH = 10_000


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(database: Database, n_prompts: int, seed: int = 0) -> tuple[int, int]:
    """Insert the project in batches (never all rows in memory). Returns (project id, expected pairs)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    with database.engine.begin() as conn:
        stamp = f"bench-export-{time.time_ns()}"
        user_ids = [
            conn.execute(
                insert(User).values(email=f"{stamp}-{i}@example.org", role="annotator", name=f"rater {i}").returning(User.id)
            ).scalar_one()
            for i in range(3)
        ]
        project_id = conn.execute(
            insert(Project).values(name=stamp, kind="ranking", overlap=2, allow_ties=True).returning(Project.id)
        ).scalar_one()
        # Explicit ids let one executemany insert prompts, responses, assignments and annotations that point
        # at each other (an empty database, or ids above the current maximum).
        next_id = {
            t: (conn.execute(select(func.max(t.id))).scalar() or 0) + 1 for t in (Prompt, Response, Assignment, Annotation)
        }
        pairs = 0
        for start in range(0, n_prompts, BATCH):
            prompts, responses, assignments, annotations = [], [], [], []
            for q in range(start, min(start + BATCH, n_prompts)):
                pid = next_id[Prompt] + q
                prompts.append(
                    {
                        "id": pid,
                        "project_id": project_id,
                        "external_id": f"q-{q}",
                        "is_chat": False,
                        "messages": [
                            {
                                "role": "user",
                                "content": f"Question {q}: how would you explain topic {q % 977} to a new colleague?",
                            }
                        ],
                        "target_overlap": 2,
                        "completed_count": 0,
                        "active_count": 0,
                    }
                )
                ids = [next_id[Response] + q * K + j for j in range(K)]
                responses += [
                    {
                        "id": rid,
                        "prompt_id": pid,
                        "position": j,
                        "model": f"model-{j}",
                        "text": f"Answer {j} to question {q}. "
                        + "It depends on the context; here is a careful explanation. " * (1 + (q + j) % 4),
                    }
                    for j, rid in enumerate(ids)
                ]
                for a in rng.sample(user_ids, 2 if rng.random() < 0.75 else 1):
                    order = ids[:]
                    rng.shuffle(order)
                    tiers = [[order[0]]]
                    for rid in order[1:]:
                        (tiers[-1].append(rid) if rng.random() < 0.08 else tiers.append([rid]))
                    pairs += sum(len(x) * len(y) for i, x in enumerate(tiers) for y in tiers[i + 1 :])
                    aid = next_id[Assignment] + len(assignments) + start * 2
                    assignments.append(
                        {
                            "id": aid,
                            "project_id": project_id,
                            "prompt_id": pid,
                            "annotator_id": a,
                            "status": "done",
                            "leased_at": now,
                            "lease_expires_at": now + timedelta(minutes=30),
                            "shown_order": ids,
                        }
                    )
                    annotations.append(
                        {
                            "id": next_id[Annotation] + len(annotations) + start * 2,
                            "assignment_id": aid,
                            "project_id": project_id,
                            "prompt_id": pid,
                            "annotator_id": a,
                            "kind": "ranking",
                            "ranking": tiers,
                            "shown_order": ids,
                            "time_spent_ms": rng.randint(5_000, 90_000),
                            "none_acceptable": False,
                            "created_at": now,
                        }
                    )
            for table, rows in ((Prompt, prompts), (Response, responses), (Assignment, assignments), (Annotation, annotations)):
                conn.execute(insert(table), rows)
    return project_id, pairs


def export_rows(*, session, project: Project, options, limit: int | None = None) -> list[dict]:
    """The export's rows (dicts, one per pair) in memory, for the floor: the stream yields one list per prompt."""
    from itertools import chain, islice

    from app.export.rows import iter_rows

    _, groups = iter_rows(session=session, project=project, options=options, split_column=False)
    return list(islice(chain.from_iterable(rows for _, rows in groups), limit))


def run_export(url: str, project_id: int, file_type: str, out: str, floor: int) -> dict:
    """In the child process: one export, timed, and the orjson floor on the first `floor` rows."""
    import orjson

    from app.export import service
    from app.export.options import ExportOptions

    database = Database(Settings(DATABASE_URL=url))
    options = ExportOptions(format="trl", file_type=file_type)
    before = rss_mib()
    with database.read_sessionmaker() as session, session.begin():
        project = session.get(Project, project_id)
        start, cpu = time.perf_counter(), time.process_time()
        counts = service.write_file(session=session, project=project, options=options, path=Path(out))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    result = {
        "rows": counts["rows"]["train"],
        "seconds": seconds,
        "cpu": cpu,
        "rss_before": before,
        "rss_peak": rss_mib(),
        "bytes": Path(out).stat().st_size,
    }
    if floor:
        with database.read_sessionmaker() as session, session.begin():
            sample = export_rows(session=session, project=session.get(Project, project_id), options=options, limit=floor)
        with open(os.devnull, "wb") as sink:
            start = time.process_time()
            for row in sample:
                sink.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
            result["floor_rows_per_s"] = len(sample) / (time.process_time() - start)
    database.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument(
        "--database-url", help="an empty or scratch PostgreSQL/SQLite database (default: a temporary SQLite file)"
    )
    parser.add_argument("--child", nargs=5, metavar=("URL", "PROJECT", "FILE_TYPE", "OUT", "FLOOR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, project_id, file_type, out, floor = args.child
        print(json.dumps(run_export(url, int(project_id), file_type, out, int(floor))))
        return

    tmp = Path(tempfile.mkdtemp(prefix="preflab-bench-export-"))
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    database = Database(Settings(DATABASE_URL=url))
    migrate.upgrade(database.engine)
    start = time.perf_counter()
    project_id, pairs = generate(database, args.prompts)
    print(
        f"database: {database.engine.dialect.name}; generated {args.prompts:,} prompts x {K} responses, "
        f"{pairs:,} pairs in {time.perf_counter() - start:.1f} s"
    )
    try:
        for file_type in ("jsonl", "parquet"):
            out = tmp / f"export.{file_type}"
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    url,
                    str(project_id),
                    file_type,
                    str(out),
                    "200000" if file_type == "jsonl" else "0",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(child.stdout.strip().splitlines()[-1])
            assert r["rows"] == pairs, (r["rows"], pairs)
            print(
                f"  {file_type:<8} {r['rows']:,} pairs: {r['cpu']:.2f} s CPU = {r['rows'] / r['cpu']:,.0f} pairs/s "
                f"({r['seconds']:.2f} s wall = {r['rows'] / r['seconds']:,.0f} pairs/s); {r['bytes'] / 2**20:,.0f} MiB file; "
                f"peak RSS {r['rss_peak']:.0f} MiB ({r['rss_before']:.0f} MiB before the export)"
            )
            if "floor_rows_per_s" in r:
                print(f"  floor    orjson.dumps of the same rows from memory: {r['floor_rows_per_s']:,.0f} rows/s (CPU)")
            out.unlink()
    finally:
        if args.database_url:  # leave a shared database as it was
            with database.engine.begin() as conn:
                conn.execute(delete(Project).where(Project.id == project_id))
                conn.execute(delete(User).where(User.email.like("bench-export-%")))
        database.dispose()


if __name__ == "__main__":
    main()
