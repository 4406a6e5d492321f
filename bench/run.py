"""The benchmark suite: import, annotate, export and start, on SQLite and PostgreSQL, each figure next
to its floor measured in the same run. Generates its own synthetic data; 127.0.0.1 only.

    .venv/bin/python bench/run.py [--sqlite] [--postgres URL] [--quick] [--out BENCHMARKS.md]

Without --sqlite/--postgres: SQLite only. The PostgreSQL database is emptied. --quick uses small sizes
(for iterating); a full run writes BENCHMARKS.md unless --out says otherwise.
"""

import argparse
import dataclasses
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.annotators import Setup, annotate_against_floor, run_annotators, setup_project
from bench.common import (
    ROOT,
    api_token,
    bulk_label,
    bulk_write,
    empty_project,
    fresh_database,
    is_postgres,
    percentile,
    psycopg_dsn,
    rss_mib,
    run_measured,
    serve,
    session_for,
    sqlite_url,
    upload,
    write_jsonl,
)


@dataclass(frozen=True)
class Sizes:
    import_prompts: int
    annotators: tuple[int, ...]
    annotate_seconds: float
    annotate_prompts: int
    queue_small: int
    queue_large: int
    queue_calls: int
    export_prompts: int  # x 3 annotators x 6 pairs (4 responses, strict rankings)


FULL = Sizes(100_000, (1, 8, 32), 20, 20_000, 10_000, 1_000_000, 300, 55_556)
QUICK = Sizes(5_000, (1, 8, 32), 4, 3_000, 10_000, 100_000, 100, 3_000)
WORKERS = max(2, os.cpu_count() or 2)
ANNOTATE_PROMPT_CHARS, ANNOTATE_RESPONSE_CHARS = 200, 500  # the annotate workload's texts (bench/stack_floor.py too)
MARK_BEGIN, MARK_END = "<!-- bench/run.py results -->", "<!-- end of bench/run.py results -->"


@dataclass
class Row:
    bench: str
    what: str
    values: dict[str, str]  # database name -> formatted figure


def bench_import(url: str, jsonl: Path, n: int) -> dict[str, str]:
    items = [orjson.loads(line) for line in jsonl.open("rb")]  # already parsed: the floor excludes parsing
    fresh_database(url)
    floor = bulk_write(url, items, project_id=empty_project(url, "floor"))
    del items
    out = {"floor": f"{floor:.1f} s, {n / floor:,.0f} prompts/s"}

    fresh_database(url)
    empty_project(url, "cli")
    seconds, peak, result = run_measured(
        [sys.executable, "-m", "app.cli", "import", "cli", str(jsonl)], env={"DATABASE_URL": url}
    )
    if result.returncode or f"imported {n}".encode() not in result.stdout:
        raise RuntimeError(f"CLI import failed: {result.stdout[-500:]!r} {result.stderr[-2000:]!r}")
    out["cli"] = f"{seconds:.1f} s, {n / seconds:,.0f} prompts/s, {seconds / floor:.1f}x floor, peak RSS {peak:.0f} MiB"

    fresh_database(url)
    project_id, token = empty_project(url, "http"), api_token(url)
    size_mb = jsonl.stat().st_size // 2**20 + 10
    with serve(url, workers=1, env={"MAX_UPLOAD_MB": str(size_mb)}) as server:
        start = time.perf_counter()
        status, body = upload(server.port, token, project_id, jsonl)
        seconds = time.perf_counter() - start
        peak = rss_mib(server.pid, peak=True)
    if status != 200 or orjson.loads(body)["imported"] != n:
        raise RuntimeError(f"HTTP import failed: {status} {body[:500]!r}")
    out["http"] = f"{seconds:.1f} s, {n / seconds:,.0f} prompts/s, {seconds / floor:.1f}x floor, server peak RSS {peak:.0f} MiB"
    return out


def annotate_setup(url: str, *, annotators: int, prompts: int) -> Setup:
    """An emptied database holding the annotate workload: a project of `prompts` prompts and `annotators` members."""
    fresh_database(url)
    return setup_project(
        url, annotators=annotators, prompts=prompts, prompt_chars=ANNOTATE_PROMPT_CHARS, response_chars=ANNOTATE_RESPONSE_CHARS
    )


