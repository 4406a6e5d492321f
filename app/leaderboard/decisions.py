"""From labels to decisions between models (docs/leaderboard.md). Pure: no database.

The pairs are the export's (app/export/pairs.py, mode "all" with ties kept): a ranking gives every pair of
responses in different tiers, and a tie for two responses in one tier; a pairwise label is a ranking of two.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.export.pairs import select_pairs
from app.rankings import Tiers

if TYPE_CHECKING:
    import numpy as np


def tiers_from_scores(scores: Mapping[int, float]) -> Tiers:
    """A rating criterion's scores (response id -> value) as tiers: higher first, equal scores tied."""
    by_value: dict[float, list[int]] = {}
    for response_id, value in scores.items():
        by_value.setdefault(value, []).append(response_id)
    return [sorted(by_value[value]) for value in sorted(by_value, reverse=True)]


@dataclass
class DecisionList:
    """Decisions as parallel lists: model names, score 1 (first won) or ½ (tie), and the prompt of each."""

    first: list[str] = field(default_factory=list)
    second: list[str] = field(default_factory=list)
    score: list[float] = field(default_factory=list)
    prompt: list[int] = field(default_factory=list)
    same_model: int = 0
    no_model: int = 0

    def add_label(self, prompt_id: int, tiers: Tiers, models: Mapping[int, str | None]) -> None:
        for better, worse, distance in select_pairs(tiers, "all", keep_ties=True):
            if distance == 0 and better > worse:
                continue  # a tie comes in both orders; it is one decision
            first, second = models.get(better), models.get(worse)
            if first is None or second is None:
                self.no_model += 1
            elif first == second:
                self.same_model += 1
            else:
                self.first.append(first)
                self.second.append(second)
                self.score.append(0.5 if distance == 0 else 1.0)
                self.prompt.append(prompt_id)


@dataclass(frozen=True)
class LabelPairs:
    """Every decision of many labels as arrays (one entry per unordered response pair of a label; docs/leaderboard.md
    "Decisions"): the same pairs `DecisionList.add_label` takes from `select_pairs`, built without a per-pair loop."""

    label: "np.ndarray"  # index of the label in the list given
    lo: "np.ndarray"  # the pair's smaller response id
    hi: "np.ndarray"  # its larger one
    sign: "np.ndarray"  # +1: the label put lo above hi; -1: below; 0: tied


def label_pairs(labels: Sequence[Tiers]) -> LabelPairs:
    """Labels of the same size are stacked and paired by index, so the work per pair is numpy's."""
    import numpy as np  # here: the app starts without numpy

    ids = [r for tiers in labels for tier in tiers for r in tier]
    tier = [k for tiers in labels for k, t in enumerate(tiers) for _ in t]
    sizes = [sum(len(t) for t in tiers) for tiers in labels]
    return _stacked_pairs(np.array(ids, dtype=np.int64), np.array(tier, dtype=np.int64), np.array(sizes, dtype=np.int64))


def label_pairs_from_json(texts: Sequence[str]) -> LabelPairs:
    """`label_pairs` of labels given as their JSON text (as the database returns a ranking column read as text),
    parsed by numpy instead of into Python lists: the response ids are the runs of digits, a label is a line, and an
    id's tier is the number of "]" before it in its label ("[[12], [15, 13], [14]]": 12 in tier 0, 15 and 13 in 1)."""
    import numpy as np

    if not texts:
        return _stacked_pairs(*(np.zeros(0, dtype=np.int64),) * 3)
    text = np.frombuffer(("\n".join(texts) + "\n").encode(), dtype=np.uint8)
    digit = (text >= 48) & (text <= 57)
    starts = digit & ~np.concatenate([[False], digit[:-1]])
    start_at = np.flatnonzero(starts)
    line = np.cumsum(text == 10)  # the label of each byte (newlines before it)
    closes = np.cumsum(text == 93)  # "]" up to and including each byte
    line_start = np.concatenate([[0], np.flatnonzero(text == 10)[:-1] + 1])
    label = line[start_at]
    tier = closes[start_at] - closes[line_start][label]
    # Each digit times its power of ten, summed per number (ids are well under 10^18).
    at = np.flatnonzero(digit)
    number = np.cumsum(starts)[at] - 1
    end = np.flatnonzero(digit & ~np.concatenate([digit[1:], [False]]))  # last digit of each number
    place = end[number] - at
    ids = np.add.reduceat((text[at] - 48).astype(np.int64) * 10**place, np.flatnonzero(starts[at]))
    sizes = np.bincount(label, minlength=len(texts))
    return _stacked_pairs(ids, tier, sizes)


def _stacked_pairs(ids: "np.ndarray", tier: "np.ndarray", sizes: "np.ndarray") -> LabelPairs:
    """ids and tiers of every label, one after the other (label i has sizes[i] of them): the pairs of each label."""
    import numpy as np

    offset = np.cumsum(sizes) - sizes
    parts: list[tuple[np.ndarray, ...]] = []
    for size in np.flatnonzero(np.bincount(sizes)).tolist() if len(sizes) else []:
        if size < 2:
            continue
        rows = np.flatnonzero(sizes == size)
        at = offset[rows][:, None] + np.arange(size)
        stacked, levels = ids[at], tier[at]
        iu, ju = np.triu_indices(size, 1)
        a, b = stacked[:, iu].ravel(), stacked[:, ju].ravel()
        first_better = np.sign(levels[:, ju] - levels[:, iu]).ravel()  # +1: a in a better (lower) tier than b
        swap = a > b
        parts.append(
            (
                np.repeat(rows, len(iu)),
                np.where(swap, b, a),
                np.where(swap, a, b),
                np.where(swap, -first_better, first_better).astype(np.int8),
            )
        )
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return LabelPairs(empty, empty, empty, empty.astype(np.int8))
    label, lo, hi, sign = (np.concatenate(column) for column in zip(*parts, strict=True))
    return LabelPairs(label, lo, hi, sign)
