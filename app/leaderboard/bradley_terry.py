"""Bradley–Terry ratings from pairwise decisions between models: maximum likelihood with one virtual tie per model,
an Elo-like scale, a bootstrap over prompts, and the win counts. Pure numpy (no database); the definitions are in
docs/leaderboard.md.

A decision is (a, b, score): models a and b (indices), score 1 when a won, ½ for a tie (a loss is written with a
and b swapped). It adds `score` to W[a, b] and `1 − score` to W[b, a]; the log-likelihood is
Σ W[i, j] · log σ(θᵢ − θⱼ), so a tie counts as half a win each way.

The prior: every model also ties once with a virtual opponent of strength 0, i.e. adds ½·log σ(θᵢ) + ½·log σ(−θᵢ).
Without it a model that never wins (or never loses) has no finite maximum; with it the objective is strictly
concave, so the maximum exists and is unique, and it weighs as much as one decision per model.
"""

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

ELO_SCALE = 400 / math.log(10)  # rating points per unit of θ: a 400-point gap is 10:1 odds
BASE_RATING = 1000.0
PRIOR = (
    "one virtual tie per model against an opponent of strength 0 (adds ½·log σ(θ) + ½·log σ(−θ) to each model's log-likelihood)"
)
_TOLERANCE = 1e-12  # Newton stops when no θ moves by more than this
_MAX_ITERATIONS = 100

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


def _log_sigmoid(x: Floats) -> Floats:
    return -np.logaddexp(0.0, -x)


def _sigmoid(x: Floats) -> Floats:
    out: Floats = 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for any x
    return out


def win_matrix(a: Ints, b: Ints, score: Floats, n_models: int) -> Floats:
    """W[i, j]: the weight of decisions i won against j (a tie: ½ each way)."""
    w = np.zeros(n_models * n_models)
    np.add.at(w, a * n_models + b, score)
    np.add.at(w, b * n_models + a, 1.0 - score)
    return w.reshape(n_models, n_models)


def _objective(w: Floats, theta: Floats) -> Floats:
    """Log-likelihood plus the prior, for a batch: w (B, n, n), theta (B, n) -> (B,)."""
    diff = theta[:, :, None] - theta[:, None, :]
    likelihood = (w * _log_sigmoid(diff)).sum(axis=(1, 2))
    prior = 0.5 * (_log_sigmoid(theta) + _log_sigmoid(-theta)).sum(axis=1)
    out: Floats = likelihood + prior
    return out


def fit(w: Floats) -> Floats:
    """The maximum of the penalised log-likelihood for one win matrix (n, n) -> θ (n,), or a batch (B, n, n) -> (B, n).

    Newton's method with step halving, all matrices of a batch at once: the Hessian is minus (the Laplacian of
    N·p·(1−p) plus the prior's diagonal σ(θ)(1−σ(θ))), negative definite, so every step is an ascent direction.
    """
    single = w.ndim == 2
    batch = w[None] if single else w
    n_batch, n = batch.shape[0], batch.shape[1]
    theta = np.zeros((n_batch, n))
    total = batch + batch.transpose(0, 2, 1)  # decisions between i and j, whoever won
    value = _objective(batch, theta)
    active = np.ones(n_batch, dtype=bool)
    for _ in range(_MAX_ITERATIONS):
        if not active.any():
            break
        t, wb, nb = theta[active], batch[active], total[active]
        p = _sigmoid(t[:, :, None] - t[:, None, :])  # p[i, j] = P(i beats j)
        gradient = (wb * p.transpose(0, 2, 1)).sum(axis=2) - (wb.transpose(0, 2, 1) * p).sum(axis=2)
        s = _sigmoid(t)
        gradient += 0.5 - s
        curvature = nb * p * p.transpose(0, 2, 1)
        neg_hessian = -curvature
        diagonal = curvature.sum(axis=2) + s * (1 - s)
        idx = np.arange(n)
        neg_hessian[:, idx, idx] = diagonal
        step = np.linalg.solve(neg_hessian, gradient[:, :, None])[:, :, 0]
        # Step halving: accept the longest of 1, ½, ¼, ... that does not lower the objective.
        scale = np.ones(len(t))
        old = value[active]
        for _halving in range(40):
            new = _objective(wb, t + scale[:, None] * step)
            bad = new < old - 1e-12 * np.abs(old)
            if not bad.any():
                break
            scale[bad] *= 0.5
        theta[active] = t + scale[:, None] * step
        value[active] = _objective(wb, theta[active])
        moved = np.abs(scale[:, None] * step).max(axis=1) if n else np.zeros(len(t))
        still = np.flatnonzero(active)[moved > _TOLERANCE]
        active[:] = False
        active[still] = True
    return theta[0] if single else theta


