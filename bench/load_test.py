"""The load test: simulated annotators against `preflab serve` with several workers, then the
database is checked: every accepted submit stored exactly once, no prompt over its overlap, no
annotator with two labels on one prompt, zero 5xx. Prints throughput and p50/p95/p99 latency;
exits 1 on any violation. 127.0.0.1 only; bounded in annotators and time.

    .venv/bin/python bench/load_test.py [--sqlite] [--postgres URL] [--annotators 32] [--seconds 60]

Without --sqlite/--postgres it runs on a temporary SQLite file. The PostgreSQL database is emptied.
The small version of this runs in CI as tests/load/test_load_small.py.
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.annotators import check_database, run_annotators, setup_project
from bench.common import fresh_database, serve, sqlite_url


def load_test(url: str, *, annotators: int, seconds: float, workers: int, prompts: int, overlap: int) -> list[str]:
    fresh_database(url)
    setup = setup_project(url, annotators=annotators, prompts=prompts, overlap=overlap)
    with serve(url, workers=workers) as server:
        stats = run_annotators(server.port, setup.project_id, setup.tokens, seconds=seconds)
    print(stats.summary())
    problems = check_database(setup, stats)
    if not stats.accepted:
        problems.append("no submit was accepted")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description="Load test with database checks (exit 1 on any violation).")
    parser.add_argument("--sqlite", action="store_true", help="run on a temporary SQLite file")
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL database (it is emptied)")
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--prompts", type=int, default=5_000)
    parser.add_argument("--overlap", type=int, default=3)
    args = parser.parse_args()
    targets = ([("SQLite", sqlite_url())] if args.sqlite or not args.postgres else []) + (
        [("PostgreSQL", args.postgres)] if args.postgres else []
    )
    failed = False
    for name, url in targets:
        print(
            f"== {name}: {args.annotators} annotators, {args.seconds:g} s, {args.workers} workers, "
            f"{args.prompts:,} prompts x overlap {args.overlap}"
        )
        problems = load_test(
            url,
            annotators=args.annotators,
            seconds=args.seconds,
            workers=args.workers,
            prompts=args.prompts,
            overlap=args.overlap,
        )
        for problem in problems:
            print(f"  VIOLATION: {problem}")
        print(
            "  database checks: "
            + (
                "FAILED"
                if problems
                else "every accepted submit stored once, no prompt over its overlap, no annotator twice on a prompt, no 5xx"
            )
        )
        failed |= bool(problems)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
