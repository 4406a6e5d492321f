"""Small reports worked out by hand, every field checked: the reference tests compare the headline
numbers on random data; these pin the per-annotator, per-prompt and per-pair parts, the reasons
shown when a number is undefined, and the errors on bad input (see TESTING.md, mutation testing)."""

import math
import re

import krippendorff
import numpy as np
import pytest
from scipy import stats

from app.agreement import metrics as m
from app.agreement.metrics import PairwiseLabel, RankingLabel, RatingLabel
from app.agreement.schemas import AgreementReport, Metric, Summary


def _ranking_labels():
    """P1 (responses 1, 2, 3) by three annotators, P2 (4, 5) by two; annotator 1 ties P2."""
    return [
        RankingLabel(1, 1, [[1], [2], [3]], shown_order=[1, 2, 3]),
        RankingLabel(1, 2, [[2], [1], [3]], shown_order=[3, 1, 2]),
        RankingLabel(1, 3, [[1, 2], [3]], shown_order=[2, 1, 3]),
        RankingLabel(2, 1, [[4, 5]], shown_order=[4, 5]),
        RankingLabel(2, 2, [[5], [4]]),
    ]


class TestRankingReportByHand:
    """Comparisons (1,2), (1,3), (2,3) on P1: annotator 1 +,+,+; 2 -,+,+; 3 tie,+,+. On P2 (4,5):
    annotator 1 tie, 2 -."""

    @pytest.fixture  # per test, not per class: mutmut maps a function to the tests that call it
    def report(self):
        return m.agreement_report(_ranking_labels(), kind="ranking")

    def test_summary(self, report):
        assert report.kind == "ranking"
        # even split: (1, 2) on P1 has one vote each way (annotator 3's tie abstains)
        assert report.summary == Summary(labels=5, prompts=2, annotators=3, prompts_with_2plus=2, even_splits=1)

    def test_agreement_rates(self, report):
        # tie_half: P1 agree 1 (column 1,2: one tie against two opposite votes, 0.5 x 1 x 2) + 3 + 3 of 9;
        # P2 0.5 of 1. tie_as_category: P1 0 + 3 + 3 of 9, P2 0 of 1. strict_only: P1 0 + 3 + 3 of 1 + 3 + 3, P2 nothing.
        project = report.project
        expected = {
            "agreement_tie_half_pooled": (7.5 / 10, 10),
            "agreement_tie_half_prompt_mean": ((7 / 9 + 0.5) / 2, 2),
            "agreement_tie_as_category_pooled": (6 / 10, 10),
            "agreement_tie_as_category_prompt_mean": ((6 / 9 + 0) / 2, 2),
            "agreement_strict_only_pooled": (6 / 7, 7),
            "agreement_strict_only_prompt_mean": (6 / 7, 1),
        }
        for name, (value, n) in expected.items():
            assert project[name].value == pytest.approx(value), name
            assert project[name].n == n, name
            assert project[name].reason is None
        assert "WebGPT" in project["agreement_tie_half_pooled"].definition
        assert "pooled over all annotator pairs" in project["agreement_tie_half_pooled"].definition
        assert "mean of per-prompt rates" in project["agreement_strict_only_prompt_mean"].definition
        assert "either annotator tied are dropped" in project["agreement_strict_only_pooled"].definition
        assert "a tie is its own label" in project["agreement_tie_as_category_pooled"].definition

    def test_kendall_w_and_tau(self, report):
        # W = 12 S / (m^2 (k^3 - k) - m sum T). P1: rank sums 4.5, 4.5, 9 around 6 -> S = 13.5,
        # T = 2^3 - 2 = 6: 162 / (9 x 24 - 18) = 9/11. P2: sums 3.5, 2.5 around 3 -> S = 0.5, T = 6: 6 / 12.
        w = report.project["kendall_w_mean"]
        assert w.value == pytest.approx((9 / 11 + 0.5) / 2) and w.n == 2
        taus = [
            stats.kendalltau([1, 2, 3], [2, 1, 3]).statistic,
            stats.kendalltau([1, 2, 3], [1.5, 1.5, 3]).statistic,
            stats.kendalltau([2, 1, 3], [1.5, 1.5, 3]).statistic,
        ]
        tau = report.project["kendall_tau_b_mean"]
        assert tau.value == pytest.approx(np.mean(taus)) and tau.n == 3  # P2: annotator 1 tied all

    def test_prompts(self, report):
        assert [q.model_dump() for q in report.prompts] == [
            {"prompt_id": 1, "n_annotators": 3, "agreement": pytest.approx(7 / 9), "n_comparisons": 9,
             "kendall_w": pytest.approx(9 / 11), "reason": None, "even_splits": 1, "external_id": None},
            {"prompt_id": 2, "n_annotators": 2, "agreement": 0.5, "n_comparisons": 1, "kendall_w": 0.5, "reason": None,
             "even_splits": 0, "external_id": None},
        ]  # fmt: skip

    def test_annotator_pairs(self, report):
        pairs = {(p.annotator_a, p.annotator_b): p for p in report.annotator_pairs}
        assert set(pairs) == {(1, 2), (1, 3), (2, 3)}
        assert pairs[(1, 2)].n_shared == 2 and pairs[(1, 2)].metric.n == 1  # P2 has no tau: a single tie
        assert pairs[(1, 2)].metric.value == pytest.approx(1 / 3)
        assert pairs[(1, 3)].n_shared == 1 and pairs[(1, 3)].metric.value == pytest.approx(2 / math.sqrt(6))
        assert pairs[(2, 3)].metric.value == pytest.approx(2 / math.sqrt(6))
        assert pairs[(1, 2)].metric.definition == m.DEFINITIONS["kendall_tau_b_pair"]

    def test_leave_one_out(self, report):
        # Annotator 1 on P1: the others' mean ranks (1.75, 1.25, 3) prefer 2 over 1 (score 0), then
        # agree on (1,3) and (2,3); on P2 the other prefers 5, annotator 1 tied (0.5): 2.5 / 4.
        # Annotator 2 likewise 2.5 / 4. Annotator 3: the others' means (1.5, 1.5, 3) tie 1 and 2 as it did: 3 / 3.
        by_id = {a.annotator_id: a for a in report.annotators}
        assert [(a, by_id[a].n_labels, by_id[a].n_shared) for a in (1, 2, 3)] == [(1, 2, 2), (2, 2, 2), (3, 1, 1)]
        assert by_id[1].loo_agreement.value == pytest.approx(0.625) and by_id[1].loo_agreement.n == 4
        assert by_id[2].loo_agreement.value == pytest.approx(0.625) and by_id[2].loo_agreement.n == 4
        assert by_id[3].loo_agreement.value == 1.0 and by_id[3].loo_agreement.n == 3

    def test_position_bias(self, report):
        # Chance = |top tier| / K. Annotator 1: response 1 shown first and on top (1/3), P2 all tied (2/2).
        by_id = {a.annotator_id: a.position_bias for a in report.annotators}
        assert by_id[1].model_dump() == {
            "observed": 1.0, "expected": pytest.approx(2 / 3), "hits": 2, "n": 2,
            "p_value": pytest.approx(stats.binomtest(2, 2, 2 / 3).pvalue), "reason": None,
        }  # fmt: skip
        assert (by_id[2].hits, by_id[2].n, by_id[2].observed) == (0, 1, 0.0)  # P2 has no display order
        assert by_id[2].expected == pytest.approx(1 / 3)
        assert by_id[2].p_value == pytest.approx(stats.binomtest(0, 1, 1 / 3).pvalue)
        assert (by_id[3].hits, by_id[3].n, by_id[3].expected) == (1, 1, pytest.approx(2 / 3))  # a tied top tier

    def test_alpha_matches_krippendorff(self, report):
        ranks = [[1, 2, 3, 1.5, 1.5], [2, 1, 3, 2, 1], [1.5, 1.5, 3, np.nan, np.nan]]
        expected = krippendorff.alpha(reliability_data=ranks, level_of_measurement="ordinal")
        assert report.project["krippendorff_alpha_ordinal_rank"].value == pytest.approx(expected)
        assert report.project["krippendorff_alpha_ordinal_rank"].n == 5

    def test_the_public_functions_agree_with_the_report(self, report):
        labels = _ranking_labels()
        project = report.project
        assert m.ranking_alpha(labels) == project["krippendorff_alpha_ordinal_rank"]
        assert m.kendall_w(labels) == project["kendall_w_mean"]
        assert m.kendall_tau_b_mean(labels) == project["kendall_tau_b_mean"]
        assert m.pairwise_agreement(labels) == project["agreement_tie_half_pooled"]
        assert m.pairwise_agreement(labels, convention="strict_only", pooling="prompt_mean").value == pytest.approx(6 / 7)
        assert [a.annotator_id for a in report.annotators] == [1, 2, 3]  # by id (annotator_agreement was folded in)
        assert m.prompt_agreement(labels) == report.prompts


