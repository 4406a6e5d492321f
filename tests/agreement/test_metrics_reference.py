"""Every metric against a reference implementation, on generated data with missing labels and ties."""

import itertools
import math
import random

import krippendorff
import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

from app.agreement import metrics as m
from app.agreement.metrics import PairwiseLabel, RankingLabel, RatingLabel

SEEDS = range(6)


def random_tiers(rng, ids, tie_prob=0.3):
    ids = ids[:]
    rng.shuffle(ids)
    tiers = [[ids[0]]]
    for rid in ids[1:]:
        if rng.random() < tie_prob:
            tiers[-1].append(rid)
        else:
            tiers.append([rid])
    return tiers


def ranking_data(seed, n_prompts=25, k=4):
    """Prompts with 1, 2, 3 or 5 annotators out of 6; some annotators copy a base order (real agreement)."""
    rng = random.Random(seed)
    labels = []
    for q in range(n_prompts):
        ids = [q * 10 + j for j in range(k)]
        base = random_tiers(rng, ids, 0.0)
        for a in rng.sample(range(6), rng.choice([1, 2, 3, 5])):
            tiers = base if rng.random() < 0.5 else random_tiers(rng, ids)
            labels.append(RankingLabel(q, a, [list(t) for t in tiers], shown_order=rng.sample(ids, k)))
    return labels


def fractional_ranks(tiers):
    ranks, position = {}, 1
    for tier in tiers:
        for rid in tier:
            ranks[rid] = position + (len(tier) - 1) / 2
        position += len(tier)
    return ranks


def sign(ranks, i, j):
    return 0 if ranks[i] == ranks[j] else (1 if ranks[i] < ranks[j] else -1)


def brute_agreement(labels, convention, pooling):
    """The reference: plain loops over prompts, annotator pairs and response pairs."""
    by_prompt = {}
    for label in labels:
        by_prompt.setdefault(label.prompt_id, []).append(fractional_ranks(label.tiers))
    agree_all = total_all = 0.0
    rates = []
    for rankings in by_prompt.values():
        agree = total = 0.0
        for r1, r2 in itertools.combinations(rankings, 2):
            for i, j in itertools.combinations(sorted(r1), 2):
                x, y = sign(r1, i, j), sign(r2, i, j)
                if convention == "strict_only" and (x == 0 or y == 0):
                    continue
                total += 1
                agree += (x == y) if convention != "tie_half" else 1 - abs(x - y) / 2
        agree_all, total_all = agree_all + agree, total_all + total
        if total:
            rates.append(agree / total)
    if pooling == "pooled":
        return agree_all / total_all if total_all else None
    return sum(rates) / len(rates) if rates else None


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("convention", m.CONVENTIONS)
@pytest.mark.parametrize("pooling", m.POOLINGS)
def test_pairwise_agreement_rate_matches_brute_force(seed, convention, pooling):
    labels = ranking_data(seed)
    got = m.pairwise_agreement(labels, convention=convention, pooling=pooling)
    assert got.value == pytest.approx(brute_agreement(labels, convention, pooling))


@pytest.mark.parametrize("seed", SEEDS)
def test_ranking_alpha_matches_krippendorff(seed):
    labels = ranking_data(seed)
    annotators = sorted({l.annotator_id for l in labels})
    units = sorted({(l.prompt_id, rid) for l in labels for t in l.tiers for rid in t})
    data = np.full((len(annotators), len(units)), np.nan)
    for label in labels:
        for rid, rank in fractional_ranks(label.tiers).items():
            data[annotators.index(label.annotator_id), units.index((label.prompt_id, rid))] = rank
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    assert m.ranking_alpha(labels).value == pytest.approx(expected)


def test_krippendorff_canonical_vector():
    nan = np.nan
    data = np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
            [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
        ]
    )
    assert m.krippendorff_alpha(data, "nominal").value == pytest.approx(0.743, abs=1e-3)
    assert m.krippendorff_alpha(data, "ordinal").value == pytest.approx(0.815, abs=1e-3)
    assert m.krippendorff_alpha(data, "interval").value == pytest.approx(0.849, abs=1e-3)


