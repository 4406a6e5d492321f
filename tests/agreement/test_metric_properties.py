"""Property-based tests (Hypothesis): every metric against its reference library on generated data where K runs
from 2 to 9, each prompt has its own annotators (1 to 5 of a pool of 6: missing labels) and rankings have ties.
The seeded tests in test_metrics_reference.py fix K and the annotator pattern; these let both vary.

Examples are derandomized (the same inputs on every run, so CI cannot flake) and few enough to stay fast."""

import itertools
import math

import krippendorff
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

from app.agreement import metrics as m
from app.agreement.metrics import PairwiseLabel, RankingLabel
from tests.agreement.test_metrics_reference import brute_agreement, fractional_ranks, pairwise_reliability_data

# derandomize: the same examples every run; database=None: no .hypothesis folder written into the working copy
PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
POOL = range(6)


@st.composite
def tiers_of(draw, ids: list[int]) -> list[list[int]]:
    """A ranking of `ids` with ties: a permutation cut into tiers where a drawn flag says so."""
    order = draw(st.permutations(ids))
    cuts = draw(st.lists(st.booleans(), min_size=len(ids) - 1, max_size=len(ids) - 1))
    tiers = [[order[0]]]
    for rid, new_tier in zip(order[1:], cuts, strict=False):
        if new_tier:
            tiers.append([rid])
        else:
            tiers[-1].append(rid)
    return tiers


@st.composite
def rankings(draw, min_k: int = 2) -> list[RankingLabel]:
    """1-6 prompts, each with its own K (min_k..9) and 1-5 annotators; some copy another's ranking (agreement)."""
    labels = []
    for q in range(draw(st.integers(1, 6))):
        ids = [q * 10 + j for j in range(draw(st.integers(min_k, 9)))]
        annotators = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=5, unique=True))
        drawn: list[list[list[int]]] = []
        for a in annotators:
            copy = drawn and draw(st.booleans())
            tiers = drawn[draw(st.integers(0, len(drawn) - 1))] if copy else draw(tiers_of(ids))
            drawn.append(tiers)
            labels.append(RankingLabel(q, a, [list(t) for t in tiers]))
    return labels


@st.composite
def pairwise(draw, raters: int | None = None) -> list[PairwiseLabel]:
    """1-12 prompts of two responses; `raters` annotators on every prompt, or 1-5 of the pool on each."""
    labels = []
    for q in range(draw(st.integers(1, 12))):
        size = st.just(raters) if raters else st.integers(1, 5)
        annotators = draw(st.lists(st.sampled_from(POOL), min_size=draw(size), max_size=raters or 5, unique=True))
        for a in annotators:
            choice = draw(st.sampled_from(["a", "b", "tie"]))
            strength = None if choice == "tie" else draw(st.integers(0, 3))
            labels.append(PairwiseLabel(q, a, 2 * q, 2 * q + 1, choice, strength))
    return labels


def reference_alpha(data: np.ndarray, level: str) -> float | None:
    """krippendorff.alpha, with its 'undefined' answers (an error for one value, NaN for nothing pairable) as None."""
    try:
        with np.errstate(invalid="ignore"):  # it divides 0 by 0 when nothing is pairable
            value = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    except ValueError:  # "There has to be more than one value in the domain."
        return None
    return None if math.isnan(value) else float(value)


def by_prompt(labels: list[RankingLabel]) -> dict[int, list[dict[int, float]]]:
    out: dict[int, list[dict[int, float]]] = {}
    for label in labels:
        out.setdefault(label.prompt_id, []).append(fractional_ranks(label.tiers))
    return out


@PROPERTY
@given(rankings(), st.sampled_from(m.CONVENTIONS), st.sampled_from(m.POOLINGS))
def test_agreement_rate_matches_brute_force(labels, convention, pooling):
    expected = brute_agreement(labels, convention, pooling)
    got = m.pairwise_agreement(labels, convention=convention, pooling=pooling).value
    assert got == (None if expected is None else pytest.approx(expected))