def _pairwise_labels():
    """P1 (10, 11): a, a, tie; P2 (20, 21): b, a, b; P3 (30, 31): annotator 1 alone."""
    return [
        PairwiseLabel(1, 1, 10, 11, "a", 0, shown_order=[10, 11]),
        PairwiseLabel(1, 2, 10, 11, "a", 1, shown_order=[11, 10]),
        PairwiseLabel(1, 3, 10, 11, "tie", None, shown_order=[10, 11]),
        PairwiseLabel(2, 1, 20, 21, "b", 0, shown_order=[20, 21]),
        PairwiseLabel(2, 2, 20, 21, "a", 0, shown_order=[21, 20]),
        PairwiseLabel(2, 3, 20, 21, "b", 1),
        PairwiseLabel(3, 1, 30, 31, "a", None),
    ]


class TestPairwiseReportByHand:
    @pytest.fixture  # per test, not per class: mutmut maps a function to the tests that call it
    def report(self):
        return m.agreement_report(_pairwise_labels(), kind="pairwise")

    def test_summary(self, report):
        assert report.kind == "pairwise"
        # no even split: P1 2-0 (+ a tie), P2 1-2
        assert report.summary == Summary(labels=7, prompts=3, annotators=3, prompts_with_2plus=2, even_splits=0)

    def test_agreement_rates(self, report):
        # P1 votes +, +, tie: tie_half agree 1 + 0.5 x 1 x 2 = 2 of 3; P2 -, +, -: 1 of 3.
        project = report.project
        expected = {
            "agreement_tie_half_pooled": 3 / 6,
            "agreement_tie_as_category_pooled": 2 / 6,
            "agreement_tie_as_category_prompt_mean": (1 / 3 + 1 / 3) / 2,
            "agreement_strict_only_pooled": 2 / 4,
            "agreement_strict_only_prompt_mean": (1 + 1 / 3) / 2,
        }
        for name, value in expected.items():
            assert project[name].value == pytest.approx(value), name

    def test_fleiss_and_cohen(self, report):
        # Counts (A, tie, B): P1 (2, 1, 0), P2 (1, 0, 2), P3 (1, 0, 0). p_a = mean(2/6, 2/6) = 1/3 over the
        # prompts with 2+ raters; pi = mean of the shares of all three = (2/3, 1/9, 2/9), p_e = 41/81.
        fleiss = report.project["fleiss_kappa"]
        assert fleiss.value == pytest.approx((1 / 3 - 41 / 81) / (1 - 41 / 81)) and fleiss.n == 2
        # Cohen on P1 and P2: (1, 2) = a/a, b/a: kappa 0; (1, 3) = a/tie, b/b: (2 - 1) / (4 - 1); (2, 3) = 0.
        pairs = {(p.annotator_a, p.annotator_b): p for p in report.annotator_pairs}
        assert {k: (p.n_shared, p.metric.value) for k, p in pairs.items()} == {
            (1, 2): (2, 0.0), (1, 3): (2, pytest.approx(1 / 3)), (2, 3): (2, 0.0),
        }  # fmt: skip
        mean = report.project["cohen_kappa_mean"]
        assert mean.value == pytest.approx(1 / 9) and mean.n == 3
        assert [p.metric.value for p in m.cohen_kappa_pairs(_pairwise_labels())] == pytest.approx([0, 1 / 3, 0])
        assert m.fleiss_kappa(_pairwise_labels()) == fleiss

    def test_alphas_match_krippendorff(self, report):
        nominal = [[0, 1, 0], [0, 0, np.nan], [2, 1, np.nan]]  # a = 0, b = 1, tie = 2; prompts as columns
        strength = [[-2, 2, np.nan], [-1, -2, np.nan], [0, 1, np.nan]]  # a strongest -2 ... b strongest +2
        project = report.project
        assert project["krippendorff_alpha_nominal"].value == pytest.approx(
            krippendorff.alpha(reliability_data=nominal, level_of_measurement="nominal")
        )
        assert project["krippendorff_alpha_ordinal_strength"].value == pytest.approx(
            krippendorff.alpha(reliability_data=strength, level_of_measurement="ordinal")
        )
        assert m.pairwise_alpha(_pairwise_labels(), "ordinal") == project["krippendorff_alpha_ordinal_strength"]
        assert m.pairwise_alpha(_pairwise_labels()) == project["krippendorff_alpha_nominal"]

    def test_annotators(self, report):
        # Leave-one-out (sign of the others' votes): annotator 1 P1 + vs + (1), P2 others +,- = tie vs - (0.5);
        # annotator 2 P1 + vs + (1), P2 - vs + (0); annotator 3 P1 + vs tie (0.5), P2 tie vs - (0.5).
        by_id = {a.annotator_id: a for a in report.annotators}
        assert [(by_id[a].n_labels, by_id[a].n_shared) for a in (1, 2, 3)] == [(3, 2), (2, 2), (2, 2)]
        assert [by_id[a].loo_agreement.value for a in (1, 2, 3)] == [0.75, 0.5, 0.5]
        assert all(by_id[a].loo_agreement.n == 2 for a in (1, 2, 3))
        # Position bias: ties carry no position. 1: chose the first shown on P1, not on P2; 2: neither.
        bias = {a: by_id[a].position_bias for a in (1, 2, 3)}
        assert (bias[1].hits, bias[1].n, bias[1].observed, bias[1].expected) == (1, 2, 0.5, 0.5)
        assert bias[1].p_value == 1.0
        assert (bias[2].hits, bias[2].n, bias[2].p_value) == (0, 2, pytest.approx(0.5))
        assert bias[3].model_dump() == {"observed": None, "expected": None, "hits": 0, "n": 0, "p_value": None,
                           "reason": "no display order was recorded"}  # fmt: skip

    def test_prompts(self, report):
        prompts = report.prompts
        assert [(q.prompt_id, q.n_annotators, q.n_comparisons) for q in prompts] == [(1, 3, 3), (2, 3, 3), (3, 1, 0)]
        assert prompts[0].agreement == pytest.approx(2 / 3) and prompts[1].agreement == pytest.approx(1 / 3)
        assert prompts[2].agreement is None and prompts[2].reason == "fewer than 2 annotators"
        assert all(q.kendall_w is None and q.even_splits == 0 for q in prompts)

    def test_a_label_in_the_other_order_is_turned_round(self):
        # The same preference (response 10 better) stated with the responses the other way round.
        labels = [PairwiseLabel(1, 1, 10, 11, "a", 0), PairwiseLabel(1, 2, 11, 10, "b", 0)]
        assert m.pairwise_agreement(labels).value == 1.0
        assert m.cohen_kappa_pairs(labels)[0].metric.reason == "no variation: both annotators used one and the same category"


