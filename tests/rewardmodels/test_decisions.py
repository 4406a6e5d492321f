"""label_pairs (the decisions as arrays) against the leaderboard's per-label pair loop (select_pairs), and
consensus.borda_pairs against consensus.borda prompt by prompt."""

import random

import numpy as np

from app.agreement.consensus import borda, borda_pairs
from app.agreement.metrics import RankingLabel
from app.export.pairs import select_pairs
from app.leaderboard.decisions import label_pairs


def random_tiers(rng: random.Random, ids: list[int]) -> list[list[int]]:
    order = rng.sample(ids, len(ids))
    tiers, k = [], 0
    while k < len(order):
        size = rng.choice([1, 1, 2])
        tiers.append(sorted(order[k : k + size]))
        k += size
    return tiers


def test_label_pairs_equal_the_pairs_of_select_pairs():
    rng = random.Random(3)
    labels = [random_tiers(rng, list(range(10 * i, 10 * i + rng.randint(2, 6)))) for i in range(200)]
    pairs = label_pairs(labels)
    got = sorted(zip(pairs.label.tolist(), pairs.lo.tolist(), pairs.hi.tolist(), pairs.sign.tolist(), strict=True))
    expected = []
    for i, tiers in enumerate(labels):
        for better, worse, distance in select_pairs(tiers, "all", keep_ties=True):
            if distance == 0:
                if better < worse:
                    expected.append((i, better, worse, 0))
            else:
                expected.append((i, min(better, worse), max(better, worse), 1 if better < worse else -1))
    assert got == sorted(expected)


def test_borda_pairs_order_as_borda_does():
    rng = random.Random(5)
    labels_by_prompt = {}
    for p in range(60):
        ids = list(range(100 * p, 100 * p + rng.randint(2, 5)))
        labels_by_prompt[p] = [RankingLabel(p, a, random_tiers(rng, ids), None) for a in range(rng.randint(1, 4))]
    flat = [label for labels in labels_by_prompt.values() for label in labels]
    pairs = label_pairs([label.tiers for label in flat])
    lo, hi, sign = borda_pairs(pairs.lo, pairs.hi, pairs.sign)
    got = dict(zip(zip(lo.tolist(), hi.tolist(), strict=True), sign.tolist(), strict=True))
    expected = {}
    for labels in labels_by_prompt.values():
        place = {rid: k for k, tier in enumerate(borda(labels).tiers) for rid in tier}
        for r in place:
            for s in place:
                if r < s:
                    expected[r, s] = int(np.sign(place[s] - place[r]))
    assert got == expected


def test_label_pairs_from_json_equal_label_pairs():
    """Both JSON spellings the databases return (SQLite's compact text, PostgreSQL's jsonb with spaces), ids of any
    length, single-response and tied labels."""
    import orjson

    from app.leaderboard.decisions import label_pairs_from_json

    rng = random.Random(11)
    labels = [random_tiers(rng, rng.sample(range(1, 10 ** rng.randint(1, 12)), rng.randint(1, 6))) for _ in range(300)]
    expected = label_pairs(labels)
    for spell in (lambda t: orjson.dumps(t).decode(), lambda t: str(t)):
        got = label_pairs_from_json([spell(t) for t in labels])
        for name in ("label", "lo", "hi", "sign"):
            assert getattr(got, name).tolist() == getattr(expected, name).tolist(), name
