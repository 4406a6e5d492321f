"""The pure fit (app/leaderboard/bradley_terry.py) against two independent maximisations of the same penalised
likelihood (docs/leaderboard.md): scipy.optimize on a per-decision objective written here, and `choix` with the
prior written as data (one win and one loss against a virtual item, every real decision doubled so a tie is
one win each way)."""

import time

import choix
import numpy as np
import pytest
from scipy.optimize import minimize, root

from app.leaderboard import bradley_terry as bt
from app.leaderboard.decisions import DecisionList, tiers_from_scores

ELO = 400 / np.log(10)


def random_decisions(seed: int, n_models: int = 5, n: int = 400, ties: float = 0.2, prompts: int = 80):
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, n_models)
    a = rng.integers(0, n_models, n)
    b = (a + rng.integers(1, n_models, n)) % n_models
    won = rng.random(n) < 1 / (1 + np.exp(-(strength[a] - strength[b])))
    tie = rng.random(n) < ties
    first, second = np.where(won | tie, a, b), np.where(won | tie, b, a)
    score = np.where(tie, 0.5, 1.0)
    return first.astype(np.int64), second.astype(np.int64), score, rng.integers(0, prompts, n).astype(np.int64)


def scipy_reference(a, b, score, n_models: int) -> np.ndarray:
    """−(Σ over decisions s·log σ(θa−θb) + (1−s)·log σ(θb−θa) + Σ over models ½·log σ(θ) + ½·log σ(−θ)), minimised."""

    def objective(theta):
        value, gradient, hessian = 0.0, np.zeros(n_models), np.zeros((n_models, n_models))
        for i, j, s in zip(a, b, score, strict=True):
            p = 1 / (1 + np.exp(-(theta[i] - theta[j])))
            value += s * np.log(p) + (1 - s) * np.log(1 - p)
            gradient[i] += s - p
            gradient[j] -= s - p
            c = p * (1 - p)
            hessian[i, i] -= c
            hessian[j, j] -= c
            hessian[i, j] += c
            hessian[j, i] += c
        for i in range(n_models):
            p = 1 / (1 + np.exp(-theta[i]))
            value += 0.5 * np.log(p) + 0.5 * np.log(1 - p)
            gradient[i] += 0.5 - p
            hessian[i, i] -= p * (1 - p)
        return -value, -gradient, -hessian

    result = minimize(
        lambda t: objective(t)[0],
        np.zeros(n_models),
        jac=lambda t: objective(t)[1],
        hess=lambda t: objective(t)[2],
        method="trust-exact",
        options={"gtol": 1e-11},
    )
    # trust-exact stops at its gradient tolerance: finish by solving the score equations (gradient = 0) to 1e-14
    polished = root(lambda t: objective(t)[1], result.x, jac=lambda t: objective(t)[2], tol=1e-14)
    assert np.abs(objective(polished.x)[1]).max() < 1e-10  # (hybr may call it "no progress": it is at machine precision)
    return polished.x


def choix_reference(a, b, score, n_models: int) -> np.ndarray:
    data = []
    for i, j, s in zip(a.tolist(), b.tolist(), score.tolist(), strict=True):
        data += [(i, j), (i, j)] if s == 1 else [(i, j), (j, i)]
    for i in range(n_models):
        data += [(i, n_models), (n_models, i)]  # the virtual tie
    theta = choix.opt_pairwise(n_models + 1, data, alpha=0, tol=1e-12)
    return theta[:n_models] - theta[n_models]  # the virtual opponent has strength 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fit_equals_two_reference_maximisations(seed):
    a, b, score, _ = random_decisions(seed)
    theta = bt.fit(bt.win_matrix(a, b, score, 5))
    ratings = bt.to_ratings(theta, None)
    reference = scipy_reference(a, b, score, 5)
    assert np.abs(ratings - bt.to_ratings(reference, None)).max() < 1e-6
    assert np.abs(theta - reference).max() < 1e-9  # the θ themselves, not only their differences
    # choix's optimiser stops at its own tolerance (about 1e-4 rating points here): a second, looser opinion
    assert np.abs(ratings - bt.to_ratings(choix_reference(a, b, score, 5), None)).max() < 1e-3


def test_a_model_that_never_wins_and_one_that_never_loses_are_finite():
    # model 0 beats everyone always, model 3 loses always: no finite MLE without the prior
    a = np.array([0, 0, 0, 1, 1, 2, 0, 1, 2, 2], dtype=np.int64)
    b = np.array([1, 2, 3, 3, 2, 3, 3, 3, 1, 3], dtype=np.int64)
    score = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0.5, 1.0])
    theta = bt.fit(bt.win_matrix(a, b, score, 4))
    assert np.isfinite(theta).all()
    assert theta[0] == theta.max() and theta[3] == theta.min()
    assert np.abs(theta - scipy_reference(a, b, score, 4)).max() < 1e-8
    assert np.abs(theta - choix_reference(a, b, score, 4)).max() < 1e-5


def test_disconnected_models_are_finite_and_pulled_to_the_opponent_of_strength_zero():
    a, b, score = np.array([0, 2], dtype=np.int64), np.array([1, 3], dtype=np.int64), np.array([1.0, 1.0])
    theta = bt.fit(bt.win_matrix(a, b, score, 5))  # model 4 has no decision at all
    assert np.isfinite(theta).all() and abs(theta[4]) < 1e-12
    assert np.abs(theta - scipy_reference(a, b, score, 5)).max() < 1e-8


