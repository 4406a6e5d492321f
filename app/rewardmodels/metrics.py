"""Reward-model evaluation against the human decisions (docs/reward-models.md). Pure numpy: no database.

`HumanDecisions` holds what every reward model of a project is scored against (built once); `evaluate` scores one
model. A decision is one annotator's verdict on one response pair, oriented (lo id, hi id) with sign +1 (lo
preferred), -1 (hi preferred) or 0 (tie); a reward model's verdict is the sign of s(lo) - s(hi), and so is the
leave-one-out majority of the other annotators for the human ceiling. `points` scores any verdict against a
human decision under the three tie conventions of the agreement report.
"""

from dataclasses import dataclass

import numpy as np

CONVENTIONS = ("strict_only", "tie_half", "tie_as_category")
LEVELS = ("unanimous", "majority", "split", "one annotator")
BINS = 10


def points(human: np.ndarray, verdict: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """(score of each verdict, whether the decision counts): a strict human preference scores 1 when the verdict
    agrees, ½ when the verdict ties, 0 otherwise; a human tie is left out (strict_only), ½ whatever the verdict
    (tie_half), or 1 only for a tied verdict (tie_as_category)."""
    strict = human != 0
    score = np.where(strict, np.where(verdict == human, 1.0, np.where(verdict == 0, 0.5, 0.0)), 0.0)
    if convention == "strict_only":
        return score, strict
    if convention == "tie_half":
        return np.where(strict, score, 0.5), np.ones_like(strict)
    if convention == "tie_as_category":
        return np.where(strict, score, (verdict == 0).astype(float)), np.ones_like(strict)
    raise ValueError(f"unknown convention {convention!r}")


@dataclass(frozen=True)
class Figure:
    value: float | None  # None: no decision counts
    n: int


def accuracies(human: np.ndarray, verdict: np.ndarray, mask: np.ndarray | None = None) -> dict[str, Figure]:
    out = {}
    for convention in CONVENTIONS:
        score, counts = points(human, verdict, convention)
        if mask is not None:
            counts = counts & mask
        n = int(counts.sum())
        out[convention] = Figure(float(score[counts].sum() / n) if n else None, n)
    return out


def grouped_accuracies(human: np.ndarray, verdict: np.ndarray, group: np.ndarray, size: int) -> list[dict[str, Figure]]:
    """`accuracies` for each group 0..size-1 at once (bincount, not a mask per group)."""
    out: list[dict[str, Figure]] = [{} for _ in range(size)]
    for convention in CONVENTIONS:
        score, counts = points(human, verdict, convention)
        n = np.bincount(group, weights=counts.astype(float), minlength=size)
        total = np.bincount(group, weights=score * counts, minlength=size)
        for k in range(size):
            out[k][convention] = Figure(float(total[k] / n[k]) if n[k] else None, int(n[k]))
    return out


def _groups(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, int]:
    """A dense group index per row for the pair (lo, hi), from one int64 key per pair."""
    if not len(lo):
        return np.zeros(0, dtype=np.int64), 0
    _, index = np.unique(lo * (int(hi.max()) + 1) + hi, return_inverse=True)
    index = index.ravel()
    return index, int(index.max()) + 1


@dataclass(frozen=True)
class HumanDecisions:
    prompt: np.ndarray  # per decision
    lo: np.ndarray
    hi: np.ndarray
    sign: np.ndarray
    loo: np.ndarray  # the other annotators' plurality on the pair (sign), for the ceiling
    has_others: np.ndarray  # the pair has other annotators' decisions (else no ceiling entry)
    level: np.ndarray  # index into LEVELS of the decision's prompt
    prompt_level_counts: dict[str, int]
    pair_label: np.ndarray  # index into pair_names: the unordered model pair of the decision
    pair_names: list[str]
    consensus_lo: np.ndarray
    consensus_hi: np.ndarray
    consensus_sign: np.ndarray


def prepare(
    *,
    prompt: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    sign: np.ndarray,
    models: dict[str | None, np.ndarray],  # each model's response ids (None: responses without a model)
    consensus: tuple[np.ndarray, np.ndarray, np.ndarray],  # the consensus rankings' pairs: lo, hi, sign
) -> HumanDecisions:
    """From the decisions of every label (and the consensus rankings' pairs): the ceiling's leave-one-out majorities,
    each prompt's agreement level, each decision's model pair."""
    group, n_groups = _groups(lo, hi)  # response ids are unique across prompts: (lo, hi) names the pair
    votes = np.zeros((n_groups, 3), dtype=np.int64)  # per pair: for lo, for hi, tie
    column = np.where(sign > 0, 0, np.where(sign < 0, 1, 2))
    np.add.at(votes, (group, column), 1)
    others = votes[group].copy()
    others[np.arange(len(group)), column] -= 1  # leave this decision's annotator out
    top = others.max(axis=1) if len(group) else np.zeros(0, dtype=np.int64)
    unique_top = (others == top[:, None]).sum(axis=1) == 1 if len(group) else np.zeros(0, dtype=bool)
    winner = others.argmax(axis=1) if len(group) else np.zeros(0, dtype=np.int64)
    # The plurality of the others; no single plurality (e.g. one each way) counts as a tie.
    loo = np.where(unique_top & (winner == 0), 1, np.where(unique_top & (winner == 1), -1, 0)).astype(np.int8)
    has_others = others.sum(axis=1) > 0 if len(group) else np.zeros(0, dtype=bool)

    # Agreement level of a prompt from its pairs: one annotator; unanimous (every pair, every annotator alike); split
    # (some pair whose most common verdict has no strict majority); else majority.
    n_pair = votes.sum(axis=1)
    most = votes.max(axis=1) if n_groups else np.zeros(0, dtype=np.int64)
    prompts, prompt_of_group = np.unique(prompt[np.unique(group, return_index=True)[1]], return_inverse=True)
    multi = np.zeros(len(prompts), dtype=bool)
    all_unanimous = np.ones(len(prompts), dtype=bool)
    any_split = np.zeros(len(prompts), dtype=bool)
    np.logical_or.at(multi, prompt_of_group, n_pair > 1)
    np.logical_and.at(all_unanimous, prompt_of_group, most == n_pair)
    np.logical_or.at(any_split, prompt_of_group, 2 * most <= n_pair)
    prompt_level = np.where(~multi, 3, np.where(all_unanimous, 0, np.where(any_split, 2, 1)))
    level = prompt_level[np.searchsorted(prompts, prompt)] if len(prompts) else np.zeros(0, dtype=np.int64)

    # Model pairs: names sorted within the pair, so (a, b) and (b, a) are one row.
    names = sorted({m or "" for m in models})
    code = {name: i for i, name in enumerate(names)}
    ids = np.concatenate([*models.values(), np.zeros(0, dtype=np.int64)])
    codes = np.concatenate(
        [np.full(len(v), code[m or ""], dtype=np.int64) for m, v in models.items()] + [np.zeros(0, dtype=np.int64)]
    )
    m_lo, _ = lookup(ids, codes, lo)
    m_hi, _ = lookup(ids, codes, hi)
    first, second = np.minimum(m_lo, m_hi), np.maximum(m_lo, m_hi)
    pair_code = first * len(names) + second
    used, pair_label = np.unique(pair_code, return_inverse=True)
    shown = [name or "(no model)" for name in names]
    pair_names = [f"{shown[c // len(names)]} vs {shown[c % len(names)]}" for c in used]
    return HumanDecisions(
        prompt=prompt,
        lo=lo,
        hi=hi,
        sign=sign,
        loo=loo,
        has_others=has_others,
        level=level,
        prompt_level_counts={LEVELS[k]: int((prompt_level == k).sum()) for k in range(len(LEVELS))},
        pair_label=pair_label.ravel(),
        pair_names=pair_names,
        consensus_lo=consensus[0],
        consensus_hi=consensus[1],
        consensus_sign=consensus[2],
    )


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large score gaps


@dataclass(frozen=True)
class CalibrationBin:
    low: float
    high: float
    n: int
    predicted: float | None  # mean σ(s(a) − s(b)) in the bin
    observed: float | None  # share of human decisions preferring a (ties ½)


@dataclass(frozen=True)
class Evaluation:
    scored: int  # decisions whose two responses both have a score
    unscored: int
    individual: dict[str, Figure]
    consensus: dict[str, Figure]
    consensus_unscored: int
    ceiling: dict[str, Figure]  # humans, leave-one-out, on the scored pairs with other annotators
    model_on_ceiling_pairs: dict[str, Figure]  # the reward model on those same decisions
    by_level: dict[str, dict[str, Figure]]
    by_model_pair: dict[str, dict[str, Figure]]
    calibration: list[CalibrationBin]
    ece: float | None


def lookup(keys: np.ndarray, values: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """values[keys == id] for each id, and whether there is one, through a table indexed by id: a project's response
    ids are (nearly) consecutive, so the table is about as long as the project has responses, and indexing it is
    several times faster than a binary search per id."""
    if not len(keys) or not len(ids):
        return np.zeros(len(ids), dtype=values.dtype), np.zeros(len(ids), dtype=bool)
    low = min(int(keys.min()), int(ids.min()))
    size = max(int(keys.max()), int(ids.max())) - low + 1
    table = np.zeros(size, dtype=values.dtype)
    present = np.zeros(size, dtype=bool)
    table[keys - low], present[keys - low] = values, True
    return table[ids - low], present[ids - low]


def calibration(diff: np.ndarray, human: np.ndarray) -> tuple[list[CalibrationBin], float | None]:
    """x = σ(s(a) − s(b)), y = 1 if the human preferred a, ½ for a tie, else 0; every decision counted in both
    orientations (a = lo and a = hi), so the chart does not depend on which response is called a."""
    x = sigmoid(diff)
    y = np.where(human > 0, 1.0, np.where(human < 0, 0.0, 0.5))
    x, y = np.concatenate([x, 1 - x]), np.concatenate([y, 1 - y])
    index = np.minimum((x * BINS).astype(np.int64), BINS - 1)
    n = np.bincount(index, minlength=BINS)
    sum_x = np.bincount(index, weights=x, minlength=BINS)
    sum_y = np.bincount(index, weights=y, minlength=BINS)
    bins = [
        CalibrationBin(
            k / BINS,
            (k + 1) / BINS,
            int(n[k]),
            float(sum_x[k] / n[k]) if n[k] else None,
            float(sum_y[k] / n[k]) if n[k] else None,
        )
        for k in range(BINS)
    ]
    total = int(n.sum())
    ece = float(sum(n[k] / total * abs(sum_y[k] / n[k] - sum_x[k] / n[k]) for k in range(BINS) if n[k])) if total else None
    return bins, ece


def evaluate(h: HumanDecisions, score_ids: np.ndarray, score_values: np.ndarray) -> Evaluation:
    """One reward model (its scores by response id) against the humans."""
    s_lo, has_lo = lookup(score_ids, score_values, h.lo)
    s_hi, has_hi = lookup(score_ids, score_values, h.hi)
    scored = has_lo & has_hi
    diff = (s_lo - s_hi)[scored]
    human = h.sign[scored]
    verdict = np.sign(diff).astype(np.int8)
    c_lo, c_has_lo = lookup(score_ids, score_values, h.consensus_lo)
    c_hi, c_has_hi = lookup(score_ids, score_values, h.consensus_hi)
    c_scored = c_has_lo & c_has_hi
    c_verdict = np.sign((c_lo - c_hi)[c_scored]).astype(np.int8)
    same = h.has_others[scored]
    level, pair_label = h.level[scored], h.pair_label[scored]
    bins, ece = calibration(diff, human)
    return Evaluation(
        scored=int(scored.sum()),
        unscored=int((~scored).sum()),
        individual=accuracies(human, verdict),
        consensus=accuracies(h.consensus_sign[c_scored], c_verdict),
        consensus_unscored=int((~c_scored).sum()),
        ceiling=accuracies(human, h.loo[scored], same),
        model_on_ceiling_pairs=accuracies(human, verdict, same),
        by_level={
            LEVELS[k]: figures
            for k, figures in enumerate(grouped_accuracies(human, verdict, level, len(LEVELS)))
            if h.prompt_level_counts[LEVELS[k]]
        },
        by_model_pair={
            h.pair_names[k]: figures
            for k, figures in enumerate(grouped_accuracies(human, verdict, pair_label, len(h.pair_names)))
            if figures["tie_half"].n
        },
        calibration=bins,
        ece=ece,
    )
