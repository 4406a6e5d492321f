"""Where a label's server CPU goes: `preflab serve` with one worker, simulated annotators looping next -> submit,
and py-spy sampling the worker (with --gil: only while it holds the GIL, i.e. CPU spent in Python). Prints the
functions with the most samples, inclusive and own, and the CPU per label. 127.0.0.1 only; bounded in time.

    .venv/bin/python bench/profile_annotate.py [--postgres URL] [--annotators 8] [--seconds 15] [--out stacks.txt]

py-spy (dev extras) needs ptrace on the server process (as root, or kernel.yama.ptrace_scope=0).
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.annotators import run_annotators, setup_project
from bench.common import Floor, cpu_seconds, fresh_database, serve, sqlite_url, tree_pids


def _frame(frame: str) -> str:
    """'function (path/to/module.py:12)' -> 'function (module.py)': one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})" if where else name


def summarise(raw: str, top: int) -> str:
    """py-spy's collapsed stacks ('frame;frame;... count' per line) -> the top functions, inclusive and own."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    lines = [f"{total:,} samples with the GIL held"]
    for title, counter in (("inclusive", inclusive), ("own", own)):
        lines.append(f"-- top {top}, {title}:")
        lines += [f"  {n / total:6.1%}  {f}" for f, n in counter.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Profile the annotate hot path with py-spy.")
    parser.add_argument(
        "--postgres", metavar="URL", help="PostgreSQL database to use (emptied); default: a temporary SQLite file"
    )
    parser.add_argument("--annotators", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--out", help="also keep py-spy's collapsed stacks here")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    url = args.postgres or sqlite_url()
    fresh_database(url)
    setup = setup_project(url, annotators=args.annotators, prompts=args.prompts)
    with serve(url, workers=1) as server, tempfile.TemporaryDirectory() as tmp:
        run_annotators(server.port, setup.project_id, setup.tokens, seconds=1)  # warm up: statement caches, imports
        pids = tree_pids(server.pid)
        worker = pids[-1]  # one worker: uvicorn runs the app in the process it started, or in its one child
        floor = Floor.measure(server.port, worker, args.annotators, min(5.0, args.seconds)).cpu_ms
        raw = Path(tmp) / "stacks.txt"
        command = [py_spy, "record", "--gil", "--nonblocking", "--format", "raw", "--rate", "250"]
        command += ["--duration", str(int(args.seconds)), "--pid", str(worker), "--output", str(raw)]
        spy = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # py-spy attaches
        cpu = cpu_seconds(worker)
        stats_box = []
        thread = threading.Thread(
            target=lambda: stats_box.append(run_annotators(server.port, setup.project_id, setup.tokens, seconds=args.seconds))
        )
        thread.start()
        thread.join()
        cpu = cpu_seconds(worker) - cpu
        _, err = spy.communicate(timeout=60)
        stats = stats_box[0]
        print(stats.summary())
        per_label = cpu / max(1, len(stats.accepted)) * 1000
        print(
            f"worker CPU {per_label:.1f} ms/label (py-spy's sampling included); floor: {floor:.2f} ms/request of GET /healthz, "
            f"so a label costs {per_label / (2 * floor):.1f}x two empty requests"
        )
        if not raw.exists():
            sys.exit(f"py-spy wrote nothing: {err.decode(errors='replace')[-2000:]}")
        text = raw.read_text()
        if args.out:
            Path(args.out).write_text(text)
        print(summarise(text, args.top))


if __name__ == "__main__":
    main()
