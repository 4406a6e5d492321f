"""Benchmark: the first request of a kind, and a page holding a 2 MB Markdown table (issue #16, items 2 and 5).

    .venv/bin/python bench/bench_first_request.py [--database-url postgresql://...]  (emptied!)

1. Huge page: one prompt whose first response is a 2 MB Markdown table, on `preflab serve` (1 worker). Times
   the annotation page five times while a second user (an admin) calls GET /projects every 20 ms on a
   connection of its own, and prints that user's latency during the page loads next to its latency alone.
   Targets: the page within 1 s; the other user not blocked (app/web/templating.py RenderedOnSend).
2. First export: 10,000 TRL pairs (bench/bench_export.py's generator), exported twice over HTTP by a fresh
   server; the first pays the process's imports. Target: the first within 1.3x of the second.
3. Cold start and idle RSS on an empty database (bench/run.py's bench_start). Targets: under 2 s (SQLite),
   2.5 s (PostgreSQL); idle RSS under 120 MiB.
Wall times on a shared machine: the load average is printed beside them.
"""

import argparse
import http.client
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_page import Client, seed  # noqa: E402
from bench.common import serve, sqlite_url  # noqa: E402

TABLE_BYTES = 2_000_000


def table(n_bytes: int) -> str:
    rows = ["| id | name | value | note |", "|---|---|---|---|"]
    size, i = 0, 0
    while size < n_bytes:
        rows.append(f"| {i} | item {i} | {i * 3.14:.2f} | some *note* on row {i} |")
        size += len(rows[-1]) + 1
        i += 1
    return "\n".join(rows)


def huge_page(url: str) -> None:
    from sqlalchemy import update

    from app.config import Settings
    from app.db import Database
    from app.models import Response

    project_id = seed(url, 4)
    database = Database(Settings(DATABASE_URL=url, ENVIRONMENT="test"))
    with database.sessionmaker() as session, session.begin():
        session.execute(update(Response).where(Response.position == 0).values(text=table(TABLE_BYTES)))
    database.dispose()

    with serve(url) as server:
        annotator, admin = Client(server.port), Client(server.port)
        annotator.login()
        admin.login("bench-admin@example.org")  # bench_page.seed's admin
        alone = [timed(lambda: admin.request("GET", "/projects"))[0] for _ in range(20)]

        during: list[float] = []
        stop = threading.Event()

        def other_user() -> None:
            while not stop.is_set():
                during.append(timed(lambda: admin.request("GET", "/projects"))[0])
                time.sleep(0.02)

        pages = []
        thread = threading.Thread(target=other_user)
        thread.start()
        try:
            for _ in range(5):
                ms, (status, html) = timed(lambda: annotator.request("GET", f"/projects/{project_id}/annotate"))
                assert status == 200 and b"too large to format" in html, status
                pages.append(ms)
        finally:
            stop.set()
            thread.join()
    print(f"huge page ({TABLE_BYTES / 1e6:.0f} MB table, {len(html) / 1e6:.1f} MB of HTML): {fmt(pages)}")
    print(f"  another user's GET /projects alone: {fmt(alone)}; during the huge page loads (n={len(during)}): {fmt(during)}")


def first_export(url: str) -> None:
    from app import migrate
    from app.config import Settings
    from app.db import Database
    from bench.bench_export import generate
    from bench.common import api_token, fresh_database

    fresh_database(url)
    database = Database(Settings(DATABASE_URL=url, ENVIRONMENT="test"))
    migrate.upgrade(database.engine)
    project_id, pairs = generate(database, 1_000)
    database.dispose()
    token = api_token(url)
    with serve(url) as server:
        time.sleep(3)  # the server idles as after a start (the warm-up thread included)
        seconds = []
        for _ in range(2):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            start = time.perf_counter()
            connection.request(
                "GET", f"/api/projects/{project_id}/export?format=trl", headers={"Authorization": f"Bearer {token}"}
            )
            response = connection.getresponse()
            body = response.read()
            seconds.append(time.perf_counter() - start)
            assert response.status == 200, (response.status, body[:300])
            connection.close()
    rows = body.count(b"\n")
    print(
        f"export of {rows:,} pairs (expected {pairs:,}): first {seconds[0]:.2f} s, second {seconds[1]:.2f} s, ratio {seconds[0] / seconds[1]:.2f}"
    )


def start(url: str) -> None:
    from bench.run import bench_start

    figures = bench_start(url)
    print(f"cold start: {figures['start']}; idle RSS {figures['rss']}")


def timed(call):
    begin = time.perf_counter()
    result = call()
    return (time.perf_counter() - begin) * 1000, result


def fmt(ms: list[float]) -> str:
    return f"p50 {statistics.median(ms):,.0f} ms, max {max(ms):,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL to use (emptied!); default: temporary SQLite files")
    parser.add_argument("--only", choices=("page", "export", "start"))
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    for name, bench in (("page", huge_page), ("export", first_export), ("start", start)):
        if args.only in (None, name):
            bench(args.database_url or sqlite_url())


if __name__ == "__main__":
    main()
