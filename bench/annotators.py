"""The load driver: N simulated annotators, each with its own API token, looping
GET /api/projects/{id}/next -> POST /api/tasks/{task_id}/annotations (a valid random ranking)
against a running `preflab serve` on 127.0.0.1, for a bounded time.

Used by bench/load_test.py (the load test with its database checks), by the annotate benchmark of
bench/run.py and by tests/load/test_load_small.py (the small version in CI).

    .venv/bin/python bench/annotators.py --annotators 8 --seconds 10 [--postgres URL]
"""

import argparse
import http.client
import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Floor,
    bulk_write,
    cpu_seconds,
    fresh_database,
    percentile,
    serve,
    session_for,
    sqlite_url,
    synthetic_items,
)

SEED_CHUNK = 100_000
SETTLE_SECONDS = 4.0  # after the start: the workers' warm-up (app.main) runs a second after it, then settles


@dataclass
class Setup:
    url: str
    project_id: int
    tokens: list[str]
    annotator_ids: list[int]


def setup_project(
    url: str, *, annotators: int, prompts: int, overlap: int = 3, k: int = 4, prompt_chars: int = 200, response_chars: int = 500
) -> Setup:
    """A ranking project with `prompts` prompts (bulk-seeded), and `annotators` members with API tokens."""
    from app.models import ProjectKind
    from app.projects import service as projects
    from app.projects.schemas import ProjectCreate
    from app.users import service as users
    from app.users.schemas import UserCreate

    tokens, ids = [], []
    with session_for(url) as session:
        suffix = f"{time.time_ns()}"
        project = projects.create_project(
            session=session,
            data=ProjectCreate(name=f"load {suffix}", kind=ProjectKind.ranking, overlap=overlap),
            created_by=None,
        )
        for i in range(annotators):
            user = users.create_user(session=session, data=UserCreate(email=f"load{i}-{suffix}@example.org", role="annotator"))
            projects.add_member(session=session, project=project, user=user)
            _, token = users.create_api_token(session=session, user=user, name="load")
            tokens.append(token)
            ids.append(user.id)
        project_id = project.id
    items = synthetic_items(prompts, k=k, prompt_chars=prompt_chars, response_chars=response_chars)
    done = 0
    while done < prompts:
        chunk = [next(items) for _ in range(min(SEED_CHUNK, prompts - done))]
        bulk_write(url, chunk, project_id=project_id, overlap=overlap)
        done += len(chunk)
    return Setup(url, project_id, tokens, ids)


@dataclass
class Accepted:
    annotation_id: int
    task_id: int
    prompt_id: int
    annotator: int  # index into Setup.tokens


@dataclass
class Stats:
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"next": [], "submit": []})  # seconds
    statuses: Counter = field(default_factory=Counter)  # ("next", 200) -> count
    errors: list[str] = field(default_factory=list)  # unexpected answers and connection failures
    accepted: list[Accepted] = field(default_factory=list)
    duplicates: int = 0  # 200 on submit: the label was already stored (must not happen here)
    exhausted: int = 0  # annotators that got 204 (nothing left for them)

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)

    @property
    def throughput(self) -> float:
        return len(self.accepted) / self.seconds if self.seconds else 0.0

    def merge(self, other: "Stats") -> None:
        for call, values in other.latencies.items():
            self.latencies[call].extend(values)
        self.statuses.update(other.statuses)
        self.errors.extend(other.errors)
        self.accepted.extend(other.accepted)
        self.duplicates += other.duplicates
        self.exhausted += other.exhausted

    def latency_ms(self, call: str, q: float) -> float:
        return percentile(self.latencies[call], q) * 1000

    def summary(self) -> str:
        lines = [f"  {len(self.accepted):,} annotations accepted in {self.seconds:.1f} s: {self.throughput:,.0f} annotations/s"]
        for call, values in self.latencies.items():
            lines.append(
                f"  {call:<7} {len(values):>7,} calls  p50 {self.latency_ms(call, 50):7.1f} ms  "
                f"p95 {self.latency_ms(call, 95):7.1f} ms  p99 {self.latency_ms(call, 99):7.1f} ms"
            )
        lines.append(
            f"  5xx {self.server_errors}, other errors {len(self.errors)}, duplicates {self.duplicates}, "
            f"annotators out of work {self.exhausted}"
        )
        lines += [f"    {e}" for e in self.errors[:5]]
        return "\n".join(lines)


