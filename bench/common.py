"""Shared pieces of the benchmarks and the load test: fresh databases, synthetic data, the database
driver's bulk path (the import floor, and fast seeding), a `preflab serve` subprocess, process memory.

Everything binds to and talks to 127.0.0.1 only.
"""

import contextlib
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WORDS = (
    "the model answer response user prompt data reward label rank better worse clear helpful harmless honest "
    "python list reverse function returns value error example because however therefore explain simple short "
    "long detail step first second finally code test result number string object method class import module"
).split()


# ---------------------------------------------------------------- databases


def sqlite_url(directory: Path | None = None) -> str:
    directory = directory or Path(tempfile.mkdtemp(prefix="preflab-bench-"))
    return f"sqlite:///{directory}/bench.db"


def fresh_database(url: str) -> None:
    """An empty, migrated database at `url` (SQLite: the file is deleted first; PostgreSQL: its public
    schema is dropped first)."""
    from sqlalchemy import text

    from app import migrate
    from app.config import Settings
    from app.db import Database

    if not is_postgres(url):
        for suffix in ("", "-wal", "-shm"):
            Path(sqlite_path(url) + suffix).unlink(missing_ok=True)
    database = Database(Settings(DATABASE_URL=url))
    try:
        if database.engine.dialect.name == "postgresql":
            with database.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        migrate.upgrade(database.engine)
    finally:
        database.dispose()


@contextlib.contextmanager
def session_for(url: str):
    """A committed-on-exit ORM session on `url` (for arranging data and checking it afterwards)."""
    from app.config import Settings
    from app.db import Database

    database = Database(Settings(DATABASE_URL=url))
    try:
        with database.sessionmaker() as session, session.begin():
            yield session
    finally:
        database.dispose()


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql", "postgres:"))


