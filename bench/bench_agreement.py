"""Benchmark: the full agreement report for 100,000 prompts × 4 responses × 3 annotators.

    .venv/bin/python bench/bench_agreement.py [--prompts N]

Prints the seconds and peak memory (tracemalloc peak of Python/numpy allocations, and the process's
max RSS) of `agreement_report` on generated rankings with ties. Target: under 10 s on one core.
"""

import argparse
import random
import resource
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.agreement.metrics import RankingLabel, agreement_report


def generate(n_prompts: int, k: int = 4, annotators: int = 3, seed: int = 0) -> list[RankingLabel]:
    rng = random.Random(seed)
    labels = []
    for q in range(n_prompts):
        ids = [q * k + j for j in range(k)]
        for a in range(annotators):
            order = ids[:]
            rng.shuffle(order)
            tiers = [[order[0]]]
            for rid in order[1:]:
                (tiers[-1].append(rid) if rng.random() < 0.15 else tiers.append([rid]))
            labels.append(RankingLabel(q, a, tiers, shown_order=rng.sample(ids, k)))
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100_000)
    args = parser.parse_args()
    labels = generate(args.prompts)
    start = time.perf_counter()
    report = agreement_report(labels, kind="ranking")
    seconds = time.perf_counter() - start
    tracemalloc.start()  # a second run for memory: tracemalloc slows the first one down
    agreement_report(labels, kind="ranking")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"agreement report: {args.prompts:,} prompts x 4 responses x 3 annotators ({len(labels):,} labels)")
    print(f"  time            {seconds:.2f} s")
    print(f"  peak allocated  {peak / 2**20:.0f} MiB (tracemalloc, during the report)")
    print(f"  max RSS         {rss:.0f} MiB (whole process, including the generated input)")
    print(f"  alpha ordinal   {report['project']['krippendorff_alpha_ordinal_rank']['value']:.4f} (random data: ~0)")


if __name__ == "__main__":
    main()