def to_ratings(theta: Floats, anchor: int | None) -> Floats:
    """The Elo-like scale: BASE_RATING + ELO_SCALE·(θ − θ of the anchor model), or of the mean θ when anchor is None.
    Works on one θ (n,) or a batch (B, n)."""
    reference = theta.mean(axis=-1, keepdims=True) if anchor is None else theta[..., anchor : anchor + 1]
    out: Floats = BASE_RATING + ELO_SCALE * (theta - reference)
    return out


def bootstrap(a: Ints, b: Ints, score: Floats, prompt: Ints, n_models: int, *, resamples: int, seed: int) -> Floats:
    """θ of `resamples` refits, each on the prompts drawn with replacement (decisions of one prompt are correlated,
    so prompts, not decisions, are the unit). `prompt` holds dense prompt indices 0..P−1. Returns (resamples, n)."""
    n_prompts = int(prompt.max()) + 1 if len(prompt) else 0
    if n_prompts == 0:
        return np.zeros((resamples, n_models))
    # One row per prompt: its decisions summed into a flattened win matrix; a resample is counts @ rows.
    cols = np.concatenate([a * n_models + b, b * n_models + a])
    rows = np.concatenate([prompt, prompt])
    values = np.concatenate([score, 1.0 - score])
    per_prompt = sparse.csr_matrix((values, (rows, cols)), shape=(n_prompts, n_models * n_models)).T.tocsr()
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, n_models * n_models))
    for r in range(resamples):
        counts = np.bincount(rng.integers(0, n_prompts, n_prompts), minlength=n_prompts).astype(np.float64)
        draws[r] = per_prompt @ counts
    return fit(draws.reshape(resamples, n_models, n_models))


@dataclass(frozen=True)
class Tally:
    """Counts of decisions, ties counted whole: wins[i, j] decisions i won against j, ties[i, j] = ties[j, i]."""

    wins: Ints
    ties: Ints

    @property
    def decisions(self) -> Ints:
        out: Ints = self.wins + self.wins.T + self.ties
        return out


def tally(a: Ints, b: Ints, score: Floats, n_models: int) -> Tally:
    strict = score == 1.0
    wins = np.bincount(a[strict] * n_models + b[strict], minlength=n_models * n_models).reshape(n_models, n_models)
    tied = ~strict
    ties = np.bincount(a[tied] * n_models + b[tied], minlength=n_models * n_models).reshape(n_models, n_models)
    ties = ties + ties.T
    return Tally(wins=wins.astype(np.int64), ties=ties.astype(np.int64))


@dataclass(frozen=True)
class Ratings:
    rating: Floats  # per model, the Elo-like scale
    ci_low: Floats  # 2.5th percentile of the bootstrap ratings
    ci_high: Floats  # 97.5th
    theta: Floats  # the fitted log-strengths


def rate(
    a: Ints, b: Ints, score: Floats, prompt: Ints, n_models: int, *, anchor: int | None, resamples: int, seed: int
) -> Ratings:
    """Point ratings and 95 % percentile intervals from the bootstrap over prompts (each resample anchored the same way)."""
    if n_models == 0:
        return Ratings(rating=np.zeros(0), ci_low=np.zeros(0), ci_high=np.zeros(0), theta=np.zeros(0))
    theta = fit(win_matrix(a, b, score, n_models))
    draws = to_ratings(bootstrap(a, b, score, prompt, n_models, resamples=resamples, seed=seed), anchor)
    low, high = np.percentile(draws, [2.5, 97.5], axis=0)
    return Ratings(rating=to_ratings(theta, anchor), ci_low=low, ci_high=high, theta=theta)