def psycopg_dsn(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def sqlite_path(url: str) -> str:
    return url.split("sqlite:///", 1)[1]


# ---------------------------------------------------------------- synthetic data


class TextPool:
    """Random word text, sliced from one large pool so 100,000s of prompts generate in seconds."""

    def __init__(self, seed: int = 0, size: int = 2_000_000) -> None:
        rng = random.Random(seed)
        words: list[str] = []
        length = 0
        while length < size:
            word = rng.choice(WORDS)
            words.append(word)
            length += len(word) + 1
        self.text = " ".join(words)
        self.rng = rng

    def take(self, length: int) -> str:
        start = self.rng.randrange(0, len(self.text) - length - 1)
        return self.text[start : start + length].strip()


def synthetic_items(n: int, *, k: int = 4, prompt_chars: int = 200, response_chars: int = 500, seed: int = 0) -> Iterator[dict]:
    """JSONL upload objects: {"id", "prompt", "responses"} with about the requested lengths."""
    pool = TextPool(seed)
    for i in range(n):
        yield {
            "id": f"p-{i}",
            "prompt": f"Question {i}: " + pool.take(prompt_chars - 14),
            "responses": [f"Answer {j} to {i}: " + pool.take(response_chars - 20) for j in range(k)],
        }


def write_jsonl(path: Path, n: int, **kwargs) -> Path:
    with path.open("wb") as out:
        for item in synthetic_items(n, **kwargs):
            out.write(orjson.dumps(item) + b"\n")
    return path


# ---------------------------------------------------------------- the driver's bulk path


@contextlib.contextmanager
def raw_transaction(url: str):
    """One transaction on a plain connection (no ORM); committed at the end of the block."""
    from app.config import Settings
    from app.db import Database

    database = Database(Settings(DATABASE_URL=url))
    try:
        with database.engine.begin() as connection:
            yield connection
    finally:
        database.dispose()


def bulk_write(url: str, items: list[dict], *, project_id: int, overlap: int = 3) -> float:
    """Writes prompts and responses with the database driver's fastest bulk path alone, in one
    transaction: the import's own `write_rows` (SQLite: one INSERT over a JSON array, PostgreSQL: COPY). Returns the
    seconds it took from already parsed items: the import floor. Also seeds large projects quickly."""
    from sqlalchemy import text

    from app.prompts.service import PROMPT_COLUMNS, RESPONSE_COLUMNS, write_rows

    start = time.perf_counter()
    with raw_transaction(url) as connection:
        first = connection.execute(text("SELECT coalesce(max(id), 0) FROM prompts")).scalar() + 1
        prompts, responses = [], []
        for prompt_id, item in enumerate(items, start=first):
            messages = orjson.dumps([{"role": "user", "content": item["prompt"]}]).decode()
            prompts.append((prompt_id, project_id, None, item["id"], messages, False, None, 0, 0, overlap, False, False, True))
            responses.extend((prompt_id, position, response, None, None) for position, response in enumerate(item["responses"]))
        write_rows(connection, "prompts", PROMPT_COLUMNS, prompts)
        write_rows(connection, "responses", RESPONSE_COLUMNS, responses)
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT setval('prompts_id_seq', (SELECT max(id) FROM prompts))"))
    return time.perf_counter() - start


# ---------------------------------------------------------------- people and projects


def api_token(url: str, *, role: str = "admin", email: str | None = None) -> str:
    """A new user of `role` and an API token for it (the researcher's or admin's calls in a benchmark)."""
    from app.users import service as users
    from app.users.schemas import UserCreate

    with session_for(url) as session:
        user = users.create_user(
            session=session, data=UserCreate(email=email or f"bench-{time.time_ns()}@example.org", role=role)
        )
        return users.create_api_token(session=session, user=user, name="bench")[1]


def empty_project(url: str, name: str) -> int:
    """A new ranking project with default settings and no prompts (an import's target)."""
    from app.projects import service as projects
    from app.projects.schemas import ProjectCreate

    with session_for(url) as session:
        return projects.create_project(session=session, data=ProjectCreate(name=name), created_by=None).id


def seed_model_rankings(url: str, prompts: int, *, models: int = 10) -> int:
    """A fresh database with one ranking project "bench": `prompts` prompts x 4 responses, each response from one of
    `models` models (four different models a prompt), every prompt ranked by 3 annotators (18 decisions a prompt),
    all written with the driver's bulk path. Returns the project's id (the leaderboard and reward-model benches)."""
    from sqlalchemy import text

    from app.models import ProjectKind, Role
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
    with raw_transaction(url) as connection:  # 4 consecutive ids x 7 mod 10: four different models a prompt
        connection.execute(text(f"UPDATE responses SET model = 'model-' || ((id * 7) % {models})"))
    bulk_label(url, project_id=project_id, annotator_ids=annotator_ids)
    return project_id


# ---------------------------------------------------------------- a `preflab serve` subprocess


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    started_in: float  # seconds from spawning to the first answered request

    @property
    def pid(self) -> int:
        return self.process.pid


def _answered(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


@contextlib.contextmanager
def serve(
    url: str, *, workers: int = 1, env: dict[str, str] | None = None, timeout: float = 60.0, app_factory: str | None = None
) -> Iterator[Server]:
    """`preflab serve` on 127.0.0.1 and a free port, until the block ends (then stopped, by its pid). `app_factory`
    ("module:function"): uvicorn serving that app instead, on a database already migrated (bench/stack_floor.py)."""
    port = free_port()
    environ = (
        os.environ
        | {
            "DATABASE_URL": url,
            "ENVIRONMENT": "local",
            "SECRET_KEY": "bench-secret-at-least-32-characters-long",
            "PYTHONUNBUFFERED": "1",
        }
        | (env or {})
    )
    log = tempfile.TemporaryFile()  # noqa: SIM115 -- the server writes to it until serve() closes it
    start = time.perf_counter()
    command = ["-m", "app.cli", "serve"] if app_factory is None else ["-m", "uvicorn", app_factory, "--factory"]
    process = subprocess.Popen(
        [sys.executable, *command, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT,
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        while not _answered(port):
            if process.poll() is not None or time.perf_counter() - start > timeout:
                log.seek(0)
                raise RuntimeError(f"preflab serve did not start:\n{log.read().decode(errors='replace')[-3000:]}")
            time.sleep(0.01)
        yield Server(process, port, time.perf_counter() - start)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def call(port: int, token: str, method: str, path: str, body_file: Path | None = None) -> tuple[int, bytes, int]:
    """One API call with a bearer token on a connection of its own; a `body_file` is sent as a multipart upload
    (field `file`), streamed, so the client never holds it whole. Returns (status, the first 1 MiB of the answer, the
    answer's size): an export's answer is read to the end but not kept."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    conn.putrequest(method, path)
    conn.putheader("Authorization", f"Bearer {token}")
    if body_file is not None:
        boundary = "preflab-bench-boundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{body_file.name}"\r\n'
            "Content-Type: application/x-ndjson\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + body_file.stat().st_size + len(tail)))
        conn.endheaders()
        conn.send(head)
        with body_file.open("rb") as f:
            while chunk := f.read(1 << 20):
                conn.send(chunk)
        conn.send(tail)
    else:
        conn.endheaders()
    response = conn.getresponse()
    kept, received = bytearray(), 0
    while chunk := response.read(1 << 16):
        received += len(chunk)
        if len(kept) < 1 << 20:
            kept += chunk
    conn.close()
    return response.status, bytes(kept), received


def upload(port: int, token: str, project_id: int, path: Path) -> tuple[int, bytes]:
    """An import over HTTP (POST /api/projects/{id}/imports): (status, answer)."""
    status, body, _ = call(port, token, "POST", f"/api/projects/{project_id}/imports", path)
    return status, body


def healthz_loop(port: int, deadline: float, latencies: list[float]) -> None:
    """One client looping GET /healthz until `deadline` (the stack's floor), each answered call's latency appended."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                latencies.append(time.perf_counter() - start)
    finally:
        conn.close()


@dataclass
class Floor:
    """The stack's floor on a running server: `clients` threads looping GET /healthz (middleware, routing, a
    thread-pool hop and one `SELECT 1`). A label takes two requests that each do more, so half its rate is a ceiling
    no label loop reaches on this machine and stack."""

    rate: float  # requests/s
    cpu_ms: float  # server CPU per request
    p50_ms: float
    p95_ms: float

    @classmethod
    def measure(cls, port: int, pid: int, clients: int, seconds: float) -> "Floor":
        """`clients` looping for `seconds` against the server on `port`; the CPU of process `pid` (and its children)."""
        per_client: list[list[float]] = [[] for _ in range(clients)]
        cpu = cpu_seconds(pid)
        start = time.perf_counter()
        threads = [threading.Thread(target=healthz_loop, args=(port, start + seconds, lat)) for lat in per_client]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(pid) - cpu
        latencies = [x for lat in per_client for x in lat]
        return cls(
            len(latencies) / elapsed,
            cpu / max(1, len(latencies)) * 1000,
            percentile(latencies, 50) * 1000,
            percentile(latencies, 95) * 1000,
        )

    def __str__(self) -> str:
        return f"{self.rate:,.0f} requests/s, {self.cpu_ms:.1f} ms CPU/request"


# ---------------------------------------------------------------- memory


def rss_mib(pid: int, *, peak: bool = False) -> float:
    """Resident memory of one process from /proc (VmHWM: the peak over its life so far)."""
    key = "VmHWM:" if peak else "VmRSS:"
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} for pid {pid}")


def tree_pids(pid: int) -> list[int]:
    """The process and its descendants (uvicorn --workers N forks N workers)."""
    import psutil

    try:
        return [pid] + [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pid: int, *, descendants: bool = True) -> float:
    """CPU time of a process and (unless told not to) its descendants so far (a worker that exited takes its share
    with it)."""
    import psutil

    total = 0.0
    for p in tree_pids(pid) if descendants else [pid]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(psutil.Process(p).cpu_times()[:2])
    return total


def run_measured(argv: list[str], *, env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Runs a command; (seconds, peak RSS MiB of that process, result). The peak is VmHWM polled from
    /proc while it runs: the rusage of a child would report this (large) parent's RSS at fork time."""
    start = time.perf_counter()
    peak = 0.0
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, cwd=ROOT, env=os.environ | env, stdout=out, stderr=err)
        while process.poll() is None:
            with contextlib.suppress(OSError, RuntimeError):
                peak = max(peak, rss_mib(process.pid, peak=True))
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(argv, process.returncode, out.read(), err.read())
    return seconds, peak, result


def cli_seconds(url: str, *args: str) -> tuple[float, float]:
    """Runs `preflab ARGS` on `url` as a user would (process start and migration check included): (wall s, CPU s)."""
    import resource

    env = os.environ | {"DATABASE_URL": url, "SECRET_KEY": "bench-secret-key-at-least-32-characters-long"}
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run([sys.executable, "-m", "app.cli", *args], check=True, capture_output=True, env=env)
    seconds, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def load_average() -> str:
    return f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1 / 5 / 15 min; {os.cpu_count()} cores)"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


ASSIGNMENT_COLUMNS = ("id", "project_id", "prompt_id", "annotator_id", "status", "leased_at", "lease_expires_at", "shown_order")
ANNOTATION_COLUMNS = (
    "assignment_id",
    "project_id",
    "prompt_id",
    "annotator_id",
    "kind",
    "ranking",
    "none_acceptable",
    "time_spent_ms",
    "shown_order",
    "created_at",
)


def bulk_label(url: str, *, project_id: int, annotator_ids: list[int], seed: int = 0) -> int:
    """Every prompt of the project labelled by every annotator (a random strict ranking), written in
    bulk like `bulk_write` (done assignments + annotations, counters updated). Returns the label count."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from app.prompts.service import write_rows

    rng = random.Random(seed)
    with raw_transaction(url) as connection:
        now = datetime.now(UTC)
        stamp = now if connection.dialect.name == "postgresql" else now.strftime("%Y-%m-%d %H:%M:%S.%f")
        responses: dict[int, list[int]] = {}
        for prompt_id, response_id in connection.execute(
            text(
                "SELECT prompt_id, id FROM responses WHERE prompt_id IN (SELECT id FROM prompts WHERE project_id = :p) "
                "ORDER BY prompt_id, position"
            ),
            {"p": project_id},
        ):
            responses.setdefault(prompt_id, []).append(response_id)
        assignment_id = connection.execute(text("SELECT coalesce(max(id), 0) FROM assignments")).scalar()
        assignments, annotations = [], []
        for prompt_id, ids in responses.items():
            for annotator_id in annotator_ids:
                assignment_id += 1
                shown = orjson.dumps(rng.sample(ids, len(ids))).decode()
                ranking = orjson.dumps([[rid] for rid in rng.sample(ids, len(ids))]).decode()
                assignments.append((assignment_id, project_id, prompt_id, annotator_id, "done", stamp, stamp, shown))
                annotations.append(
                    (assignment_id, project_id, prompt_id, annotator_id, "ranking", ranking, False, 1000, shown, stamp)
                )
        write_rows(connection, "assignments", ASSIGNMENT_COLUMNS, assignments)
        write_rows(connection, "annotations", ANNOTATION_COLUMNS, annotations)
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT setval('assignments_id_seq', (SELECT max(id) FROM assignments))"))
        connection.execute(
            text(
                "UPDATE prompts SET completed_count = completed_count + :n, active_count = active_count + :n "
                "WHERE project_id = :p"
            ),
            {"n": len(annotator_ids), "p": project_id},
        )
    return len(annotations)
