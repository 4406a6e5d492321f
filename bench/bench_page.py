"""Benchmark: the annotation page as the annotator meets it, and the bytes it ships.

    .venv/bin/python bench/bench_page.py [-n 200] [--prompts 1000] [--database-url postgresql://...]

Seeds a fresh database (a temporary SQLite file by default; a PostgreSQL URL is emptied first) with one
ranking project of `--prompts` prompts × 4 responses (~500-character Markdown responses), starts a real
`uvicorn` (one worker) on 127.0.0.1, logs in as an annotator over HTTP, then times N requests each of:

  page      GET /projects/{id}/annotate          the annotation page (the annotator's current lease)
  next      GET /api/projects/{id}/next          the same task as JSON
  prefetch  GET /projects/{id}/annotate/prefetch  the next task's markup, leased in the background
  submit    POST /api/tasks/{id}/annotations     a label (then: page or prefetch for the next task)
  move on   submit + prefetch, as the page does: the wait between pressing submit and the next task

Times are round trips measured by the client over one keep-alive connection on loopback: an upper
bound of the server's time. "CPU ms" is the server process's mean CPU time per request (utime + stime
from /proc, so Linux only), which other load on the machine inflates far less than wall time; the
database's own CPU is not in it. Prints p50/p95 (ms), and the raw and gzip bytes of the page's HTML, JS
and CSS. Target: the page under 20 ms at p50.
"""

import argparse
import gzip
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMAIL, PASSWORD = "bench-annotator@example.org", "bench-password-123"
PARAGRAPH = (
    "A **response** with `code`, a [link](https://example.org) and a list:\n\n- one item\n- another item\n\n"
    "Some more words so that the text is about five hundred characters long, as a typical model response "
    "in a preference dataset would be; it goes on for a little while, and then it stops. "
)


def seed(database_url: str, prompts: int) -> int:
    """A migrated, empty database with one annotator and a ranking project of `prompts` prompts; its id."""
    import io

    import orjson

    from app import demo
    from app.config import Settings
    from app.db import Database
    from app.models import ProjectKind, Role
    from app.projects import service as projects
    from app.projects.schemas import ProjectCreate
    from app.prompts import service as imports
    from app.users import service as users
    from app.users.schemas import UserCreate
    from bench.common import fresh_database

    fresh_database(database_url)
    database = Database(Settings(DATABASE_URL=database_url, ENVIRONMENT="test"))
    try:
        with database.sessionmaker() as session, session.begin():
            demo.wipe(session)
            admin = users.create_user(
                session=session,
                data=UserCreate(email="bench-admin@example.org", name="Admin", role=Role.admin, password=PASSWORD),
            )
            annotator = users.create_user(
                session=session, data=UserCreate(email=EMAIL, name="Annotator", role=Role.annotator, password=PASSWORD)
            )
            project = projects.create_project(
                session=session,
                created_by=admin,
                data=ProjectCreate(
                    name="Bench", kind=ProjectKind.ranking, overlap=1, allow_ties=True, guidelines=demo.RANKING_GUIDELINES
                ),
            )
            projects.add_member(session=session, project=project, user=annotator)
            rows = [
                {
                    "id": f"p{i}",
                    "prompt": f"Question {i}: " + "how does this work? " * 10,
                    "responses": [f"Answer {j} to {i}. " + PARAGRAPH for j in range(4)],
                }
                for i in range(prompts)
            ]
            result = imports.import_batch(
                session=session,
                project=project,
                uploaded_by=admin,
                filename="bench.jsonl",
                stream=io.BytesIO(b"\n".join(orjson.dumps(r) for r in rows)),
            )
            assert result.ok, result.errors
            return project.id
    finally:
        database.dispose()


