"""From labels to decisions between models (docs/leaderboard.md). Pure: no database.

The pairs are the export's (app/export/pairs.py, mode "all" with ties kept): a ranking gives every pair of
responses in different tiers, and a tie for two responses in one tier; a pairwise label is a ranking of two.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.export.pairs import select_pairs
from app.rankings import Tiers


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