class TestUndefinedAndEmpty:
    def test_no_labels(self):
        for metric in (m.ranking_alpha([]), m.kendall_w([]), m.kendall_tau_b_mean([]), m.fleiss_kappa([]),
                       m.pairwise_alpha([]), m.pairwise_alpha([], "ordinal"), m.pairwise_agreement([])):  # fmt: skip
            assert (metric.value, metric.reason, metric.n) == (None, "no labels", 0)
        assert m.pairwise_alpha([], "ordinal").definition == m.DEFINITIONS["krippendorff_alpha_ordinal_strength"]
        assert m.pairwise_alpha([]).definition == m.DEFINITIONS["krippendorff_alpha_nominal"]
        assert m.pairwise_agreement([], convention="strict_only", pooling="prompt_mean").definition.startswith("Share")
        assert m.cohen_kappa_pairs([]) == [] and m.prompt_agreement([]) == []
        assert m.rating_alpha([]) == {}

    @pytest.mark.parametrize("kind", ["ranking", "pairwise"])
    def test_empty_report_names_every_metric(self, kind):
        report = m.agreement_report([], kind=kind)
        own = ["krippendorff_alpha_ordinal_rank", "kendall_w_mean", "kendall_tau_b_mean"]
        if kind == "pairwise":
            own = ["fleiss_kappa", "cohen_kappa_mean", "krippendorff_alpha_nominal", "krippendorff_alpha_ordinal_strength"]
        rates = [m.agreement_name(c, p) for c in m.CONVENTIONS for p in m.POOLINGS]
        assert list(report.project) == rates + own
        assert all(v == Metric(value=None, reason="no labels", n=0, definition=m._definition(k))
                   for k, v in report.project.items())  # fmt: skip
        assert report == AgreementReport(
            kind=kind, summary=Summary(labels=0, prompts=0, annotators=0, prompts_with_2plus=0, even_splits=0),
            project=report.project, criteria={}, annotators=[], annotator_pairs=[], prompts=[],
        )  # fmt: skip

    def test_one_annotator(self):
        labels = [RankingLabel(1, 1, [[1], [2]])]
        report = m.agreement_report(labels, kind="ranking")
        project = report.project
        assert project["agreement_tie_half_pooled"].reason == "no response pair was compared by 2 or more annotators"
        assert project["kendall_w_mean"].reason == "no prompt has 2 or more annotators"
        assert project["kendall_tau_b_mean"].reason == "no prompt has 2 or more annotators"
        assert project["krippendorff_alpha_ordinal_rank"].reason == "no unit was labelled by 2 or more annotators"
        assert report.annotators[0].loo_agreement.reason == "labelled no prompt together with another annotator"
        assert report.annotators[0].position_bias.reason == "no display order was recorded"
        assert report.annotator_pairs == [] and report.summary.prompts_with_2plus == 0
        pairwise = m.agreement_report([PairwiseLabel(1, 1, 1, 2, "a")], kind="pairwise").project
        assert pairwise["fleiss_kappa"].reason == "no prompt was labelled by 2 or more annotators"
        assert pairwise["cohen_kappa_mean"].reason == "no two annotators labelled the same prompt"
        assert pairwise["krippendorff_alpha_ordinal_strength"].reason == "strength was not collected"

    def test_every_ranking_one_tie(self):
        labels = [RankingLabel(1, a, [[1, 2, 3]]) for a in (1, 2)]
        project = m.agreement_report(labels, kind="ranking").project
        assert project["kendall_w_mean"].reason == "no variation: every ranking is one tie"
        assert project["kendall_tau_b_mean"].reason == "no variation: every pair has a ranking that is one tie"
        assert project["agreement_strict_only_pooled"].reason == (
            "no response pair was compared by 2 or more annotators without a tie"
        )
        assert project["agreement_tie_half_pooled"].value == 1.0
        pair = m.agreement_report(labels, kind="ranking").annotator_pairs[0]
        assert pair.metric == Metric(value=None, reason="no variation: one of the rankings is a single tie", n=0,
                                     definition=m.DEFINITIONS["kendall_tau_b_pair"])  # fmt: skip

    def test_no_variation(self):
        labels = [PairwiseLabel(q, a, 1, 2, "a", 0) for q in (1, 2) for a in (1, 2)]
        project = m.agreement_report(labels, kind="pairwise").project
        assert project["fleiss_kappa"] == Metric(value=None, reason="no variation: every label is the same", n=2,
                                                 definition=m.DEFINITIONS["fleiss_kappa"])  # fmt: skip
        assert project["cohen_kappa_mean"].reason == "undefined for every annotator pair"
        assert project["krippendorff_alpha_nominal"].reason == "no variation: every value is the same"
        assert project["krippendorff_alpha_nominal"].n == 2

    def test_nan_never_leaks(self):
        metric = m._metric("fleiss_kappa", float("nan"), 3)
        assert (metric.value, metric.reason, metric.n) == (None, "not defined", 3)
        assert m._metric("fleiss_kappa", float("inf"), 1, "kept").reason == "kept"


