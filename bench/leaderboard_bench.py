"""Benchmark: the model leaderboard, end to end from the database: 100,000 decisions between 10 models, with the
200-resample bootstrap.

    .venv/bin/python bench/leaderboard_bench.py [--database URL] [--prompts N]

Seeds a ranking project (N prompts x 4 responses from 10 models, 3 annotators each: 18 decisions a prompt, so the
default 5,556 prompts give 100,008 decisions) with the driver's bulk path, then times what the API route does
(`app.leaderboard.service.leaderboard`: load the labels, derive the decisions, fit, bootstrap, count) and the whole
`preflab leaderboard` command (process start and migration check included). Target: under 5 s.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cli_seconds, load_average, seed_model_rankings, session_for, sqlite_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None, help="Database URL (default: a new SQLite file)")
    parser.add_argument("--prompts", type=int, default=5_556)
    args = parser.parse_args()
    url = args.database or sqlite_url()
    project_id = seed_model_rankings(url, args.prompts)

    from app.leaderboard import service
    from app.leaderboard.schemas import LeaderboardOptions
    from app.models import Project

    with session_for(url) as session:
        project = session.get_one(Project, project_id)
        start, cpu = time.perf_counter(), time.process_time()
        board = service.leaderboard(session=session, project=project, options=LeaderboardOptions())
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    cli, cli_cpu = cli_seconds(url, "leaderboard", "bench")
    database = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(f"leaderboard ({database}): {board.decisions:,} decisions, {len(board.models)} models, {board.prompts:,} prompts")
    print(f"  service (what the API route does)   {seconds:.2f} s ({cpu:.2f} s CPU)")
    print(f"  `preflab leaderboard` (whole CLI)   {cli:.2f} s ({cli_cpu:.2f} s CPU)")
    print(f"  load average at the end             {load_average()}")


if __name__ == "__main__":
    main()