def bench_annotate(url: str, sizes: Sizes) -> dict[str, str]:
    """Each number of annotators on a server of its own, against that server's floor (`annotate_against_floor`)."""
    out: dict[str, str] = {}
    for n in sizes.annotators:
        setup = annotate_setup(url, annotators=n, prompts=sizes.annotate_prompts)
        run = annotate_against_floor(setup, seconds=sizes.annotate_seconds, workers=WORKERS, clients=max(sizes.annotators))
        out[f"{n}"] = str(run)
    return out


def _next_latency(url: str, prompts: int, calls: int) -> tuple[float, float, float]:
    """(p50 ms of 'next' for one annotator walking the queue, seconds to seed, seconds to serve)."""
    fresh_database(url)
    start = time.perf_counter()
    setup = setup_project(url, annotators=1, prompts=prompts, prompt_chars=60, response_chars=60)
    if is_postgres(url):
        import psycopg

        with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")  # as after any bulk load: autovacuum would otherwise run during the timing
    seeded = time.perf_counter() - start
    with serve(url, workers=1) as server:
        run_annotators(server.port, setup.project_id, setup.tokens, seconds=1)  # warm up
        stats = run_annotators(server.port, setup.project_id, setup.tokens, seconds=calls / 50)
    return percentile(stats.latencies["next"], 50) * 1000, seeded, percentile(stats.latencies["next"], 95) * 1000


def bench_queue(url: str, sizes: Sizes) -> dict[str, str]:
    small, _, small95 = _next_latency(url, sizes.queue_small, sizes.queue_calls)
    large, seeded, large95 = _next_latency(url, sizes.queue_large, sizes.queue_calls)
    return {
        "small": f"p50 {small:.1f} ms, p95 {small95:.1f} ms",
        "large": f"p50 {large:.1f} ms, p95 {large95:.1f} ms ({large / small:.2f}x; seeded in {seeded:.0f} s)",
    }


def bench_export(url: str, sizes: Sizes) -> dict[str, str]:
    """The TRL JSONL export through the CLI; floor: the same rows serialised from memory with orjson."""
    from sqlalchemy import select

    from app.export.options import ExportOptions
    from app.models import Project
    from bench.bench_export import export_rows

    fresh_database(url)
    setup = setup_project(url, annotators=3, prompts=sizes.export_prompts, prompt_chars=200, response_chars=500)
    bulk_label(url, project_id=setup.project_id, annotator_ids=setup.annotator_ids)
    with session_for(url) as session:
        project = session.scalar(select(Project).where(Project.id == setup.project_id))
        rows = export_rows(session=session, project=project, options=ExportOptions(format="trl"))
    start = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        for row in rows:
            sink.write(orjson.dumps(row) + b"\n")
    floor = time.perf_counter() - start
    n = len(rows)
    del rows
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "out.jsonl"
        seconds, peak, result = run_measured(
            [sys.executable, "-m", "app.cli", "export", str(setup.project_id), "--format", "trl", "--out", str(target)],
            env={"DATABASE_URL": url},
        )
        if result.returncode or f"wrote {n} pairs".encode() not in result.stderr:
            raise RuntimeError(f"export failed: {result.stderr[-2000:]!r}")
    return {
        "floor": f"{floor:.1f} s, {n / floor:,.0f} pairs/s",
        "cli": f"{n:,} pairs: {seconds:.1f} s, {n / seconds:,.0f} pairs/s, {seconds / floor:.1f}x floor, peak RSS {peak:.0f} MiB",
    }


