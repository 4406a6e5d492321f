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
    """An empty, migrated database at `url` (PostgreSQL: its public schema is dropped first)."""
    from sqlalchemy import text

    from app import migrate
    from app.config import Settings
    from app.db import Database

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
        return self.text[start:start + length].strip()


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

PROMPT_COLUMNS = ("id", "project_id", "batch_id", "external_id", "messages", "is_chat", "metadata",
                  "completed_count", "active_count", "target_overlap", "is_gold", "boosted")
RESPONSE_COLUMNS = ("id", "prompt_id", "position", "text", "model", "metadata")


def bulk_rows(items: list[dict], *, project_id: int, overlap: int, first_prompt_id: int, first_response_id: int):
    """(prompt rows, response rows) as tuples in PROMPT_COLUMNS / RESPONSE_COLUMNS order, JSON already encoded."""
    prompts, responses = [], []
    response_id = first_response_id
    for offset, item in enumerate(items):
        prompt_id = first_prompt_id + offset
        messages = orjson.dumps([{"role": "user", "content": item["prompt"]}]).decode()
        prompts.append((prompt_id, project_id, None, item["id"], messages, False, None, 0, 0, overlap, False, False))
        for position, text in enumerate(item["responses"]):
            responses.append((response_id, prompt_id, position, text, None, None))
            response_id += 1
    return prompts, responses


