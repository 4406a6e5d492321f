"""Benchmark: the reward-model report over 1,000,000 scored decisions, end to end from the database.

    .venv/bin/python bench/rm_eval_bench.py [--database URL] [--prompts N]

Seeds a ranking project (bench.common.seed_model_rankings: N prompts x 4 responses, 3 annotators each, 18 decisions a
prompt, so the default 55,556 prompts give 1,000,008 decisions) and one reward model scoring every response, then
times three ways of asking for the report: what the API route computes (`app.rewardmodels.service.report`: load the
labels, derive the decisions and the Borda consensus, load the scores, every figure) in this process; the API call
itself over HTTP against `preflab serve` (first call of a fresh server: nothing cached, the report computed, serialised
and sent); and the whole `preflab rm-eval` command (process start and migration check included). Target: under 5 s.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    api_token,
    call,
    cli_seconds,
    load_average,
    raw_transaction,
    seed_model_rankings,
    serve,
    session_for,
    sqlite_url,
)


def seed(url: str, prompts: int) -> int:
    from sqlalchemy import text

    from app.models import RewardModel

    project_id = seed_model_rankings(url, prompts)
    with session_for(url) as session:
        rm = RewardModel(project_id=project_id, name="rm-bench", filename="bench.jsonl", scored=0)
        session.add(rm)
        session.flush()
        rm_id = rm.id
    with raw_transaction(url) as connection:  # scores from the id, some equal
        connection.execute(
            text(
                "INSERT INTO reward_model_scores (reward_model_id, response_id, score) "
                "SELECT :rm, id, ((id * 37) % 101) / 10.0 FROM responses"
            ),
            {"rm": rm_id},
        )
        connection.execute(
            text("UPDATE reward_models SET scored = (SELECT count(*) FROM reward_model_scores) WHERE id = :rm"), {"rm": rm_id}
        )
    return project_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None, help="Database URL (default: a new SQLite file)")
    parser.add_argument("--prompts", type=int, default=55_556)
    args = parser.parse_args()
    url = args.database or sqlite_url()
    project_id = seed(url, args.prompts)

    from app.models import Project
    from app.rewardmodels import service

    with session_for(url) as session:
        project = session.get_one(Project, project_id)
        start, cpu = time.perf_counter(), time.process_time()
        report = service.report(session=session, project=project, name="rm-bench")
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    token = api_token(url, role="researcher")
    with serve(url) as server:
        start = time.perf_counter()
        status, body, size = call(server.port, token, "GET", f"/api/projects/{project_id}/reward-models/rm-bench")
        http_seconds = time.perf_counter() - start
    if status != 200:
        raise SystemExit(f"the API call failed: {status} {body[:500]!r}")
    cli, cli_cpu = cli_seconds(url, "rm-eval", "bench", "rm-bench")
    database = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(
        f"reward-model report ({database}): {report.scored:,} scored decisions of {report.decisions:,}, {report.scored_responses:,} scores"
    )
    print(f"  service (what the API route does)     {seconds:.2f} s ({cpu:.2f} s CPU)")
    print(f"  GET the report's API, fresh server    {http_seconds:.2f} s ({size:,} bytes)")
    print(f"  `preflab rm-eval` (whole CLI)         {cli:.2f} s ({cli_cpu:.2f} s CPU)")
    print(f"  load average at the end               {load_average()}")


if __name__ == "__main__":
    main()
