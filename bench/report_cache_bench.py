"""Benchmark: six agreement reports asked for at once, uncached (as before the report cache) and through the cache
(app/reports/cache.py), and what the cache costs a request whose report is current (the data stamp).

    .venv/bin/python bench/report_cache_bench.py [--database URL] [--prompts N] [--requests 6]

Seeds a ranking project like bench/leaderboard_bench.py (bench.common.seed_model_rankings: N prompts x 4 responses x 3 annotators). Each phase runs its
requests in threads of this process: the cached phase first (cold: one computes, the others wait for it; then warm),
then the uncached one, so the process's peak RSS after each phase is that phase's (the uncached peak includes the
cached one's). Not measured here: annotators' latency under load while a report computes (bench/load_test.py)."""

import argparse
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import seed_model_rankings, sqlite_url


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parallel(n: int, work) -> float:
    threads = [threading.Thread(target=work) for _ in range(n)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None, help="Database URL (default: a new SQLite file)")
    parser.add_argument("--prompts", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=6)
    args = parser.parse_args()
    url = args.database or sqlite_url()
    project_id = seed_model_rankings(url, args.prompts)

    from app.agreement import service
    from app.config import Settings
    from app.db import Database
    from app.models import Project
    from app.reports.stamp import data_stamp

    database = Database(Settings(DATABASE_URL=url))
    computed = []
    original = service.project_report

    def counting(**kwargs):
        computed.append(1)
        return original(**kwargs)

    service.project_report = counting  # type: ignore[assignment]
    base = peak_rss_mib()
    cold = parallel(args.requests, lambda: service.cached_report(database, project_id))
    cached_peak = peak_rss_mib()
    warm = parallel(args.requests, lambda: service.cached_report(database, project_id))
    print(f"{args.prompts} prompts, {args.requests} parallel requests ({database.engine.dialect.name})")
    print(
        f"cached, cold: {cold:.1f} s, {len(computed)} computation(s), peak RSS {cached_peak:.0f} MiB (+{cached_peak - base:.0f})"
    )
    print(f"cached, warm: {warm * 1000:.0f} ms for all {args.requests}")
    with database.read_sessionmaker() as session, session.begin():
        start = time.perf_counter()
        for _ in range(100):
            data_stamp(session, project_id)
        print(f"data stamp: {(time.perf_counter() - start) * 10:.2f} ms a query")

    def uncached() -> None:
        with database.read_sessionmaker() as session, session.begin():
            original(session=session, project=session.get_one(Project, project_id))

    took = parallel(args.requests, uncached)
    print(f"uncached: {took:.1f} s, {args.requests} computations, peak RSS {peak_rss_mib():.0f} MiB")
    database.dispose()


if __name__ == "__main__":
    main()
