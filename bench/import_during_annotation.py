"""Imports that never block annotators: N annotators loop without pause (bench/annotators.py) against a served
SQLite database while a researcher uploads a big batch; the import alone first, then under that load.

Prints p50/p95/max per call (next, submit) during the import, and the import's time alone and under load
(the targets, issue #16: no call over 1 s with 8 annotators during a 60,000-prompt import; an import under load
within 1.5x of its time alone). Everything on 127.0.0.1, bounded in time.

    .venv/bin/python bench/import_during_annotation.py [--prompts 60000] [--annotators 8]
"""

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.annotators import run_annotators, setup_project
from bench.common import api_token, empty_project, fresh_database, serve, sqlite_url, upload, write_jsonl


def _timed_upload(port: int, token: str, project_id: int, path: Path) -> float:
    start = time.perf_counter()
    status, body = upload(port, token, project_id, path)
    if status != 200:
        raise SystemExit(f"the import failed: {status} {body[:500]!r}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=60_000, help="prompts in the imported file")
    parser.add_argument("--annotators", type=int, default=8)
    args = parser.parse_args()

    directory = Path(tempfile.mkdtemp(prefix="preflab-import-bench-"))
    url = sqlite_url(directory)
    fresh_database(url)
    data = write_jsonl(directory / "batch.jsonl", args.prompts, k=2, prompt_chars=200, response_chars=300)
    setup = setup_project(url, annotators=args.annotators, prompts=20_000, k=2)  # work enough for the whole run
    token = api_token(url, role="researcher", email="uploader@example.org")
    alone_project, loaded_project = empty_project(url, "alone"), empty_project(url, "under load")
    print(f"SQLite, {args.prompts:,}-prompt file of {data.stat().st_size / 2**20:.0f} MB, {args.annotators} annotators")
    with serve(url) as server:
        alone = _timed_upload(server.port, token, alone_project, data)
        print(f"  import alone: {alone:.1f} s ({args.prompts / alone:,.0f} prompts/s)")
        under_load: dict[str, float] = {}

        def upload() -> None:
            time.sleep(1.0)  # the annotators are at full speed first
            under_load["seconds"] = _timed_upload(server.port, token, loaded_project, data)

        uploader = threading.Thread(target=upload)
        uploader.start()
        # The annotators keep going for the whole import (about as long as alone, plus margin).
        stats = run_annotators(server.port, setup.project_id, setup.tokens, seconds=1.0 + 2.0 * alone + 5.0)
        uploader.join(timeout=600)
    loaded = under_load.get("seconds")
    print(f"  import under load: {loaded:.1f} s = {loaded / alone:.2f}x alone" if loaded else "  import under load: not finished")
    print(stats.summary())
    for call, values in stats.latencies.items():
        print(f"  {call:<7} max {max(values, default=0) * 1000:7.1f} ms")
    worst = max((max(values, default=0) for values in stats.latencies.values()), default=0)
    print(f"  worst call {worst * 1000:.0f} ms (target: under 1000 ms)")


if __name__ == "__main__":
    main()