def _annotator(port: int, project_id: int, token: str, index: int, deadline: float, seed: int, stats: Stats, api: str) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(kind: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        nonlocal conn
        start = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            stats.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return 0, b""
        stats.latencies[kind].append(time.perf_counter() - start)
        stats.statuses[(kind, response.status)] += 1
        return response.status, data

    try:
        while time.perf_counter() < deadline:
            status, data = call("next", "GET", f"{api}/projects/{project_id}/next")
            if status == 204:
                stats.exhausted += 1
                return
            if status != 200:
                if status:
                    stats.errors.append(f"next: {status} {data[:200]!r}")
                continue
            task = orjson.loads(data)
            ids = [r["id"] for r in task["responses"]]
            rng.shuffle(ids)
            body = orjson.dumps({"ranking": [[rid] for rid in ids]})
            status, data = call("submit", "POST", f"{api}/tasks/{task['task_id']}/annotations", body)
            if status == 201:
                stored = orjson.loads(data)
                stats.accepted.append(Accepted(stored["id"], stored["task_id"], stored["prompt_id"], index))
            elif status == 200:
                stats.duplicates += 1
            elif status:
                stats.errors.append(f"submit: {status} {data[:200]!r}")
    finally:
        conn.close()


def run_annotators(port: int, project_id: int, tokens: list[str], *, seconds: float, seed: int = 0, api: str = "/api") -> Stats:
    """All annotators at once, each in its own thread with its own keep-alive connection, for `seconds`. `api`: the
    routes' prefix (bench/stack_floor.py points it at stand-ins with the same signatures)."""
    per_thread = [Stats() for _ in tokens]
    start = time.perf_counter()
    deadline = start + seconds
    threads = [
        threading.Thread(target=_annotator, args=(port, project_id, token, i, deadline, seed * 1000 + i, per_thread[i], api))
        for i, token in enumerate(tokens)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    total = Stats(seconds=time.perf_counter() - start)
    for stats in per_thread:
        total.merge(stats)
    if any(t.is_alive() for t in threads):
        total.errors.append("an annotator thread did not finish in time")
    return total


@dataclass
class AgainstFloor:
    """Annotators looping on a server, and that server's floor (`Floor`) measured just before and just after them:
    on these shared machines the floor itself moves by 2x from one minute to the next, so a ratio is only meaningful
    against the floor of the same minutes."""

    stats: Stats
    cpu_ms: float  # server CPU per accepted label
    before: Floor
    after: Floor

    @property
    def ceiling(self) -> float:
        """Labels/s if a label cost two of the floor's requests."""
        return (self.before.rate + self.after.rate) / 4

    @property
    def empty_pair_ms(self) -> float:
        """The mean CPU of a floor request, times two."""
        return self.before.cpu_ms + self.after.cpu_ms

    def __str__(self) -> str:
        stats = self.stats
        return (
            f"{stats.throughput:,.0f} annotations/s (**{stats.throughput / self.ceiling:.0%} of the ceiling**, "
            f"{self.ceiling:,.0f}); next p50/p95/p99 {stats.latency_ms('next', 50):.0f}/{stats.latency_ms('next', 95):.0f}/"
            f"{stats.latency_ms('next', 99):.0f} ms; submit {stats.latency_ms('submit', 50):.0f}/"
            f"{stats.latency_ms('submit', 95):.0f}/{stats.latency_ms('submit', 99):.0f} ms; "
            f"errors {len(stats.errors) + stats.server_errors}; server CPU {self.cpu_ms:.1f} ms/annotation "
            f"({self.cpu_ms / self.empty_pair_ms:.1f}x two empty requests); floor before / after: {self.before} / {self.after}"
        )


def annotate_against_floor(
    setup: Setup,
    *,
    seconds: float,
    workers: int,
    clients: int,
    app_factory: str | None = None,
    env: dict[str, str] | None = None,
    api: str = "/api",
) -> AgainstFloor:
    """`setup`'s annotators looping for `seconds` on a server of their own, between two floors of `clients` clients
    (half the labels' time each). `app_factory`, `env`, `api`: as for `serve` and `run_annotators`."""
    with serve(setup.url, workers=workers, env=env, app_factory=app_factory) as server:
        time.sleep(SETTLE_SECONDS)
        before = Floor.measure(server.port, server.pid, clients, seconds / 2)
        cpu = cpu_seconds(server.pid)
        stats = run_annotators(server.port, setup.project_id, setup.tokens, seconds=seconds, api=api)
        cpu = cpu_seconds(server.pid) - cpu
        after = Floor.measure(server.port, server.pid, clients, seconds / 2)
    return AgainstFloor(stats, cpu / max(1, len(stats.accepted)) * 1000, before, after)


def check_database(setup: Setup, stats: Stats) -> list[str]:
    """The load test's invariants, counted in the database. Returns the violations (empty: all good)."""
    from sqlalchemy import func, select

    from app.models import Annotation, Assignment, AssignmentStatus, Prompt

    problems = []
    if stats.server_errors:
        problems.append(f"{stats.server_errors} responses with status 5xx")
    if stats.duplicates:
        problems.append(f"{stats.duplicates} submits answered as duplicates (each task was submitted once)")
    with session_for(setup.url) as session:
        rows = session.execute(
            select(Annotation.id, Annotation.assignment_id, Annotation.prompt_id, Annotation.annotator_id).where(
                Annotation.project_id == setup.project_id
            )
        ).all()
        stored = {row.id: row for row in rows}
        accepted_ids = [a.annotation_id for a in stats.accepted]
        if len(accepted_ids) != len(set(accepted_ids)):
            problems.append("the server returned the same annotation id for two accepted submits")
        missing = [a for a in stats.accepted if a.annotation_id not in stored]
        if missing:
            problems.append(f"{len(missing)} accepted submits are not in the database, e.g. {missing[:3]}")
        unexpected = set(stored) - set(accepted_ids)
        if unexpected:
            problems.append(f"{len(unexpected)} annotations in the database were never accepted by the client")
        wrong = [
            a
            for a in stats.accepted
            if a.annotation_id in stored
            and (
                stored[a.annotation_id].assignment_id != a.task_id
                or stored[a.annotation_id].prompt_id != a.prompt_id
                or stored[a.annotation_id].annotator_id != setup.annotator_ids[a.annotator]
            )
        ]
        if wrong:
            problems.append(f"{len(wrong)} stored annotations differ from what was accepted (task, prompt or annotator)")
        per_task = Counter(row.assignment_id for row in rows)
        if any(n > 1 for n in per_task.values()):
            problems.append("a task has more than one stored annotation")
        twice = session.execute(
            select(Annotation.prompt_id, Annotation.annotator_id, func.count())
            .where(Annotation.project_id == setup.project_id)
            .group_by(Annotation.prompt_id, Annotation.annotator_id)
            .having(func.count() > 1)
        ).all()
        if twice:
            problems.append(f"{len(twice)} (prompt, annotator) pairs with two or more labels, e.g. {twice[:3]}")
        counted = (
            select(Annotation.prompt_id, func.count().label("n"))
            .where(Annotation.project_id == setup.project_id)
            .group_by(Annotation.prompt_id)
            .subquery()
        )
        over = session.execute(
            select(Prompt.id, Prompt.completed_count, Prompt.target_overlap, counted.c.n)
            .join(counted, counted.c.prompt_id == Prompt.id)
            .where(
                ((counted.c.n > Prompt.target_overlap) & ~Prompt.is_gold)  # gold prompts are for everyone
                | ((Prompt.completed_count > Prompt.target_overlap) & ~Prompt.is_gold)
                | (Prompt.completed_count != counted.c.n)
            )
        ).all()
        if over:
            problems.append(
                f"{len(over)} prompts over their overlap or with a wrong completed_count "
                f"(id, completed_count, target, real count), e.g. {over[:3]}"
            )
        held = (
            select(Assignment.prompt_id, func.count().label("n"))
            .where(
                Assignment.project_id == setup.project_id, Assignment.status.in_([AssignmentStatus.leased, AssignmentStatus.done])
            )
            .group_by(Assignment.prompt_id)
            .subquery()
        )
        drift = session.scalar(
            select(func.count())
            .select_from(Prompt)
            .outerjoin(held, held.c.prompt_id == Prompt.id)
            .where(Prompt.project_id == setup.project_id, Prompt.active_count != func.coalesce(held.c.n, 0))
        )
        if drift:
            problems.append(f"{drift} prompts whose active_count differs from their leased + done assignments")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description="Run simulated annotators against a fresh `preflab serve`.")
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--postgres", metavar="URL", help="PostgreSQL database to use (emptied); default: a temporary SQLite file"
    )
    args = parser.parse_args()
    url = args.postgres or sqlite_url()
    fresh_database(url)
    setup = setup_project(url, annotators=args.annotators, prompts=args.prompts)
    with serve(url, workers=args.workers) as server:
        stats = run_annotators(server.port, setup.project_id, setup.tokens, seconds=args.seconds)
    print(stats.summary())
    problems = check_database(setup, stats)
    print("\n".join(f"VIOLATION: {p}" for p in problems) or "database checks: all good")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