@pytest.mark.parametrize("seed", SEEDS)
def test_kendall_w_matches_friedman(seed):
    labels = ranking_data(seed, k=5)
    by_prompt = {}
    for label in labels:
        by_prompt.setdefault(label.prompt_id, []).append(fractional_ranks(label.tiers))
    expected = []
    for rankings in by_prompt.values():
        if len(rankings) < 2:
            continue
        ids = sorted(rankings[0])
        samples = [[r[i] for r in rankings] for i in ids]
        if all(len(set(r.values())) == 1 for r in rankings):
            continue
        chi2 = stats.friedmanchisquare(*samples).statistic
        expected.append(chi2 / (len(rankings) * (len(ids) - 1)))
    assert m.kendall_w(labels).value == pytest.approx(np.mean(expected))


@pytest.mark.parametrize("seed", SEEDS)
def test_tau_b_matches_scipy(seed):
    labels = ranking_data(seed)
    by_prompt = {}
    for label in labels:
        by_prompt.setdefault(label.prompt_id, []).append(fractional_ranks(label.tiers))
    taus = []
    for rankings in by_prompt.values():
        for r1, r2 in itertools.combinations(rankings, 2):
            ids = sorted(r1)
            tau = stats.kendalltau([r1[i] for i in ids], [r2[i] for i in ids]).statistic
            if not math.isnan(tau):
                taus.append(tau)
    assert m.kendall_tau_b_mean(labels).value == pytest.approx(np.mean(taus))


def pairwise_data(seed, n_prompts=40, raters=None):
    rng = random.Random(seed)
    labels = []
    for q in range(n_prompts):
        truth = rng.choice("ab")
        count = raters or rng.choice([1, 2, 3, 4])
        for a in rng.sample(range(6), count):
            choice = truth if rng.random() < 0.6 else rng.choice(["a", "b", "tie"])
            labels.append(PairwiseLabel(q, a, 2 * q, 2 * q + 1, choice, None if choice == "tie" else rng.randrange(4)))
    return labels


@pytest.mark.parametrize("seed", SEEDS)
def test_fleiss_kappa_matches_statsmodels_with_equal_raters(seed):
    labels = pairwise_data(seed, raters=3)
    code = {"a": 0, "b": 1, "tie": 2}
    by_prompt = {}
    for label in labels:
        by_prompt.setdefault(label.prompt_id, []).append(code[label.choice])
    table, _ = aggregate_raters(np.array(list(by_prompt.values())), n_cat=3)
    assert m.fleiss_kappa(labels).value == pytest.approx(fleiss_kappa(table, method="fleiss"))


@pytest.mark.parametrize("seed", SEEDS)
def test_fleiss_kappa_with_unequal_raters_matches_the_formula(seed):
    """Fleiss (1971) generalised to n_i raters per subject as irrCAC (Gwet) computes it: observed agreement
    over subjects with >= 2 raters, category shares over every rated subject."""
    labels = pairwise_data(seed)
    code = {"a": 0, "b": 1, "tie": 2}
    counts = {}
    for label in labels:
        counts.setdefault(label.prompt_id, np.zeros(3))[code[label.choice]] += 1
    every = np.array(list(counts.values()))
    rows = every[every.sum(axis=1) >= 2]
    n_i = rows.sum(axis=1)
    p_o = np.mean((rows * (rows - 1)).sum(axis=1) / (n_i * (n_i - 1)))
    pi = (every / every.sum(axis=1)[:, None]).mean(axis=0)
    p_e = (pi**2).sum()
    assert m.fleiss_kappa(labels).value == pytest.approx((p_o - p_e) / (1 - p_e))


@pytest.mark.parametrize("seed", SEEDS)
def test_cohen_kappa_matches_statsmodels(seed):
    labels = pairwise_data(seed, n_prompts=60)
    code = {"a": 0, "b": 1, "tie": 2}
    by = {}
    for label in labels:
        by[(label.prompt_id, label.annotator_id)] = code[label.choice]
    pairs = m.cohen_kappa_pairs(labels)
    assert pairs
    for pair in pairs:
        shared = [q for (q, a) in by if a == pair.annotator_a and (q, pair.annotator_b) in by]
        table = np.zeros((3, 3))
        for q in shared:
            table[by[(q, pair.annotator_a)], by[(q, pair.annotator_b)]] += 1
        p_e = (table.sum(0) * table.sum(1)).sum() / table.sum() ** 2
        if math.isclose(p_e, 1.0):
            assert pair.metric.value is None and pair.metric.reason
        else:
            assert pair.metric.value == pytest.approx(cohens_kappa(table).kappa)