class TestBadInput:
    @pytest.mark.parametrize(
        "labels, message",
        [
            ([RankingLabel(7, 1, [])], "prompt 7: a ranking needs at least one non-empty tier"),
            ([RankingLabel(7, 1, [[1], []])], "a ranking: a ranking needs at least one non-empty tier"),
            (
                [RankingLabel(7, 1, [[1], [2]]), RankingLabel(7, 2, [[1]])],
                re.escape(
                    "prompt 7, annotator 2: a ranking must list each of the prompt's responses exactly once: "
                    "expected [1, 2], got [1]"
                ),
            ),
            (
                [RankingLabel(7, 1, [[1], [1]])],
                re.escape(
                    "prompt 7, annotator 1: a ranking must list each of the prompt's responses exactly once: "
                    "expected [1], got [1, 1]"
                ),
            ),
            ([RankingLabel(7, 1, [[1], [2]], shown_order=[3, 1])], "prompt 7, annotator 1: shown_order lists a response"),
            ([RankingLabel(7, 1, [[1], [2]]), RankingLabel(7, 1, [[2], [1]])], "prompt 7, annotator 1: an annotator may"),
        ],
    )
    def test_rankings(self, labels, message):
        with pytest.raises(ValueError, match=f"^{message}"):
            m.agreement_report(labels, kind="ranking")

    @pytest.mark.parametrize(
        "labels, message",
        [
            ([PairwiseLabel(7, 1, 1, 2, "c")], "choice must be 'a', 'b' or 'tie', not 'c'"),
            ([PairwiseLabel(7, 1, 1, 1, "a")], "prompt 7: response_a equals response_b"),
            ([PairwiseLabel(7, 1, 1, 2, "a", -1)], "strength must be a non-negative index"),
            ([PairwiseLabel(7, 1, 1, 2, "a", shown_order=[3, 1])], "prompt 7: shown_order\\[0\\] is neither"),
            ([PairwiseLabel(7, 1, 1, 2, "a"), PairwiseLabel(7, 1, 2, 1, "b")], "prompt 7, annotator 1: an annotator may"),
        ],
    )
    def test_pairwise(self, labels, message):
        with pytest.raises(ValueError, match=f"^{message}"):
            m.agreement_report(labels, kind="pairwise")

    def test_kinds(self):
        with pytest.raises(TypeError, match="a pairwise report takes only PairwiseLabels"):
            m.agreement_report([RankingLabel(1, 1, [[1]])], kind="pairwise")
        with pytest.raises(TypeError, match="a ranking report takes only RankingLabels"):
            m.pairwise_agreement([RankingLabel(1, 1, [[1]]), PairwiseLabel(1, 2, 1, 2, "a")])
        with pytest.raises(ValueError, match="kind must be 'ranking' or 'pairwise', not 'listwise'"):
            m.agreement_report([], kind="listwise")
        with pytest.raises(ValueError, match="unknown tie convention 'half'"):
            m.pairwise_agreement([RankingLabel(1, 1, [[1], [2]])], convention="half")

    def test_ratings(self):
        with pytest.raises(ValueError, match="rating values must be finite numbers"):
            m.rating_alpha([RatingLabel(1, 1, "x", 1, float("nan"))])
        twice = [RatingLabel(1, 1, "x", 5, 1.0), RatingLabel(1, 1, "x", 5, 2.0)]
        with pytest.raises(ValueError, match=r"^criterion 'x', prompt 1, response 5, annotator 1: an annotator may"):
            m.rating_alpha(twice)