def bench_start(url: str) -> dict[str, str]:
    # An empty database, no tables at all, so the start runs every migration.
    if is_postgres(url):
        import psycopg

        with psycopg.connect(psycopg_dsn(url), autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    else:
        url = sqlite_url()
    with serve(url, workers=1) as server:
        started = server.started_in
        time.sleep(2)
        idle = rss_mib(server.pid)
    return {"start": f"{started:.2f} s to the first answer (migrations included)", "rss": f"{idle:.0f} MiB"}


def machine() -> str:
    free = subprocess.run(["free", "-h"], capture_output=True, text=True).stdout.strip("\n")
    load = os.getloadavg()
    return (
        f"- `nproc`: {os.cpu_count()}\n- Python {platform.python_version()}, {platform.platform()}\n"
        f"- load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)\n"
        f"- `free -h`:\n\n```\n{free}\n```"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Preflab benchmark suite")
    parser.add_argument("--sqlite", action="store_true", help="benchmark on temporary SQLite files")
    parser.add_argument("--postgres", metavar="URL", help="benchmark on this PostgreSQL database (emptied)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for iterating")
    parser.add_argument("--only", nargs="*", choices=["import", "annotate", "queue", "export", "start"], help="run only these")
    parser.add_argument("--out", help="write the Markdown report here (default: BENCHMARKS.md for a full run)")
    parser.add_argument("--annotators", type=int, nargs="+", help="annotate: these numbers of annotators (default 1 8 32)")
    parser.add_argument("--annotate-seconds", type=float, help="annotate: seconds per run (default 20, --quick 4)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    if args.annotators:
        sizes = dataclasses.replace(sizes, annotators=tuple(args.annotators))
    if args.annotate_seconds:
        sizes = dataclasses.replace(sizes, annotate_seconds=args.annotate_seconds)
    databases = ([("SQLite", None)] if args.sqlite or not args.postgres else []) + (
        [("PostgreSQL", args.postgres)] if args.postgres else []
    )
    wanted = set(args.only or ["import", "annotate", "queue", "export", "start"])
    rows: list[Row] = []

    def add(bench: str, what: str, name: str, value: str) -> None:
        row = next((r for r in rows if r.bench == bench and r.what == what), None)
        if row is None:
            row = Row(bench, what, {})
            rows.append(row)
        row.values[name] = value
        print(f"[{name}] {bench} / {what}: {value}", flush=True)

    with tempfile.TemporaryDirectory(prefix="preflab-bench-") as tmp:
        jsonl = None
        if "import" in wanted:
            jsonl = write_jsonl(Path(tmp) / "prompts.jsonl", sizes.import_prompts)
        for name, given in databases:
            url = given or sqlite_url(Path(tempfile.mkdtemp(dir=tmp)))
            if "import" in wanted:
                label = f"import {sizes.import_prompts:,} prompts x 4 responses ({jsonl.stat().st_size / 2**20:.0f} MiB JSONL)"
                for key, value in bench_import(url, jsonl, sizes.import_prompts).items():
                    add(
                        label,
                        {
                            "floor": "floor: driver bulk path (JSON-array INSERT / COPY)",
                            "cli": "`preflab import` (CLI)",
                            "http": "HTTP upload",
                        }[key],
                        name,
                        value,
                    )
            if "annotate" in wanted:
                for key, value in bench_annotate(url, sizes).items():
                    what = (
                        f"{key} annotator{'s' if key != '1' else ''}; floor: {max(sizes.annotators)} clients looping GET /healthz"
                    )
                    add(f"annotate: next -> submit, {sizes.annotate_seconds:g} s, {WORKERS} workers", what, name, value)
            if "queue" in wanted:
                for key, value in bench_queue(url, sizes).items():
                    n = sizes.queue_small if key == "small" else sizes.queue_large
                    add("queue: `next` latency, 1 annotator", f"{n:,} prompts in the project", name, value)
            if "export" in wanted:
                for key, value in bench_export(url, sizes).items():
                    add(
                        f"export: TRL JSONL ({sizes.export_prompts:,} prompts x 3 labels x 6 pairs)",
                        {"floor": "floor: orjson from memory", "cli": "`preflab export --format trl`"}[key],
                        name,
                        value,
                    )
            if "start" in wanted:
                for key, value in bench_start(url).items():
                    add("start: `preflab serve`, empty database", {"start": "cold start", "rss": "idle RSS"}[key], name, value)

    names = [name for name, _ in databases]
    table = ["| benchmark | measure | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    table += [f"| {r.bench} | {r.what} | " + " | ".join(r.values.get(n, "") for n in names) + " |" for r in rows]
    print("\n".join(table))
    out = args.out or (None if args.quick else str(ROOT / "BENCHMARKS.md"))
    if out:
        command = "python bench/run.py " + " ".join(sys.argv[1:])
        results = (
            f"{MARK_BEGIN}\nCommand: `{command}` ({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)\n\n"
            f"Machine:\n\n{machine()}\n\n" + "\n".join(table) + f"\n{MARK_END}"
        )
        path = Path(out)
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if MARK_BEGIN in old and MARK_END in old:  # keep the notes around the generated part
            text = old[: old.index(MARK_BEGIN)] + results + old[old.index(MARK_END) + len(MARK_END) :]
        else:
            text = f"# Benchmarks\n\n{results}\n"
        path.write_text(text, encoding="utf-8")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
