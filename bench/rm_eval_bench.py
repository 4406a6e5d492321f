"""Benchmark: the reward-model report over 1,000,000 scored decisions, end to end from the database.

    .venv/bin/python bench/rm_eval_bench.py [--database URL] [--prompts N]

Seeds a ranking project (N prompts x 4 responses, 3 annotators each: 18 decisions a prompt, so the default 55,556
prompts give 1,000,008 decisions) with the driver's bulk path and one reward model scoring every response, then
times what the API route does (`app.rewardmodels.service.report`: load the labels, derive the decisions and the
Borda consensus, load the scores, every figure) and the whole `preflab rm-eval` command (process start and
migration check included). Target: under 5 s.
"""

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import bulk_label, bulk_write, fresh_database, raw_transaction, session_for, sqlite_url, synthetic_items

MODELS = 10


def seed(url: str, prompts: int) -> int:
    from sqlalchemy import text

    from app.models import ProjectKind, RewardModel, Role
    from app.projects import service as projects
    from app.projects.schemas import ProjectCreate
    from app.users import service as users
    from app.users.schemas import UserCreate

    fresh_database(url)
    with session_for(url) as session:
        project = projects.create_project(
            session=session, data=ProjectCreate(name="bench", kind=ProjectKind.ranking, overlap=3), created_by=None
        )
        annotators = [
            users.create_user(session=session, data=UserCreate(email=f"a{i}@example.org", role=Role.annotator, password="x" * 12))
            for i in range(3)
        ]
        session.flush()
        project_id, annotator_ids = project.id, [a.id for a in annotators]
    bulk_write(url, list(synthetic_items(prompts, k=4, prompt_chars=40, response_chars=40)), project_id=project_id)
    bulk_label(url, project_id=project_id, annotator_ids=annotator_ids)
    with raw_transaction(url) as connection:  # four different models a prompt; scores from the id, some equal
        connection.execute(text(f"UPDATE responses SET model = 'model-' || ((id * 7) % {MODELS})"))
    with session_for(url) as session:
        rm = RewardModel(project_id=project_id, name="rm-bench", filename="bench.jsonl", scored=0)
        session.add(rm)
        session.flush()
        rm_id = rm.id
    with raw_transaction(url) as connection:
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
    env = os.environ | {"DATABASE_URL": url, "SECRET_KEY": "bench-secret-key-at-least-32-characters-long"}
    start, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "app.cli", "rm-eval", "bench", "rm-bench"], check=True, capture_output=True, env=env)
    cli_seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    cli_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    database = "PostgreSQL" if url.startswith("postgres") else "SQLite"
    print(
        f"reward-model report ({database}): {report.scored:,} scored decisions of {report.decisions:,}, {report.scored_responses:,} scores"
    )
    print(f"  service (what the API route does)   {seconds:.2f} s ({cpu:.2f} s CPU)")
    print(f"  `preflab rm-eval` (whole CLI)       {cli_seconds:.2f} s ({cli_cpu:.2f} s CPU)")
    print(f"  load average at the end             {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min; 2 cores)")


if __name__ == "__main__":
    main()
