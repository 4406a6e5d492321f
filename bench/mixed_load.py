"""Mixed load, as people work: 32 annotators each pausing 1-3 s between labels (about 16 labels/s) while a
researcher runs a large import (HTTP upload), an agreement report and a TRL export on the same server. Prints,
per call kind, p50/p95/max latency and errors while the heavy jobs run, and each heavy job's time alone and under
the annotators' load. 127.0.0.1 only; bounded in time and sizes.

    .venv/bin/python bench/mixed_load.py [--postgres URL] [--prompts 100000] [--pairs 1000000] [--max-seconds 600]

Quick run: --prompts 20000 --pairs 200000. Targets (Preflab issue #16): annotators' p95 per call under 300 ms on
SQLite and under 150 ms on PostgreSQL, no call over 1 s, zero errors.
"""

import argparse
import http.client
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.annotators import setup_project
from bench.common import (
    api_token,
    bulk_label,
    call,
    cpu_seconds,
    empty_project,
    fresh_database,
    percentile,
    serve,
    sqlite_url,
    write_jsonl,
)

WORKERS = 2
PAIRS_PER_PROMPT = 3 * 6  # 3 labels a prompt, 6 pairs from a strict ranking of 4 responses


@dataclass
class Calls:
    """(start time, seconds) per call kind, and every error."""

    timings: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {"next": [], "submit": []})
    errors: list[str] = field(default_factory=list)
    labels: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, start: float, seconds: float) -> None:
        with self.lock:
            self.timings[kind].append((start, seconds))

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def _annotator(
    port: int, project_id: int, token: str, seed: int, pause: tuple[float, float], stop: threading.Event, calls: Calls
):
    """next -> think 1-3 s -> submit, until `stop`. The pause sits between getting a task and submitting it, as a
    person reads before answering."""
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def timed(kind: str, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        nonlocal conn
        start = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            calls.error(f"{kind}: {type(exc).__name__}: {exc}")
            return 0, b""
        calls.add(kind, start, time.perf_counter() - start)
        if response.status >= 400 or (kind == "next" and response.status not in (200, 204)):
            calls.error(f"{kind}: {response.status} {data[:200]!r}")
        return response.status, data

    time.sleep(rng.uniform(0, pause[1]))  # people do not start in step
    try:
        while not stop.is_set():
            status, data = timed("next", "GET", f"/api/projects/{project_id}/next")
            if status != 200:
                stop.wait(1)
                continue
            task = orjson.loads(data)
            ids = [r["id"] for r in task["responses"]]
            rng.shuffle(ids)
            if stop.wait(rng.uniform(*pause)):
                break
            status, _ = timed(
                "submit", "POST", f"/api/tasks/{task['task_id']}/annotations", orjson.dumps({"ranking": [[i] for i in ids]})
            )
            if status == 201:
                with calls.lock:
                    calls.labels += 1
    finally:
        conn.close()


@dataclass
class Job:
    name: str
    run: Callable[[], tuple[int, bytes, int]]  # -> bench.common.call's (status, head of the answer, size)
    seconds: float = 0.0
    status: int = 0
    started: float = 0.0

    def __call__(self) -> None:
        self.started = time.perf_counter()
        try:
            self.status = self.run()[0]
        except Exception as exc:  # reported with the figures, not raised in a thread
            self.status = -1
            print(f"  {self.name} failed: {type(exc).__name__}: {exc}", flush=True)
        self.seconds = time.perf_counter() - self.started


def _stats(timings: list[tuple[float, float]], since: float, until: float) -> str:
    values = [s for start, s in timings if since <= start <= until]
    if not values:
        return "no calls"
    over = sum(1 for s in values if s > 1)
    return (
        f"{len(values):>6,} calls  p50 {percentile(values, 50) * 1000:6.0f} ms  p95 {percentile(values, 95) * 1000:6.0f} ms  "
        f"max {max(values) * 1000:6.0f} ms  over 1 s: {over}"
    )


def _workers_cpu(server_pid: int, workers: int) -> dict[int, tuple[float, float]]:
    """CPU seconds so far of each worker process: its own, and with its descendants (the processes of large imports,
    app/prompts/processes.py). One worker: the server's process is the worker."""
    import psutil

    if workers == 1:
        pids = [server_pid]
    else:  # not the resource tracker of the server's multiprocessing
        pids = [
            child.pid for child in psutil.Process(server_pid).children() if "resource_tracker" not in " ".join(child.cmdline())
        ]
    return {pid: (cpu_seconds(pid, descendants=False), cpu_seconds(pid)) for pid in pids}


def mixed_load(
    url: str, *, annotators: int, prompts: int, pairs: int, max_seconds: float, pause: tuple[float, float], workers: int = WORKERS
) -> bool:
    """Returns whether every heavy job answered 200 and no annotator call failed."""
    labelled_prompts = max(1, pairs // PAIRS_PER_PROMPT)
    with tempfile.TemporaryDirectory(prefix="preflab-mixed-") as tmp:
        print(
            f"  seeding: {labelled_prompts:,} labelled prompts ({labelled_prompts * PAIRS_PER_PROMPT:,} pairs), writing {prompts:,} prompts to import",
            flush=True,
        )
        fresh_database(url)
        work = setup_project(url, annotators=annotators, prompts=5_000, prompt_chars=200, response_chars=500)
        labelled = setup_project(url, annotators=3, prompts=labelled_prompts, prompt_chars=200, response_chars=500)
        bulk_label(url, project_id=labelled.project_id, annotator_ids=labelled.annotator_ids)
        jsonl = write_jsonl(Path(tmp) / "import.jsonl", prompts, seed=1)
        token = api_token(url)
        targets = {name: empty_project(url, f"import {name}") for name in ("alone", "under load")}
        size_mb = jsonl.stat().st_size // 2**20 + 10

        with serve(url, workers=workers, env={"MAX_UPLOAD_MB": str(size_mb)}) as server:
            port = server.port

            def jobs(target: int) -> list[Job]:
                return [
                    Job("import", lambda: call(port, token, "POST", f"/api/projects/{target}/imports", jsonl)),
                    Job("agreement report", lambda: call(port, token, "GET", f"/api/projects/{labelled.project_id}/agreement")),
                    Job(
                        "export (TRL JSONL)",
                        lambda: call(port, token, "GET", f"/api/projects/{labelled.project_id}/export?format=trl"),
                    ),
                ]

            alone = jobs(targets["alone"])
            for job in alone:  # one at a time, nothing else running
                job()
            print("  alone: " + "; ".join(f"{j.name} {j.seconds:.1f} s ({j.status})" for j in alone), flush=True)

            calls, stop = Calls(), threading.Event()
            threads = [
                threading.Thread(target=_annotator, args=(port, work.project_id, t, i, pause, stop, calls), daemon=True)
                for i, t in enumerate(work.tokens)
            ]
            start = time.perf_counter()
            for t in threads:
                t.start()
            time.sleep(pause[1] + 2)  # every annotator in its loop
            heavy_from = time.perf_counter()
            workers_cpu = _workers_cpu(server.pid, workers)
            loaded = jobs(targets["under load"])
            runners = [threading.Thread(target=job, daemon=True) for job in loaded]
            for r in runners:
                r.start()
            for r in runners:
                r.join(timeout=max(0.0, start + max_seconds - time.perf_counter()))
            heavy_until = time.perf_counter()
            # CPU seconds per worker while the heavy jobs ran: one worker's own far above the other's means the import
            # and the export shared its GIL (BENCHMARKS.md, "Mixed load"); a large import runs in a child of its worker.
            before = workers_cpu
            workers_cpu = {
                pid: (own - before[pid][0], tree - before[pid][1])
                for pid, (own, tree) in _workers_cpu(server.pid, workers).items()
                if pid in before  # by pid: a worker that restarted meanwhile has no "before"
            }
            time.sleep(2)
            stop.set()
            for t in threads:
                t.join(timeout=70)
            end = time.perf_counter()

    unfinished = [r for r in runners if r.is_alive()]
    print(
        "  under load: "
        + "; ".join(f"{j.name} {j.seconds:.1f} s ({j.status})" for j in loaded)
        + (f"; {len(unfinished)} job(s) still running at --max-seconds" if unfinished else "")
    )
    print(
        f"  annotators: {annotators}, pausing {pause[0]:g}-{pause[1]:g} s; {calls.labels:,} labels in {end - start:.0f} s "
        f"({calls.labels / (end - start):.1f} labels/s)"
    )
    print(
        f"  while the heavy jobs ran ({heavy_until - heavy_from:.0f} s; CPU seconds per worker, own + its import "
        "processes: "
        + ", ".join(f"{own:.1f} + {max(tree - own, 0.0):.1f}" for own, tree in sorted(workers_cpu.values(), reverse=True))
        + "):"
    )
    for kind, timings in calls.timings.items():
        print(f"    {kind:<7}{_stats(timings, heavy_from, heavy_until)}")
    print("  whole run:")
    for kind, timings in calls.timings.items():
        print(f"    {kind:<7}{_stats(timings, start, end)}")
    print(f"  errors: {len(calls.errors)}")
    for e in calls.errors[:5]:
        print(f"    {e}")
    return not calls.errors and not unfinished and all(j.status == 200 for j in alone + loaded)


def main() -> None:
    parser = argparse.ArgumentParser(description="Annotators pausing as people do, while an import, a report and an export run.")
    parser.add_argument("--sqlite", action="store_true", help="run on a temporary SQLite file")
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL database (it is emptied)")
    parser.add_argument("--annotators", type=int, default=32)
    parser.add_argument("--prompts", type=int, default=100_000, help="prompts in the import (x 4 responses)")
    parser.add_argument("--pairs", type=int, default=1_000_000, help="pairs in the export (3 labels x 6 pairs a prompt)")
    parser.add_argument("--pause", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"), help="seconds between labels")
    parser.add_argument("--workers", type=int, default=WORKERS, help="server worker processes")
    parser.add_argument("--max-seconds", type=float, default=600, help="stop waiting for the heavy jobs after this")
    args = parser.parse_args()
    targets = ([("SQLite", sqlite_url())] if args.sqlite or not args.postgres else []) + (
        [("PostgreSQL", args.postgres)] if args.postgres else []
    )
    ok = True
    for name, url in targets:
        print(
            f"== {name}: {args.annotators} annotators, import {args.prompts:,} prompts, export {args.pairs:,} pairs, agreement report",
            flush=True,
        )
        ok &= mixed_load(
            url,
            annotators=args.annotators,
            prompts=args.prompts,
            pairs=args.pairs,
            max_seconds=args.max_seconds,
            pause=tuple(args.pause),
            workers=args.workers,
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