def test_anchor_mean_or_baseline():
    a, b, score, prompt = random_decisions(4)
    result = bt.rate(a, b, score, prompt, 5, anchor=None, resamples=200, seed=1)
    assert result.rating.mean() == pytest.approx(1000, abs=1e-9)
    anchored = bt.rate(a, b, score, prompt, 5, anchor=2, resamples=200, seed=1)
    assert anchored.rating[2] == pytest.approx(1000, abs=1e-9)
    assert anchored.ci_low[2] == pytest.approx(1000) and anchored.ci_high[2] == pytest.approx(1000)
    # the gaps are the same whichever model is the anchor: 400 points per factor 10 of odds
    assert np.allclose(np.diff(anchored.rating), np.diff(result.rating))
    assert np.allclose(result.rating[0] - result.rating[1], 400 * np.log10(np.exp(result.theta[0] - result.theta[1])))


def test_bootstrap_is_seeded_contains_the_estimate_and_narrows_with_more_data():
    a, b, score, prompt = random_decisions(5, n=600, prompts=150)
    first = bt.rate(a, b, score, prompt, 5, anchor=None, resamples=200, seed=7)
    again = bt.rate(a, b, score, prompt, 5, anchor=None, resamples=200, seed=7)
    other = bt.rate(a, b, score, prompt, 5, anchor=None, resamples=200, seed=8)
    assert np.array_equal(first.ci_low, again.ci_low) and np.array_equal(first.ci_high, again.ci_high)
    assert not np.array_equal(first.ci_low, other.ci_low)
    assert (first.ci_low <= first.rating).all() and (first.rating <= first.ci_high).all()
    assert (first.ci_high - first.ci_low > 1).all()
    # Four times the prompts (the same decisions on new prompts): the intervals about halve.
    more = [np.concatenate([x] * 4) for x in (a, b, score)]
    prompts = np.concatenate([prompt + k * 150 for k in range(4)])
    bigger = bt.rate(*more, prompts, 5, anchor=None, resamples=200, seed=7)
    assert np.allclose(bigger.rating, first.rating, atol=2)  # the estimate barely moves (the prior weighs less)
    ratio = (bigger.ci_high - bigger.ci_low) / (first.ci_high - first.ci_low)
    assert (ratio < 0.7).all() and (ratio > 0.35).all()


def test_bootstrap_resamples_prompts_not_decisions():
    # Every prompt holds one model-0 win and one model-1 win: resampling prompts keeps them paired, so every refit
    # sees a 50 % win rate and the interval collapses onto the estimate; resampling decisions would not.
    prompt = np.repeat(np.arange(50), 2)
    a = np.tile(np.array([0, 1]), 50).astype(np.int64)
    b = np.tile(np.array([1, 0]), 50).astype(np.int64)
    result = bt.rate(a, b, np.ones(100), prompt.astype(np.int64), 2, anchor=None, resamples=200, seed=0)
    assert np.allclose(result.ci_low, 1000) and np.allclose(result.ci_high, 1000)


def test_tally_against_a_brute_force_count():
    a, b, score, _ = random_decisions(6)
    counts = bt.tally(a, b, score, 5)
    for i in range(5):
        for j in range(5):
            wins = sum(1 for x, y, s in zip(a, b, score, strict=True) if (x, y, s) == (i, j, 1.0))
            ties = sum(1 for x, y, s in zip(a, b, score, strict=True) if s == 0.5 and {x, y} == {i, j})
            assert counts.wins[i, j] == wins and counts.ties[i, j] == ties
            assert counts.decisions[i, j] == sum(1 for x, y in zip(a, b, strict=True) if {x, y} == {i, j})


def test_decisions_from_labels_use_the_export_pairs():
    models = {1: "m1", 2: "m2", 3: "m3", 4: "m1", 5: None}
    d = DecisionList()
    d.add_label(7, [[1], [2, 3], [4, 5]], models)
    # pairs: 1>2, 1>3, 1>4 (same model), 1>5, 2>5, 3>5 and the tie 4=5 (no model), 2>4, 3>4, the tie 2=3
    assert sorted(zip(d.first, d.second, d.score, strict=True)) == sorted(
        [("m1", "m2", 1.0), ("m1", "m3", 1.0), ("m2", "m1", 1.0), ("m3", "m1", 1.0), ("m2", "m3", 0.5)]
    )
    assert d.same_model == 1 and d.no_model == 4 and set(d.prompt) == {7}
    d.add_label(8, [[4, 5]], models)  # a tie with a response without a model
    assert d.no_model == 5


def test_tiers_from_scores():
    assert tiers_from_scores({10: 3.0, 11: 7.0, 12: 3.0, 13: 1.0}) == [[11], [10, 12], [13]]


def test_a_hundred_thousand_decisions_ten_models_two_hundred_resamples_in_well_under_five_seconds():
    a, b, score, prompt = random_decisions(9, n_models=10, n=100_000, prompts=17_000)
    start = time.perf_counter()
    result = bt.rate(a, b, score, prompt, 10, anchor=None, resamples=200, seed=0)
    elapsed = time.perf_counter() - start
    assert np.isfinite(result.ci_low).all()
    assert elapsed < 2.5, elapsed  # the whole request, database included, is measured by bench/leaderboard_bench.py
