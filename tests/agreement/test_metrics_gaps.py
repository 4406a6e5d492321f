"""Agreement rules the hand-computed reports left open (issue #12, item 8, known gaps): leave-one-out leaves the
annotator's own label out, position bias with tied top tiers and with pairwise ties, and a preference stated
without a strength. Expected values are worked out in the comments or taken from the `krippendorff` package."""

import krippendorff
import numpy as np
import pytest
from scipy import stats

from app.agreement import metrics as m
from app.agreement.metrics import PairwiseLabel, RankingLabel
from app.agreement.schemas import AnnotatorRow, PositionBias


def _by_id(report) -> dict[int, AnnotatorRow]:
    return {a.annotator_id: a for a in report.annotators}


class TestLeaveOneOutLeavesTheOwnLabelOut:
    def test_two_opposite_rankings_disagree_fully(self):
        # Each annotator's only other is the opposite ranking: score 0. With its own label in, the mean
        # ranks would tie (1.5, 1.5) and score 0.5.
        labels = [RankingLabel(1, 1, [[1], [2]]), RankingLabel(1, 2, [[2], [1]])]
        rows = _by_id(m.agreement_report(labels, kind="ranking"))
        assert [(rows[a].loo_agreement.value, rows[a].loo_agreement.n) for a in (1, 2)] == [(0.0, 1), (0.0, 1)]

    def test_four_annotators(self):
        # Ranks of responses (1, 2, 3): A1 (1, 2, 3), A2 (1, 2, 3), A3 (2, 1, 3), A4 (3, 2, 1).
        # A1: others' means (2, 5/3, 7/3) prefer 2 over 1 (A1: 1, score 0), 1 over 3 and 2 over 3 (agree): 2/3; A2 alike.
        # A3: others (5/3, 2, 7/3) prefer 1 over 2 (A3: 2, score 0), agree on the rest: 2/3.
        # A4: others (4/3, 5/3, 3) order 1, 2, 3; A4 reverses all three: 0.
        # Own label included, the means of all four (7/4, 7/4, 10/4) would tie 1 and 2: A1 2.5/3, A4 0.5/3.
        labels = [
            RankingLabel(1, 1, [[1], [2], [3]]),
            RankingLabel(1, 2, [[1], [2], [3]]),
            RankingLabel(1, 3, [[2], [1], [3]]),
            RankingLabel(1, 4, [[3], [2], [1]]),
        ]
        rows = _by_id(m.agreement_report(labels, kind="ranking"))
        assert [rows[a].loo_agreement.value for a in (1, 2, 3, 4)] == pytest.approx([2 / 3, 2 / 3, 2 / 3, 0.0])
        assert all(rows[a].loo_agreement.n == 3 for a in (1, 2, 3, 4))

    def test_pairwise_majority_of_the_others(self):
        # P1 votes A1 a, A2 a, A3 b. A1: the others a, b split: consensus tie, 0.5 (own vote in: a wins, 1).
        # A3: the others a, a: consensus a against A3's b, 0. P2: A1 a, A2 b: each against the other, 0
        # (own vote in: a tie, 0.5). So A1 (0.5 + 0) / 2, A2 (0.5 + 0) / 2, A3 0 / 1.
        labels = [
            PairwiseLabel(1, 1, 10, 11, "a"),
            PairwiseLabel(1, 2, 10, 11, "a"),
            PairwiseLabel(1, 3, 10, 11, "b"),
            PairwiseLabel(2, 1, 20, 21, "a"),
            PairwiseLabel(2, 2, 20, 21, "b"),
        ]
        rows = _by_id(m.agreement_report(labels, kind="pairwise"))
        assert [(rows[a].loo_agreement.value, rows[a].loo_agreement.n) for a in (1, 2, 3)] == [(0.25, 2), (0.25, 2), (0.0, 1)]


