"""From labels to chosen/rejected pairs."""

import itertools
from collections.abc import Iterator


def pairs_from_tiers(tiers: list[list[int]]) -> Iterator[tuple[int, int]]:
    """Every (better, worse) pair of a ranking: K responses without ties give K·(K−1)/2 pairs.

    Responses in the same tier are tied and give no pair.
    """
    for i, better_tier in enumerate(tiers):
        for worse_tier in tiers[i + 1 :]:
            for better in better_tier:
                for worse in worse_tier:
                    yield better, worse


def select_pairs(tiers: list[list[int]], mode: str, keep_ties: bool) -> Iterator[tuple[int, int, int]]:
    """(better, worse, tier distance) pairs of a ranking; distance 0 is a tie, written in both orders.

    mode: "all" (every pair, InstructGPT's K choose 2), "best_vs_rest" (the top tier against each
    other response, as UltraFeedback-binarized picks its chosen one), "adjacent" (neighbouring tiers only).
    Ties (with keep_ties) are the pairs inside a tier the mode looks at: every tier, or the top one. A trainer
    that ignores the `tie` column reads "chosen" as the better one; a tie in both orders pulls the two rewards
    together and teaches no direction (one order alone would teach the lower id is better).
    """
    if mode == "all":
        for i, better_tier in enumerate(tiers):
            for d, worse_tier in enumerate(tiers[i + 1 :], 1):
                for better in better_tier:
                    for worse in worse_tier:
                        yield better, worse, d
    elif mode == "best_vs_rest":
        for d, worse_tier in enumerate(tiers[1:], 1):
            for better in tiers[0]:
                for worse in worse_tier:
                    yield better, worse, d
    elif mode == "adjacent":
        for better_tier, worse_tier in itertools.pairwise(tiers):
            for better in better_tier:
                for worse in worse_tier:
                    yield better, worse, 1
    else:
        raise ValueError(f"unknown pairs mode {mode!r}")
    if keep_ties:
        for tier in tiers[:1] if mode == "best_vs_rest" else tiers:
            ordered = sorted(tier)
            for x, a in enumerate(ordered):
                for b in ordered[x + 1 :]:
                    yield a, b, 0
                    yield b, a, 0