@PROPERTY
@given(rankings())
def test_ranking_alpha_matches_krippendorff(labels):
    annotators = sorted({l.annotator_id for l in labels})
    units = sorted({(l.prompt_id, rid) for l in labels for t in l.tiers for rid in t})
    data = np.full((len(annotators), len(units)), np.nan)
    for label in labels:
        for rid, rank in fractional_ranks(label.tiers).items():
            data[annotators.index(label.annotator_id), units.index((label.prompt_id, rid))] = rank
    expected = reference_alpha(data, "ordinal")
    got = m.ranking_alpha(labels).value
    assert got == (None if expected is None else pytest.approx(expected, abs=1e-9))


@PROPERTY
@given(rankings(min_k=3))  # scipy's Friedman test needs 3 or more responses
def test_kendall_w_matches_friedman(labels):
    ws = []
    for ranks in by_prompt(labels).values():
        ids = sorted(ranks[0])
        if len(ranks) < 2 or all(len(set(r.values())) == 1 for r in ranks):
            continue  # undefined: one annotator, or every ranking one tie
        chi2 = stats.friedmanchisquare(*[[r[i] for r in ranks] for i in ids]).statistic
        ws.append(chi2 / (len(ranks) * (len(ids) - 1)))
    got = m.kendall_w(labels).value
    assert got == (pytest.approx(float(np.mean(ws))) if ws else None)


@PROPERTY
@given(rankings())
def test_tau_b_matches_scipy(labels):
    taus = []
    for ranks in by_prompt(labels).values():
        for r1, r2 in itertools.combinations(ranks, 2):
            ids = sorted(r1)
            tau = stats.kendalltau([r1[i] for i in ids], [r2[i] for i in ids]).statistic
            if not math.isnan(tau):  # NaN: one of the two is all ties
                taus.append(tau)
    got = m.kendall_tau_b_mean(labels).value
    assert got == (pytest.approx(float(np.mean(taus))) if taus else None)


@PROPERTY
@given(st.integers(2, 5).flatmap(lambda raters: pairwise(raters=raters)))
def test_fleiss_kappa_matches_statsmodels(labels):
    code = {"a": 0, "b": 1, "tie": 2}
    rows: dict[int, list[int]] = {}
    for label in labels:
        rows.setdefault(label.prompt_id, []).append(code[label.choice])
    table, _ = aggregate_raters(np.array(list(rows.values())), n_cat=3)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = float(fleiss_kappa(table, method="fleiss"))
    got = m.fleiss_kappa(labels).value
    # statsmodels divides by zero when every label is the same; the app reports None
    assert got == (None if not math.isfinite(expected) else pytest.approx(expected))


@PROPERTY
@given(pairwise())
def test_cohen_kappa_matches_statsmodels(labels):
    code = {"a": 0, "b": 1, "tie": 2}
    by = {(l.prompt_id, l.annotator_id): code[l.choice] for l in labels}
    pairs = {(p.annotator_a, p.annotator_b): p.metric for p in m.cohen_kappa_pairs(labels)}
    for a, b in itertools.combinations(sorted({l.annotator_id for l in labels}), 2):
        shared = [q for (q, x) in by if x == a and (q, b) in by]
        if not shared:
            continue
        table = np.zeros((3, 3))  # over all three categories, so it stays square
        for q in shared:
            table[by[(q, a)], by[(q, b)]] += 1
        p_e = (table.sum(0) * table.sum(1)).sum() / table.sum() ** 2
        metric = pairs[(a, b)]
        if math.isclose(p_e, 1.0):
            assert metric.value is None and metric.reason  # undefined: both used one and the same category
        else:
            with np.errstate(invalid="ignore"):  # its standard errors can be NaN for tiny tables; kappa is not
                assert metric.value == pytest.approx(cohens_kappa(table).kappa)


@PROPERTY
@given(pairwise())
def test_pairwise_alpha_matches_krippendorff(labels):
    nominal, ordinal = pairwise_reliability_data(labels)
    for level, data in (("nominal", nominal), ("ordinal", ordinal)):
        expected = reference_alpha(data, level)
        got = m.pairwise_alpha(labels, level).value
        assert got == (None if expected is None else pytest.approx(expected, abs=1e-9)), level
