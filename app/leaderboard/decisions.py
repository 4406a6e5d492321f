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

    by_size: dict[int, list[int]] = {}
    flat_ids: list[list[int]] = []
    flat_tier: list[list[int]] = []
    for i, tiers in enumerate(labels):
        ids = [r for tier in tiers for r in tier]
        flat_ids.append(ids)
        flat_tier.append([k for k, tier in enumerate(tiers) for _ in tier])
        by_size.setdefault(len(ids), []).append(i)
    parts: list[tuple[np.ndarray, ...]] = []
    for size, members in by_size.items():
        if size < 2:
            continue
        rows = np.array(members, dtype=np.int64)
        stacked = np.array([flat_ids[i] for i in members], dtype=np.int64)
        tier = np.array([flat_tier[i] for i in members], dtype=np.int64)
        iu, ju = np.triu_indices(size, 1)
        a, b = stacked[:, iu].ravel(), stacked[:, ju].ravel()
        first_better = np.sign(tier[:, ju] - tier[:, iu]).ravel()  # +1: a in a better (lower) tier than b
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