def test_rating_alpha_per_criterion():
    ratings = [RatingLabel(1, a, c, r, v) for a, c, r, v in [
        (1, "style", 1, 1.0), (2, "style", 1, 2.0), (1, "style", 2, 5.0), (2, "style", 2, 5.0),
        (1, "facts", 1, 3.0), (2, "facts", 1, 3.0), (3, "facts", 1, 3.0),
    ]]  # fmt: skip
    result = m.rating_alpha(ratings)
    assert list(result) == ["facts", "style"]
    expected = krippendorff.alpha(reliability_data=[[1, 5], [2, 5]], level_of_measurement="interval")
    assert result["style"].value == pytest.approx(expected) and result["style"].n == 2
    assert result["facts"].reason == "no variation: every value is the same" and result["facts"].n == 1
    report = m.agreement_report([RankingLabel(1, 1, [[1], [2]])], kind="ranking", ratings=ratings)
    assert report.criteria["style"] == result["style"]


def test_krippendorff_alpha_names_its_level():
    data = [[1, 2, 3], [1, 2, 4]]
    assert m.krippendorff_alpha(data, "nominal").definition == m.DEFINITIONS["krippendorff_alpha_nominal"]
    assert m.krippendorff_alpha(data, "ordinal").definition == m.DEFINITIONS["krippendorff_alpha_ordinal_rank"]
    assert m.krippendorff_alpha(data, "interval").definition == m.DEFINITIONS["krippendorff_alpha_interval_rating"]
    assert m.krippendorff_alpha(data, "interval").n == 3
    with pytest.raises(KeyError):
        m._definition("agreement_tie_half_everywhere")