def bulk_write(url: str, items: list[dict], *, project_id: int, overlap: int = 3) -> float:
    """Writes prompts and responses with the database driver's fastest bulk path alone, in one
    transaction: sqlite3 `executemany`, PostgreSQL `COPY` (psycopg). Returns the seconds it took,
    from already parsed items (the import floor). Also used to seed large projects quickly."""
    start = time.perf_counter()
    if is_postgres(url):
        import psycopg

        with psycopg.connect(psycopg_dsn(url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT coalesce(max(id), 0) FROM prompts")
            first_prompt = cur.fetchone()[0] + 1
            cur.execute("SELECT coalesce(max(id), 0) FROM responses")
            first_response = cur.fetchone()[0] + 1
            prompts, responses = bulk_rows(items, project_id=project_id, overlap=overlap,
                                           first_prompt_id=first_prompt, first_response_id=first_response)
            with cur.copy(f"COPY prompts ({', '.join(PROMPT_COLUMNS)}) FROM STDIN") as copy:
                for row in prompts:
                    copy.write_row(row)
            with cur.copy(f"COPY responses ({', '.join(RESPONSE_COLUMNS)}) FROM STDIN") as copy:
                for row in responses:
                    copy.write_row(row)
            cur.execute("SELECT setval('prompts_id_seq', (SELECT max(id) FROM prompts))")
            cur.execute("SELECT setval('responses_id_seq', (SELECT max(id) FROM responses))")
    else:
        import sqlite3

        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN")
            first_prompt = conn.execute("SELECT coalesce(max(id), 0) FROM prompts").fetchone()[0] + 1
            first_response = conn.execute("SELECT coalesce(max(id), 0) FROM responses").fetchone()[0] + 1
            prompts, responses = bulk_rows(items, project_id=project_id, overlap=overlap,
                                           first_prompt_id=first_prompt, first_response_id=first_response)
            conn.executemany(f"INSERT INTO prompts ({', '.join(PROMPT_COLUMNS)}) VALUES ({', '.join('?' * len(PROMPT_COLUMNS))})", prompts)
            conn.executemany(f"INSERT INTO responses ({', '.join(RESPONSE_COLUMNS)}) VALUES ({', '.join('?' * len(RESPONSE_COLUMNS))})", responses)
            conn.execute("COMMIT")
        finally:
            conn.close()
    return time.perf_counter() - start


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
def serve(url: str, *, workers: int = 1, env: dict[str, str] | None = None, timeout: float = 60.0) -> Iterator[Server]:
    """`preflab serve` on 127.0.0.1 and a free port, until the block ends (then stopped, by its pid)."""
    port = free_port()
    environ = os.environ | {"DATABASE_URL": url, "ENVIRONMENT": "local", "SECRET_KEY": "bench-secret",
                            "PYTHONUNBUFFERED": "1"} | (env or {})
    log = tempfile.TemporaryFile()
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT,
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

    root = psutil.Process(pid)
    return [root.pid] + [child.pid for child in root.children(recursive=True)]


def run_measured(argv: list[str], *, env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Runs a command; (seconds, peak RSS MiB of that process, result)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, cwd=ROOT, env=os.environ | env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)  # the rusage of this child alone
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(argv, process.returncode, out.read(), err.read())
    return seconds, usage.ru_maxrss / 1024, result


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


ASSIGNMENT_COLUMNS = ("id", "project_id", "prompt_id", "annotator_id", "status", "leased_at", "lease_expires_at", "shown_order")
ANNOTATION_COLUMNS = ("id", "assignment_id", "project_id", "prompt_id", "annotator_id", "kind", "ranking",
                      "none_acceptable", "time_spent_ms", "shown_order", "created_at")


def bulk_label(url: str, *, project_id: int, annotator_ids: list[int], seed: int = 0) -> int:
    """Every prompt of the project labelled by every annotator (a random strict ranking), written in
    bulk like `bulk_write` (done assignments + annotations, counters updated). Returns the label count."""
    from datetime import UTC, datetime

    rng = random.Random(seed)
    now = datetime.now(UTC)
    postgres = is_postgres(url)
    stamp = now if postgres else now.strftime("%Y-%m-%d %H:%M:%S.%f")
    query = f"SELECT prompt_id, id FROM responses WHERE prompt_id IN (SELECT id FROM prompts WHERE project_id = {int(project_id)}) ORDER BY prompt_id, position"
    if postgres:
        import psycopg

        conn = psycopg.connect(psycopg_dsn(url))
        cur = conn.cursor()
    else:
        import sqlite3

        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        conn.execute("BEGIN")
        cur = conn.cursor()
    try:
        cur.execute(query)
        responses: dict[int, list[int]] = {}
        for prompt_id, response_id in cur.fetchall():
            responses.setdefault(prompt_id, []).append(response_id)
        cur.execute("SELECT coalesce(max(id), 0) FROM assignments")
        next_assignment = cur.fetchone()[0] + 1
        cur.execute("SELECT coalesce(max(id), 0) FROM annotations")
        next_annotation = cur.fetchone()[0] + 1
        assignments, annotations = [], []
        for prompt_id, ids in responses.items():
            for annotator_id in annotator_ids:
                shown = orjson.dumps(rng.sample(ids, len(ids))).decode()
                ranking = orjson.dumps([[rid] for rid in rng.sample(ids, len(ids))]).decode()
                assignments.append((next_assignment, project_id, prompt_id, annotator_id, "done", stamp, stamp, shown))
                annotations.append((next_annotation, next_assignment, project_id, prompt_id, annotator_id, "ranking",
                                    ranking, False, 1000, shown, stamp))
                next_assignment += 1
                next_annotation += 1
        if postgres:
            for table, columns, rows in (("assignments", ASSIGNMENT_COLUMNS, assignments),
                                         ("annotations", ANNOTATION_COLUMNS, annotations)):
                with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
        else:
            for table, columns, rows in (("assignments", ASSIGNMENT_COLUMNS, assignments),
                                         ("annotations", ANNOTATION_COLUMNS, annotations)):
                cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)
        n = len(annotator_ids)
        cur.execute(f"UPDATE prompts SET completed_count = completed_count + {n}, active_count = active_count + {n} "
                    f"WHERE project_id = {int(project_id)}")
        conn.commit() if postgres else conn.execute("COMMIT")
    finally:
        conn.close()
    return len(annotations)