class Client:
    """One keep-alive HTTP/1.1 connection with a cookie jar of one cookie (the session)."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookie = ""
        self.csrf = ""

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        headers = {**(headers or {}), **({"Cookie": self.cookie} if self.cookie else {})}
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        cookie = response.getheader("set-cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return response.status, data

    def login(self, email: str = EMAIL) -> None:
        status, page = self.request("GET", "/login")
        self.csrf = re.search(rb'name="csrf-token" content="([^"]+)"', page).group(1).decode()
        form = urlencode({"email": email, "password": PASSWORD, "csrf_token": self.csrf}).encode()
        status, _ = self.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 303, f"login failed: {status}"

    def submit(self, task_id: int, response_ids: list[int]) -> None:
        body = json.dumps({"ranking": [[rid] for rid in response_ids], "time_spent_ms": 1000}).encode()
        status, data = self.request(
            "POST", f"/api/tasks/{task_id}/annotations", body, {"Content-Type": "application/json", "X-CSRF-Token": self.csrf}
        )
        assert status == 201, (status, data[:300])


SERVER_PID = 0  # set once uvicorn runs: its CPU time is read from /proc around each request
CPU: dict[str, list[float]] = {}
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def server_cpu_ms() -> float:
    fields = Path(f"/proc/{SERVER_PID}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_MS  # utime + stime


def timed(call, key: str | None = None) -> tuple[float, object]:
    cpu = server_cpu_ms() if key else 0.0
    start = time.perf_counter()
    result = call()
    elapsed = (time.perf_counter() - start) * 1000
    if key:
        CPU.setdefault(key, []).append(server_cpu_ms() - cpu)
    return elapsed, result


def task_of(html: bytes) -> tuple[int, list[int]]:
    task_id = int(re.search(rb'data-submit-url="/api/tasks/(\d+)/annotations"', html).group(1))
    return task_id, [int(x) for x in re.findall(rb'class="rank-card"[^>]*data-id="(\d+)"', html)]


def line(name: str, times: list[float]) -> str:
    q = statistics.quantiles(times, n=100, method="inclusive")
    cpu = f"{statistics.fmean(CPU[name]):>8.2f}" if name in CPU else f"{'':>8}"
    return f"{name:<10} {len(times):>5} {statistics.median(times):>8.2f} {q[94]:>8.2f} {max(times):>8.2f} {cpu}"


def static_sizes(html: bytes) -> list[tuple[str, int, int]]:
    sizes = [("page HTML", len(html), len(gzip.compress(html, 9)))]
    scripts = sorted((ROOT / "static/js/annotate").glob("*.js"))  # ES modules: each file is its own request
    js = [(f"static/js/annotate/ ({len(scripts)} modules)", [p.read_bytes() for p in scripts])]
    for name, parts in [*js, ("static/css/app.css", [(ROOT / "static/css/app.css").read_bytes()])]:
        sizes.append((name, sum(map(len, parts)), sum(len(gzip.compress(p, 9)) for p in parts)))
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="requests per measurement")
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--database-url", help="PostgreSQL URL to use (emptied!); default: a temporary SQLite file")
    args = parser.parse_args()
    assert args.prompts >= 2 * args.n + 2, "--prompts must be at least 2n + 2 (every submit uses a prompt)"

    tmp = Path(tempfile.mkdtemp(prefix="preflab-bench-page-"))
    database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    started = time.perf_counter()
    project_id = seed(database_url, args.prompts)
    print(
        f"seeded {args.prompts} prompts x 4 responses in {time.perf_counter() - started:.1f} s ({database_url.split('://')[0]})"
    )

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "test",
        "SECRET_KEY": "bench-page-secret-at-least-32-characters",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    global SERVER_PID
    SERVER_PID = server.pid
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        client = Client(port)
        client.login()
        page_url = f"/projects/{project_id}/annotate"
        prefetch_url = f"/projects/{project_id}/annotate/prefetch"
        for _ in range(10):  # warm up (imports, template compilation, connection pool)
            client.request("GET", page_url)
            client.request("GET", f"/api/projects/{project_id}/next")

        results: dict[str, list[float]] = {"page": [], "next": [], "prefetch": [], "submit": [], "page (new)": [], "move on": []}
        for _ in range(args.n):
            ms, (status, html) = timed(lambda: client.request("GET", page_url), "page")
            assert status == 200 and b'id="annotate"' in html, status
            results["page"].append(ms)
        for _ in range(args.n):
            ms, (status, _) = timed(lambda: client.request("GET", f"/api/projects/{project_id}/next"), "next")
            assert status == 200, status
            results["next"].append(ms)
        task_id, ids = task_of(html)
        for _ in range(args.n):  # the same lease each time: the first call leased it
            ms, (status, fragment) = timed(lambda: client.request("GET", f"{prefetch_url}?after={task_id}"), "prefetch")
            assert status == 200, status
            results["prefetch"].append(ms)
        # Label without prefetching: submit, then load the page, which leases a new task.
        for _ in range(args.n // 2):
            ms, _ = timed(lambda task_id=task_id, ids=ids: client.submit(task_id, ids), "submit")
            results["submit"].append(ms)
            ms, (status, html) = timed(lambda: client.request("GET", page_url), "page (new)")
            results["page (new)"].append(ms)
            task_id, ids = task_of(html)
        # As the page does: the next task is prefetched while this one is labelled; moving on waits for the submit only.
        for _ in range(args.n // 2):
            status, fragment = client.request("GET", f"{prefetch_url}?after={task_id}")
            assert status == 200, status
            ms, _ = timed(lambda task_id=task_id, ids=ids: client.submit(task_id, ids), "submit")
            results["submit"].append(ms)
            results["move on"].append(ms)
            task_id, ids = task_of(fragment)
        _, html = client.request("GET", page_url)
    finally:
        server.terminate()
        server.wait(timeout=10)

    print(
        f"\nround trips on one keep-alive connection to uvicorn (1 worker) on 127.0.0.1, n={args.n}; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other work on the machine inflates wall times)"
    )
    print(f"{'request':<10} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'CPU ms':>8}")
    for name, times in results.items():
        print(line(name, times))
    print(f"\n{'shipped':<24} {'raw bytes':>10} {'gzip -9':>10}")
    sizes = static_sizes(html)
    for name, raw, packed in sizes:
        print(f"{name:<24} {raw:>10,} {packed:>10,}")
    print(f"{'JS + CSS':<24} {sum(s[1] for s in sizes[1:]):>10,} {sum(s[2] for s in sizes[1:]):>10,}")


if __name__ == "__main__":
    main()