class TestPositionBias:
    def test_tied_top_tiers(self):
        # Chance per label = |top tier| / K; a hit is the response shown first anywhere in the top tier.
        # P1 top {1, 2}, 2 shown first: hit, 2/3. P2 strict, 5 shown first, ranked second: miss, 1/4.
        # P3 top {8, 9, 10}, 11 shown first: miss, 3/4. P4 one tier: hit, 1. P5 no display order: not counted.
        labels = [
            RankingLabel(1, 1, [[1, 2], [3]], shown_order=[2, 3, 1]),
            RankingLabel(2, 1, [[4], [5], [6], [7]], shown_order=[5, 4, 6, 7]),
            RankingLabel(3, 1, [[8, 9, 10], [11]], shown_order=[11, 8, 9, 10]),
            RankingLabel(4, 1, [[12, 13]], shown_order=[13, 12]),
            RankingLabel(5, 1, [[14], [15]]),
        ]
        bias = m.agreement_report(labels, kind="ranking").annotators[0].position_bias
        expected = (2 / 3 + 1 / 4 + 3 / 4 + 1) / 4  # = 2/3
        assert bias.model_dump() == {
            "observed": 0.5, "expected": pytest.approx(expected), "hits": 2, "n": 4,
            "p_value": pytest.approx(stats.binomtest(2, 4, expected).pvalue), "reason": None,
        }  # fmt: skip

    def test_pairwise_ties_carry_no_position(self):
        # Hits: P1 a = 10 shown first; P3 b = 31 shown first; P6 a = 61 shown first (responses given as (61, 60)).
        # Miss: P4 a = 40, but 41 shown first. Ties P2, P5 are left out: 3 of 4 at chance 1/2.
        labels = [
            PairwiseLabel(1, 1, 10, 11, "a", shown_order=[10, 11]),
            PairwiseLabel(2, 1, 20, 21, "tie", shown_order=[20, 21]),
            PairwiseLabel(3, 1, 30, 31, "b", shown_order=[31, 30]),
            PairwiseLabel(4, 1, 40, 41, "a", shown_order=[41, 40]),
            PairwiseLabel(5, 1, 50, 51, "tie", shown_order=[51, 50]),
            PairwiseLabel(6, 1, 61, 60, "a", shown_order=[61, 60]),
        ]
        bias = m.agreement_report(labels, kind="pairwise").annotators[0].position_bias
        assert bias == PositionBias(observed=0.75, expected=0.5, hits=3, n=4, p_value=0.625)  # binomial: 5/16 x 2

    def test_only_ties_have_no_position_to_measure(self):
        labels = [PairwiseLabel(q, 1, 2 * q, 2 * q + 1, "tie", shown_order=[2 * q, 2 * q + 1]) for q in range(3)]
        bias = m.agreement_report(labels, kind="pairwise").annotators[0].position_bias
        assert (bias.n, bias.hits, bias.p_value, bias.reason) == (0, 0, None, "no display order was recorded")

    @pytest.mark.parametrize("choice, alert", [("a", True), ("b", False)])
    def test_the_alert_needs_significance_and_more_than_chance(self, choice, alert):
        # Always the first shown (a) or always the second (b), 10 times: p = 2 x 0.5^10 < 0.01 either way;
        # only putting the first one on top is a bias towards it.
        labels = [PairwiseLabel(q, 1, 2 * q, 2 * q + 1, choice, shown_order=[2 * q, 2 * q + 1]) for q in range(10)]
        row = m.agreement_report(labels, kind="pairwise").annotators[0]
        assert row.position_bias.p_value == pytest.approx(2 * 0.5**10)
        assert row.bias_alert is alert


class TestMissingStrength:
    def test_a_preference_without_strength_is_missing_not_zero(self):
        # Strength index 0 = strongest, 3 levels (highest index stated: 2). Signed: A strongest -3 ... B strongest +3,
        # a tie 0, a preference without strength missing. Prompts as columns, annotators as rows:
        # A1: a/0 = -3, b/0 = +3, a/None = missing; A2: a/1 = -2, tie = 0, b/2 = +1; A3: a/None = missing, b/2 = +1, a/1 = -2.
        labels = [
            PairwiseLabel(1, 1, 1, 2, "a", 0),
            PairwiseLabel(1, 2, 1, 2, "a", 1),
            PairwiseLabel(1, 3, 1, 2, "a", None),
            PairwiseLabel(2, 1, 3, 4, "b", 0),
            PairwiseLabel(2, 2, 3, 4, "tie", None),
            PairwiseLabel(2, 3, 3, 4, "b", 2),
            PairwiseLabel(3, 1, 5, 6, "a", None),
            PairwiseLabel(3, 2, 5, 6, "b", 2),
            PairwiseLabel(3, 3, 5, 6, "a", 1),
        ]
        data = [[-3, 3, np.nan], [-2, 0, 1], [np.nan, 1, -2]]
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
        project = m.agreement_report(labels, kind="pairwise").project
        strength = project["krippendorff_alpha_ordinal_strength"]
        assert (strength.value, strength.n, strength.reason) == (pytest.approx(expected), 3, None)
        as_zero = krippendorff.alpha(reliability_data=np.nan_to_num(data), level_of_measurement="ordinal")
        assert strength.value != pytest.approx(as_zero)  # the rule matters for this data
        # The labels without a strength still count as choices.
        nominal = [[0, 1, 0], [0, 2, 1], [0, 1, 0]]  # a = 0, b = 1, tie = 2
        assert project["krippendorff_alpha_nominal"].value == pytest.approx(
            krippendorff.alpha(reliability_data=nominal, level_of_measurement="nominal")
        )

    def test_a_unit_left_with_one_strength_is_not_pairable(self):
        # P1: only A1 stated a strength, so P1 drops out; P2 has two: n = 1 unit.
        labels = [
            PairwiseLabel(1, 1, 1, 2, "a", 0),
            PairwiseLabel(1, 2, 1, 2, "a", None),
            PairwiseLabel(2, 1, 3, 4, "a", 0),
            PairwiseLabel(2, 2, 3, 4, "b", 1),
        ]
        strength = m.agreement_report(labels, kind="pairwise").project["krippendorff_alpha_ordinal_strength"]
        expected = krippendorff.alpha(reliability_data=[[-2, -2], [np.nan, 1]], level_of_measurement="ordinal")
        assert strength.n == 1 and strength.value == pytest.approx(expected)