def pairwise_reliability_data(labels) -> tuple[np.ndarray, np.ndarray]:
    """Annotator x prompt matrices for krippendorff: the choice (nominal), and the signed strength (ordinal: 0 is
    strongest, so a strong "a" is -4 and a strong "b" +4; a tie is 0). Missing labels are NaN."""
    annotators = sorted({l.annotator_id for l in labels})
    prompts = sorted({l.prompt_id for l in labels})
    nominal = np.full((len(annotators), len(prompts)), np.nan)
    ordinal = np.full_like(nominal, np.nan)
    for l in labels:
        i, j = annotators.index(l.annotator_id), prompts.index(l.prompt_id)
        nominal[i, j] = {"a": 0, "b": 1, "tie": 2}[l.choice]
        ordinal[i, j] = 0 if l.choice == "tie" else (4 - l.strength) * (-1 if l.choice == "a" else 1)
    return nominal, ordinal


@pytest.mark.parametrize("seed", SEEDS)
def test_pairwise_alpha_nominal_and_ordinal_strength_match_krippendorff(seed):
    labels = pairwise_data(seed)
    nominal, ordinal = pairwise_reliability_data(labels)
    assert m.pairwise_alpha(labels, "nominal").value == pytest.approx(
        krippendorff.alpha(reliability_data=nominal, level_of_measurement="nominal")
    )
    assert m.pairwise_alpha(labels, "ordinal").value == pytest.approx(
        krippendorff.alpha(reliability_data=ordinal, level_of_measurement="ordinal")
    )


def test_rating_alpha_interval_matches_krippendorff():
    rng = random.Random(3)
    ratings = [
        RatingLabel(q, a, "helpfulness", q * 10 + r, rng.randint(1, 7))
        for q in range(10)
        for a in rng.sample(range(4), 3)
        for r in range(3)
    ]
    annotators = sorted({x.annotator_id for x in ratings})
    units = sorted({(x.prompt_id, x.response_id) for x in ratings})
    data = np.full((len(annotators), len(units)), np.nan)
    for x in ratings:
        data[annotators.index(x.annotator_id), units.index((x.prompt_id, x.response_id))] = x.value
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="interval")
    assert m.rating_alpha(ratings)["helpfulness"].value == pytest.approx(expected)


class TestUndefined:
    def test_single_annotator_gives_none_with_reason(self):
        labels = [RankingLabel(1, 1, [[1], [2], [3]])]
        report = m.agreement_report(labels, kind="ranking")
        for metric in report.project.values():
            assert metric.value is None and metric.reason
        assert report.prompts[0].agreement is None
        assert report.prompts[0].reason == "fewer than 2 annotators"

    def test_no_variation_alpha_is_none_not_nan(self):
        labels = [PairwiseLabel(q, a, 1, 2, "a") for q in range(3) for a in range(3)]
        report = m.agreement_report(labels, kind="pairwise")
        assert report.project["krippendorff_alpha_nominal"].value is None
        assert report.project["krippendorff_alpha_nominal"].reason
        assert report.project["agreement_tie_half_pooled"].value == 1.0

    def test_empty_report(self):
        report = m.agreement_report([], kind="ranking")
        assert report.summary.labels == 0 and report.prompts == []


def test_careless_annotators_stand_out():
    """An 'always picks the first shown' annotator gets a tiny position-bias p-value; a random one low agreement."""
    rng = random.Random(0)
    labels = []
    for q in range(60):
        ids = [q * 10 + j for j in range(4)]
        truth = [[i] for i in ids]
        for a in (1, 2, 3):  # careful: the true order with small noise
            tiers = [t[:] for t in truth]
            if rng.random() < 0.2:
                tiers[1], tiers[2] = tiers[2], tiers[1]
            labels.append(RankingLabel(q, a, tiers, shown_order=rng.sample(ids, 4)))
        shown = rng.sample(ids, 4)
        labels.append(RankingLabel(q, 4, [[i] for i in shown], shown_order=shown))  # first shown on top
        labels.append(RankingLabel(q, 5, random_tiers(rng, ids, 0.0), shown_order=rng.sample(ids, 4)))  # random
    by_id = {a.annotator_id: a for a in m.agreement_report(labels, kind="ranking").annotators}
    assert by_id[4].position_bias.observed == 1.0 and by_id[4].position_bias.p_value < 1e-6
    assert by_id[1].position_bias.p_value > 1e-3
    careful = min(by_id[a].loo_agreement.value for a in (1, 2, 3))
    assert by_id[5].loo_agreement.value < careful - 0.2
