"""Inter-annotator agreement for preference labels: pure, vectorised math (no DB, no FastAPI).

Everything here takes plain lists of labels (built by `agreement/service.py`) and returns plain data.
Definitions (README, "Agreement"), from their primary sources: pairwise agreement rate as InstructGPT
reports it (Ouyang et al. 2022, arXiv:2203.02155 §3.4) with WebGPT's tie rule (Nakano et al. 2021,
arXiv:2112.09332 App. C); Cohen's κ (Cohen 1960); Fleiss' κ (Fleiss 1971) with unequal rater counts as in
Gwet (2014), Handbook of Inter-Rater Reliability; Krippendorff's α (Krippendorff 2011, "Computing
Krippendorff's Alpha-Reliability"); Kendall's W with its tie correction (Kendall & Babington Smith 1939);
Kendall's τ-b (Kendall 1945). The one-line `definition` of every metric is shown in the UI next to the
number. Undefined cases (one annotator, no variation, nothing pairable) give `value=None` and a `reason`,
never NaN.

Conventions used throughout:
- A label is decomposed into comparisons, one per response pair (i, j) with i < j by response id:
  +1 = i preferred, -1 = j preferred, 0 = tie. A pairwise label is one comparison, oriented by the
  unit's (response_a, response_b): +1 = A preferred.
- Two annotators' comparisons score, by tie convention:
  `tie_as_category` 1 if equal else 0; `tie_half` 1 - |x - y| / 2 (a tie against a preference is 0.5,
  WebGPT's rule; two ties agree); `strict_only` pairs where either side tied are dropped.
- `pooled` = all agreeing annotator pairs / all annotator pairs (every prompt weighted by its pairs);
  `prompt_mean` = the mean over prompts (each weighing the same) of the prompt's own pooled rate, its
  agreeing / its annotator pairs over all its response pairs, for prompts with >= 1 scorable pair.
  This is not irrCAC's per-comparison `pa`, which weighs every response pair the same: the two differ
  when prompts have different numbers of response pairs or annotators (they coincide for pairwise
  projects under tie_as_category, where a prompt is one comparison).
- Rankings use fractional ranks (1 = best; a tie group shares the average of its positions).
- Labels are sorted by (unit, annotator) internally; an annotator labels a unit at most once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Literal

import numpy as np
import numpy.typing as npt

from app.agreement.schemas import (
    AgreementReport,
    AnnotatorPair,
    AnnotatorRow,
    ChanceTest,
    Metric,
    PositionBias,
    PromptRow,
    Summary,
)
from app.rankings import Tiers, tiers_problem

Kind = Literal["ranking", "pairwise"]
Convention = Literal["tie_as_category", "tie_half", "strict_only"]
Pooling = Literal["pooled", "prompt_mean"]
Level = Literal["nominal", "ordinal", "interval"]

CONVENTIONS: tuple[Convention, ...] = ("tie_as_category", "tie_half", "strict_only")
POOLINGS: tuple[Pooling, ...] = ("pooled", "prompt_mean")
_TOL = 1e-9  # mean ranks closer than this are a tie (they are multiples of 1/(2(m-1)) otherwise)


# ---------------------------------------------------------------------------------------------
# Input and result types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RankingLabel:
    prompt_id: int
    annotator_id: int
    tiers: Tiers  # response ids, best group first; a group of several is a tie
    shown_order: list[int] | None = None  # the order the responses were displayed (for position bias)


@dataclass(frozen=True, slots=True)
class PairwiseLabel:
    prompt_id: int
    annotator_id: int
    response_a: int  # the prompt's two responses in canonical order (lower position first)
    response_b: int
    choice: Literal["a", "b", "tie"]
    strength: int | None = None  # index into the project's strength scale, 0 = strongest
    shown_order: list[int] | None = None


@dataclass(frozen=True, slots=True)
class RatingLabel:
    prompt_id: int
    annotator_id: int
    criterion: str
    response_id: int
    value: float


DEFINITIONS: dict[str, str] = {
    "agreement": "Share of annotator pairs ordering a response pair the same way ({convention}; {pooling}).",
    "tie_as_category": "a tie is its own label",
    "tie_half": "a tie against a preference scores 0.5, two ties agree (WebGPT)",
    "strict_only": "pairs where either annotator tied are dropped",
    "pooled": "pooled over all annotator pairs",
    "prompt_mean": "mean of per-prompt rates",
    "krippendorff_alpha_ordinal_rank": (
        "Krippendorff's alpha, ordinal: units = prompt x response, value = fractional rank; 1 = perfect, 0 = chance."
    ),
    "kendall_w_mean": (
        "Mean over prompts of Kendall's W (tie-corrected) for the prompt's annotators; 1 = identical rankings. "
        "Not chance-corrected: random rankings by m annotators give about 1/m, not 0."
    ),
    "kendall_tau_b_mean": "Mean Kendall tau-b over every two annotators of the same prompt; 1 = identical, -1 = reversed.",
    "fleiss_kappa": "Fleiss' kappa over A / B / tie, per-prompt rater counts allowed (Gwet's form); 0 = chance.",
    "cohen_kappa_mean": "Mean of Cohen's kappa (A / B / tie) over annotator pairs with a defined kappa.",
    "cohen_kappa": "Cohen's kappa (A / B / tie) over the pairs both annotators labelled; 0 = chance.",
    "krippendorff_alpha_nominal": "Krippendorff's alpha, nominal, on A / B / tie; 1 = perfect, 0 = chance.",
    "krippendorff_alpha_ordinal_strength": (
        "Krippendorff's alpha, ordinal, on signed strength: A strongest = -S ... tie 0 ... B strongest = +S."
    ),
    "krippendorff_alpha_interval_rating": "Krippendorff's alpha, interval: units = prompt x response; 1 = perfect, 0 = chance.",
    "loo_agreement": (
        "Agreement (tie_half) of this annotator's pairs with the others' consensus on the same prompts "
        "(mean rank for rankings, majority of non-tie votes for pairs)."
    ),
    "kendall_tau_b_pair": "Mean Kendall tau-b of these two annotators over the prompts both ranked.",
}


def _definition(name: str) -> str:
    if name.startswith("agreement_"):
        convention, pooling = _split_agreement_name(name)
        return DEFINITIONS["agreement"].format(convention=DEFINITIONS[convention], pooling=DEFINITIONS[pooling])
    return DEFINITIONS[name]


def _split_agreement_name(name: str) -> tuple[Convention, Pooling]:
    rest = name.removeprefix("agreement_")
    for pooling in POOLINGS:
        if rest.endswith("_" + pooling):
            return rest.removesuffix("_" + pooling), pooling  # type: ignore[return-value]
    raise KeyError(name)


def agreement_name(convention: Convention, pooling: Pooling) -> str:
    return f"agreement_{convention}_{pooling}"


def _metric(name: str, value: float | None, n: int, reason: str | None = None) -> Metric:
    if value is not None and not np.isfinite(value):  # belt and braces: never leak NaN into JSON
        value, reason = None, reason or "not defined"
    return Metric(value=None if value is None else float(value), reason=reason, n=int(n), definition=_definition(name))


# ---------------------------------------------------------------------------------------------
# Preparation: labels -> arrays (the only per-label Python work)
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Prepared:
    kind: Kind
    prompt_ids: np.ndarray  # (P,) raw ids, ascending
    annotator_ids: np.ndarray  # (A,) raw ids, ascending
    unit_prompt: np.ndarray  # (U,) prompt index of each unit (rankings: a unit is a prompt)
    unit_start: np.ndarray  # (U,) first label row of the unit
    unit_m: np.ndarray  # (U,) labels (annotators) on the unit
    label_unit: np.ndarray  # (L,) rows sorted by (unit, annotator)
    label_annotator: np.ndarray  # (L,) annotator index
    signs: np.ndarray  # (L, C) int8 comparisons; 0 in padding
    valid: np.ndarray  # (U, C) which comparison columns exist for the unit
    pos: np.ndarray  # (U, C) counts of +1
    neg: np.ndarray  # (U, C) counts of -1
    tie: np.ndarray  # (U, C) counts of 0 (valid columns only)
    pos_hit: np.ndarray  # (L,) 1/0 shown-first on top; NaN = not applicable
    pos_expected: np.ndarray  # (L,) chance of that; NaN = not applicable
    ranks: np.ndarray | None = None  # rankings: (L, Kmax) fractional ranks, columns = responses by id
    k: np.ndarray | None = None  # rankings: (U,) responses per prompt
    tie_t: np.ndarray | None = None  # rankings: (L,) sum over tie groups of t^3 - t
    strength: np.ndarray | None = None  # pairwise: (L,) signed strength, NaN = missing
    _pairs: tuple[np.ndarray, np.ndarray] | None = field(default=None)

    def label_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Row indices (i, j), i < j, of every two labels on the same unit (so annotator i < j)."""
        if self._pairs is None:
            self._pairs = _pairs_within_groups(self.label_unit, int(self.unit_m.max()))
        return self._pairs


def _pairs_within_groups(group: np.ndarray, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    # Rows of one group are contiguous: pair each row with the row d further on, for every offset d.
    firsts, seconds = [], []
    for d in range(1, max_size):
        i = np.flatnonzero(group[:-d] == group[d:])
        firsts.append(i)
        seconds.append(i + d)
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(firsts), np.concatenate(seconds)


def _dense(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense 0..G-1 code of each row's key tuple (ordered by the keys, first key major), and the
    row index of each group's first occurrence in that order."""
    order = np.lexsort(keys[::-1])
    same = np.ones(max(len(order) - 1, 0), bool)  # row equals its predecessor on every key
    for key in keys:
        sorted_key = key[order]
        same &= sorted_key[1:] == sorted_key[:-1]
    starts = np.r_[True, ~same] if len(order) else np.zeros(0, bool)
    code = np.empty(len(order), np.int64)
    code[order] = np.cumsum(starts) - 1
    return code, order[starts]


def _counts(signs: np.ndarray, valid: np.ndarray, starts: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, ...]:
    pos = np.add.reduceat((signs == 1).astype(np.int32), starts, axis=0)
    neg = np.add.reduceat((signs == -1).astype(np.int32), starts, axis=0)
    tie = np.where(valid, m[:, None] - pos - neg, 0)
    return pos, neg, tie


def _check_no_duplicates(label_unit: np.ndarray, label_annotator: np.ndarray, describe: Callable[[int], str]) -> None:
    """describe(row): words naming the label at `row` of the sorted arrays, for the error."""
    dup = np.flatnonzero((label_unit[1:] == label_unit[:-1]) & (label_annotator[1:] == label_annotator[:-1]))
    if len(dup):
        raise ValueError(f"{describe(int(dup[0]) + 1)}: an annotator may label it only once")


def _prepare_rankings(labels: Sequence[RankingLabel]) -> _Prepared:
    n_labels = len(labels)
    prompt_raw = np.fromiter((lab.prompt_id for lab in labels), np.int64, n_labels)
    annot_raw = np.fromiter((lab.annotator_id for lab in labels), np.int64, n_labels)
    n_tiers = np.fromiter((len(lab.tiers) for lab in labels), np.int64, n_labels)
    tier_sizes = np.fromiter((len(t) for lab in labels for t in lab.tiers), np.int64)
    resp = np.fromiter(chain.from_iterable(chain.from_iterable(lab.tiers for lab in labels)), np.int64)
    if n_tiers.min() < 1 or tier_sizes.min() < 1:
        bad = int(np.flatnonzero(n_tiers < 1)[0]) if n_tiers.min() < 1 else None
        where = f"prompt {labels[bad].prompt_id}" if bad is not None else "a ranking"
        raise ValueError(f"{where}: a ranking needs at least one non-empty tier")

    # Fractional rank of every listed response: tier start within its label + (size + 1) / 2.
    tier_label = np.repeat(np.arange(n_labels), n_tiers)
    label_size = np.bincount(tier_label, weights=tier_sizes, minlength=n_labels).astype(np.int64)
    label_first_item = np.cumsum(label_size) - label_size
    tier_first_item = np.cumsum(tier_sizes) - tier_sizes
    tier_rank = tier_first_item - label_first_item[tier_label] + (tier_sizes + 1) / 2
    item_rank = np.repeat(tier_rank, tier_sizes)
    item_label = np.repeat(tier_label, tier_sizes)
    tie_t = np.bincount(tier_label, weights=tier_sizes**3 - tier_sizes, minlength=n_labels)

    # Dense prompt and annotator indices; a prompt's columns are its response ids in ascending order.
    prompt_ids, label_prompt = np.unique(prompt_raw, return_inverse=True)
    annotator_ids, label_annot = np.unique(annot_raw, return_inverse=True)
    n_prompts = len(prompt_ids)
    item_prompt = label_prompt[item_label]
    pair_code, _ = _dense(item_prompt, resp)  # (prompt, response) -> dense, ordered by prompt then id
    pair_prompt = np.empty(int(pair_code.max()) + 1, np.int64)
    pair_prompt[pair_code] = item_prompt
    k = np.bincount(pair_prompt, minlength=n_prompts)
    pair_first = np.cumsum(k) - k
    item_col = pair_code - pair_first[item_prompt]
    k_max = int(k.max())

    # Every ranking of a prompt must list each of the prompt's responses exactly once.
    seen = np.bincount(item_label * k_max + item_col, minlength=n_labels * k_max).reshape(n_labels, k_max)
    bad_rows = np.flatnonzero((label_size != k[label_prompt]) | (seen.max(axis=1) > 1))
    if len(bad_rows):  # found in bulk above; worded by the one owner of the rule
        lab = labels[int(bad_rows[0])]
        ids = {r for other in labels if other.prompt_id == lab.prompt_id for tier in other.tiers for r in tier}
        problem = tiers_problem(lab.tiers, ids) or "must list the same responses as the prompt's other rankings"
        raise ValueError(f"prompt {lab.prompt_id}, annotator {lab.annotator_id}: a ranking {problem}")

    ranks = np.full((n_labels, k_max), np.nan)
    ranks[item_label, item_col] = item_rank

    # Position bias: was the response shown first in the top tier? Chance = |top tier| / K.
    pos_hit = np.full(n_labels, np.nan)
    pos_expected = np.full(n_labels, np.nan)
    for idx, lab in enumerate(labels):
        if lab.shown_order:
            first = lab.shown_order[0]
            if first in lab.tiers[0]:
                pos_hit[idx] = 1.0
            elif any(first in t for t in lab.tiers):
                pos_hit[idx] = 0.0
            else:
                raise ValueError(
                    f"prompt {lab.prompt_id}, annotator {lab.annotator_id}: shown_order lists a response that is not ranked"
                )
            pos_expected[idx] = len(lab.tiers[0]) / label_size[idx]

    order = np.lexsort((label_annot, label_prompt))
    label_prompt, label_annot = label_prompt[order], label_annot[order]
    _check_no_duplicates(
        label_prompt,
        label_annot,
        lambda row: f"prompt {prompt_ids[label_prompt[row]]}, annotator {annotator_ids[label_annot[row]]}",
    )
    ranks, tie_t = ranks[order], tie_t[order]
    pos_hit, pos_expected = pos_hit[order], pos_expected[order]

    # Comparisons over response pairs (i < j): +1 when i is ranked above j.
    iu, ju = np.triu_indices(k_max, 1)
    signs = np.nan_to_num(np.sign(ranks[:, ju] - ranks[:, iu]), nan=0.0).astype(np.int8)
    valid = ju[None, :] < k[:, None]
    starts = np.flatnonzero(np.r_[True, label_prompt[1:] != label_prompt[:-1]])
    m = np.diff(np.r_[starts, n_labels])
    pos, neg, tie = _counts(signs, valid, starts, m)
    return _Prepared(
        kind="ranking", prompt_ids=prompt_ids, annotator_ids=annotator_ids,
        unit_prompt=np.arange(n_prompts), unit_start=starts, unit_m=m,
        label_unit=label_prompt, label_annotator=label_annot, signs=signs, valid=valid,
        pos=pos, neg=neg, tie=tie, pos_hit=pos_hit, pos_expected=pos_expected,
        ranks=ranks, k=k, tie_t=tie_t,
    )  # fmt: skip


_CHOICE = {"a": 1, "b": -1, "tie": 0}


def _prepare_pairwise(labels: Sequence[PairwiseLabel]) -> _Prepared:
    n_labels = len(labels)
    prompt_raw = np.fromiter((lab.prompt_id for lab in labels), np.int64, n_labels)
    annot_raw = np.fromiter((lab.annotator_id for lab in labels), np.int64, n_labels)
    ra = np.fromiter((lab.response_a for lab in labels), np.int64, n_labels)
    rb = np.fromiter((lab.response_b for lab in labels), np.int64, n_labels)
    try:
        choice = np.fromiter((_CHOICE[lab.choice] for lab in labels), np.int64, n_labels)
    except KeyError as exc:
        raise ValueError(f"choice must be 'a', 'b' or 'tie', not {exc.args[0]!r}") from None
    strength = np.fromiter((-1 if lab.strength is None else lab.strength for lab in labels), np.int64, n_labels)
    has_first = np.fromiter((bool(lab.shown_order) for lab in labels), bool, n_labels)
    first = np.fromiter((lab.shown_order[0] if lab.shown_order else 0 for lab in labels), np.int64, n_labels)
    if (ra == rb).any():
        raise ValueError(f"prompt {labels[int(np.flatnonzero(ra == rb)[0])].prompt_id}: response_a equals response_b")
    if any(lab.strength is not None and lab.strength < 0 for lab in labels):
        raise ValueError("strength must be a non-negative index into the strength scale")
    off = has_first & (first != ra) & (first != rb)
    if off.any():
        lab = labels[int(np.flatnonzero(off)[0])]
        raise ValueError(f"prompt {lab.prompt_id}: shown_order[0] is neither response_a nor response_b")

    # Position bias before any reorientation: chose the response shown first (ties carry no position).
    pos_hit = np.where(has_first & (choice != 0), ((choice == 1) & (first == ra)) | ((choice == -1) & (first == rb)), np.nan)
    pos_expected = np.where(np.isnan(pos_hit), np.nan, 0.5)

    prompt_ids, label_prompt = np.unique(prompt_raw, return_inverse=True)
    annotator_ids, label_annot = np.unique(annot_raw, return_inverse=True)
    lo, hi = np.minimum(ra, rb), np.maximum(ra, rb)
    unit, _ = _dense(label_prompt, lo, hi)
    order = np.lexsort((label_annot, unit))
    unit, label_annot, label_prompt = unit[order], label_annot[order], label_prompt[order]
    ra, choice, strength = ra[order], choice[order], strength[order]
    pos_hit, pos_expected = pos_hit[order], pos_expected[order]
    _check_no_duplicates(
        unit, label_annot,
        lambda row: f"prompt {prompt_ids[label_prompt[row]]}, annotator {annotator_ids[label_annot[row]]}",
    )  # fmt: skip

    # Orient every label like the unit's first label, so "A" means the same response for all.
    starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    m = np.diff(np.r_[starts, n_labels])
    unit_a = ra[starts]
    vote = np.where(ra == unit_a[unit], choice, -choice).astype(np.int8)

    # Signed strength: A strongest = -levels ... tie 0 ... B strongest = +levels (ordinal, so the
    # number of levels does not change alpha); a preference without a strength is missing.
    stated = (strength >= 0) & (vote != 0)
    levels = int(strength[stated].max()) + 1 if stated.any() else 1
    signed = np.where(vote == 0, 0.0, np.where(stated, -vote * (levels - strength), np.nan)) if stated.any() else None

    signs = vote[:, None]
    valid = np.ones((len(starts), 1), bool)
    pos, neg, tie = _counts(signs, valid, starts, m)
    return _Prepared(
        kind="pairwise", prompt_ids=prompt_ids, annotator_ids=annotator_ids,
        unit_prompt=label_prompt[starts], unit_start=starts, unit_m=m,
        label_unit=unit, label_annotator=label_annot, signs=signs, valid=valid,
        pos=pos, neg=neg, tie=tie, pos_hit=pos_hit.astype(float), pos_expected=pos_expected, strength=signed,
    )  # fmt: skip


def _prepare(labels: Sequence[RankingLabel] | Sequence[PairwiseLabel], kind: Kind | None = None) -> _Prepared | None:
    if not labels:
        return None
    kind = kind or ("ranking" if isinstance(labels[0], RankingLabel) else "pairwise")
    expected = RankingLabel if kind == "ranking" else PairwiseLabel
    if not all(isinstance(lab, expected) for lab in labels):
        raise TypeError(f"a {kind} report takes only {expected.__name__}s")
    return _prepare_rankings(labels) if kind == "ranking" else _prepare_pairwise(labels)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Krippendorff's alpha (coincidence-matrix form, vectorised)
# ---------------------------------------------------------------------------------------------


def _alpha(units: np.ndarray, values: np.ndarray, level: Level) -> tuple[float | None, str | None, int]:
    """Alpha from observations (dense unit code >= 0, value); returns (value, reason, pairable units).

    Interval: D_o and D_e reduce to sums of squares: sum over ordered pairs in a unit of (v_i - v_j)^2
    = 2 m_u SS_u. Ordinal equals interval on each value's mid-rank among all pairable values
    (delta_ck = sum_{g=c..k} n_g - (n_c + n_k)/2 = t_k - t_c). Nominal counts unequal pairs."""
    keep = ~np.isnan(values)
    units, values = units[keep], values[keep]
    m_u = np.bincount(units)
    pairable = m_u[units] >= 2  # units with fewer than 2 values carry no agreement information
    units, values = units[pairable], values[pairable]
    n_units = int((m_u >= 2).sum())
    n = len(values)
    if n == 0:
        return None, "no unit was labelled by 2 or more annotators", 0
    if values.min() == values.max():
        return None, "no variation: every value is the same", n_units
    m_u = m_u.astype(float)
    if level == "nominal":
        _, codes = np.unique(values, return_inverse=True)
        n_c = np.bincount(codes).astype(float)
        unit_codes, n_uc = np.unique(units * len(n_c) + codes, return_counts=True)
        sq = np.bincount(unit_codes // len(n_c), weights=n_uc.astype(float) ** 2, minlength=len(m_u))
        inside = m_u >= 2
        observed = ((m_u[inside] ** 2 - sq[inside]) / (m_u[inside] - 1)).sum()
        expected = n * n - (n_c**2).sum()
        return 1.0 - (n - 1) * observed / expected, None, n_units
    if level == "ordinal":
        _, inv, n_c = np.unique(values, return_inverse=True, return_counts=True)
        values = (np.cumsum(n_c) - n_c / 2.0)[inv]
    sums = np.bincount(units, weights=values, minlength=len(m_u))
    inside = m_u >= 2
    mean_u = np.zeros_like(sums)
    mean_u[inside] = sums[inside] / m_u[inside]
    ss_u = np.bincount(units, weights=(values - mean_u[units]) ** 2, minlength=len(m_u))
    observed = (m_u[inside] * ss_u[inside] / (m_u[inside] - 1)).sum()
    ss_total = ((values - values.mean()) ** 2).sum()
    return 1.0 - (n - 1) * observed / (n * ss_total), None, n_units


def krippendorff_alpha(reliability_data: np.ndarray | Sequence[Sequence[float]], level: Level) -> Metric:
    """Alpha on a coders x units matrix with NaN for missing, like `krippendorff.alpha`."""
    data = np.asarray(reliability_data, dtype=float)
    coder, unit = np.nonzero(~np.isnan(data))
    value, reason, n = _alpha(unit, data[coder, unit], level)
    name = {"nominal": "krippendorff_alpha_nominal", "ordinal": "krippendorff_alpha_ordinal_rank",
            "interval": "krippendorff_alpha_interval_rating"}[level]  # fmt: skip
    return _metric(name, value, n, reason)


def _ranking_alpha(p: _Prepared) -> Metric:
    assert p.ranks is not None and p.k is not None
    k_max = p.ranks.shape[1]
    rows, cols = np.nonzero(~np.isnan(p.ranks))
    value, reason, n = _alpha(p.label_unit[rows] * k_max + cols, p.ranks[rows, cols], "ordinal")
    return _metric("krippendorff_alpha_ordinal_rank", value, n, reason)


def ranking_alpha(labels: Sequence[RankingLabel]) -> Metric:
    """Ordinal alpha: units = prompt x response, value = fractional rank, coders = annotators."""
    p = _prepare(labels, "ranking")
    if p is None:
        return _metric("krippendorff_alpha_ordinal_rank", None, 0, "no labels")
    return _ranking_alpha(p)


def _pairwise_alpha(p: _Prepared, level: Literal["nominal", "ordinal"]) -> Metric:
    if level == "nominal":
        value, reason, n = _alpha(p.label_unit, p.signs[:, 0].astype(float), "nominal")
        return _metric("krippendorff_alpha_nominal", value, n, reason)
    if p.strength is None:
        return _metric("krippendorff_alpha_ordinal_strength", None, 0, "strength was not collected")
    value, reason, n = _alpha(p.label_unit, p.strength, "ordinal")
    return _metric("krippendorff_alpha_ordinal_strength", value, n, reason)


def pairwise_alpha(labels: Sequence[PairwiseLabel], level: Literal["nominal", "ordinal"] = "nominal") -> Metric:
    """Nominal alpha on A / B / tie, or ordinal alpha on the signed strength scale."""
    p = _prepare(labels, "pairwise")
    if p is None:
        name = "krippendorff_alpha_nominal" if level == "nominal" else "krippendorff_alpha_ordinal_strength"
        return _metric(name, None, 0, "no labels")
    return _pairwise_alpha(p, level)


def rating_alpha(ratings: Sequence[RatingLabel]) -> dict[str, Metric]:
    """Interval alpha per criterion: units = prompt x response, coders = annotators."""
    if not ratings:
        return {}
    n = len(ratings)
    criteria, crit = np.unique(np.array([r.criterion for r in ratings], dtype=object).astype(str), return_inverse=True)
    prompt = np.fromiter((r.prompt_id for r in ratings), np.int64, n)
    response = np.fromiter((r.response_id for r in ratings), np.int64, n)
    annotator = np.fromiter((r.annotator_id for r in ratings), np.int64, n)
    value = np.fromiter((r.value for r in ratings), float, n)
    if not np.isfinite(value).all():
        raise ValueError("rating values must be finite numbers")
    unit, _ = _dense(crit, prompt, response)
    order = np.lexsort((annotator, unit))
    _check_no_duplicates(
        unit[order], annotator[order],
        lambda row: f"criterion {str(criteria[crit[order][row]])!r}, prompt {prompt[order][row]}, "
        f"response {response[order][row]}, annotator {annotator[order][row]}",
    )  # fmt: skip
    result = {}
    for c, name in enumerate(criteria):
        rows = np.flatnonzero(crit == c)
        _, units = np.unique(unit[rows], return_inverse=True)
        alpha, reason, used = _alpha(units, value[rows], "interval")
        result[str(name)] = _metric("krippendorff_alpha_interval_rating", alpha, used, reason)
    return result


# ---------------------------------------------------------------------------------------------
# Pairwise agreement rates (both kinds share the comparison counts)
# ---------------------------------------------------------------------------------------------


def _agree_total(pos: np.ndarray, neg: np.ndarray, tie: np.ndarray, convention: Convention) -> tuple[np.ndarray, np.ndarray]:
    """Agreeing and total annotator pairs per comparison from the vote counts: C(x, 2) = pairs among
    x annotators who gave the same answer (replaces a loop over annotator pairs)."""

    def c2(x: npt.NDArray[np.integer]) -> npt.NDArray[np.float64]:  # x: vote counts
        return x * (x - 1) / 2.0

    if convention == "strict_only":
        return c2(pos) + c2(neg), c2(pos + neg)
    agree = c2(pos) + c2(neg) + c2(tie)
    if convention == "tie_half":
        agree = agree + 0.5 * tie * (pos + neg)
    elif convention != "tie_as_category":
        raise ValueError(f"unknown tie convention {convention!r}")
    return agree, c2(pos + neg + tie)


def _prompt_agree_total(p: _Prepared, convention: Convention) -> tuple[np.ndarray, np.ndarray]:
    agree, total = _agree_total(p.pos, p.neg, p.tie, convention)
    agree, total = agree.sum(axis=1), total.sum(axis=1)
    if p.kind == "pairwise":  # several units (response pairs) may share a prompt
        n_prompts = len(p.prompt_ids)
        agree = np.bincount(p.unit_prompt, weights=agree, minlength=n_prompts)
        total = np.bincount(p.unit_prompt, weights=total, minlength=n_prompts)
    return agree, total


def _agreement(p: _Prepared, convention: Convention, pooling: Pooling) -> Metric:
    name = agreement_name(convention, pooling)
    agree, total = _prompt_agree_total(p, convention)
    if total.sum() == 0:
        why = "no response pair was compared by 2 or more annotators"
        if convention == "strict_only" and (p.unit_m >= 2).any():
            why = "no response pair was compared by 2 or more annotators without a tie"
        return _metric(name, None, 0, why)
    if pooling == "pooled":
        return _metric(name, agree.sum() / total.sum(), int(total.sum()))
    used = total > 0
    return _metric(name, float(np.mean(agree[used] / total[used])), int(used.sum()))


def pairwise_agreement(
    labels: Sequence[RankingLabel] | Sequence[PairwiseLabel],
    *,
    convention: Convention = "tie_half",
    pooling: Pooling = "pooled",
) -> Metric:
    """InstructGPT-style agreement: share of (annotator pair, response pair) that agree."""
    p = _prepare(labels)
    if p is None:
        return _metric(agreement_name(convention, pooling), None, 0, "no labels")
    return _agreement(p, convention, pooling)


# ---------------------------------------------------------------------------------------------
# Kendall's W and tau-b (rankings)
# ---------------------------------------------------------------------------------------------


def _kendall_w_per_prompt(p: _Prepared) -> tuple[np.ndarray, np.ndarray]:
    """W per prompt (NaN where undefined) and the reason code: 0 ok, 1 < 2 annotators, 2 no variation,
    3 only one response."""
    assert p.ranks is not None and p.k is not None and p.tie_t is not None
    m = p.unit_m.astype(float)
    k = p.k.astype(float)
    rank_sums = np.add.reduceat(np.nan_to_num(p.ranks), p.unit_start, axis=0)
    cols = np.arange(p.ranks.shape[1])
    dev = np.where(cols[None, :] < p.k[:, None], rank_sums - (m * (k + 1) / 2)[:, None], 0.0)
    s = (dev**2).sum(axis=1)
    ties = np.add.reduceat(p.tie_t, p.unit_start)
    denom = m**2 * (k**3 - k) - m * ties
    ok = (p.unit_m >= 2) & (denom > 1e-9)
    w = np.full(len(m), np.nan)
    w[ok] = 12.0 * s[ok] / denom[ok]
    reason = np.where(p.k < 2, 3, np.where(p.unit_m < 2, 1, np.where(ok, 0, 2)))
    return w, reason


def _kendall_w_mean(p: _Prepared) -> Metric:
    w, reason = _kendall_w_per_prompt(p)
    ok = ~np.isnan(w)
    if not ok.any():
        why = "no variation: every ranking is one tie"
        if (reason == 1).all():
            why = "no prompt has 2 or more annotators"
        elif (reason == 3).all():
            why = "every prompt has only one response: nothing to rank"
        elif (reason != 2).all():
            why = "no prompt has both 2 or more annotators and 2 or more responses"
        return _metric("kendall_w_mean", None, 0, why)
    return _metric("kendall_w_mean", float(w[ok].mean()), int(ok.sum()))


def kendall_w(labels: Sequence[RankingLabel]) -> Metric:
    """Mean over prompts of tie-corrected Kendall's W (12 S / (m^2 (n^3 - n) - m sum T))."""
    p = _prepare(labels, "ranking")
    if p is None:
        return _metric("kendall_w_mean", None, 0, "no labels")
    return _kendall_w_mean(p)


def _tau_b_pairs(p: _Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row i, row j, tau-b or NaN) for every two annotators of a prompt; (C - D) / sqrt(n_x n_y)
    where n_x counts response pairs that x did not tie."""
    i, j = p.label_pairs()
    tau = np.full(len(i), np.nan)
    for chunk in range(0, len(i), 1 << 18):  # bounds the temporary (pairs x comparisons) arrays
        a, b = i[chunk : chunk + (1 << 18)], j[chunk : chunk + (1 << 18)]
        sa, sb = p.signs[a].astype(np.int32), p.signs[b].astype(np.int32)
        nx, ny = np.abs(sa).sum(axis=1), np.abs(sb).sum(axis=1)
        num = (sa * sb).sum(axis=1)
        ok = (nx > 0) & (ny > 0)
        tau[chunk : chunk + len(a)][ok] = num[ok] / np.sqrt(nx[ok].astype(float) * ny[ok])
    return i, j, tau


def _tau_b_mean(p: _Prepared) -> Metric:
    i, _, tau = _tau_b_pairs(p)
    ok = ~np.isnan(tau)
    if not len(i):
        return _metric("kendall_tau_b_mean", None, 0, "no prompt has 2 or more annotators")
    if not ok.any():
        return _metric("kendall_tau_b_mean", None, 0, "no variation: every pair has a ranking that is one tie")
    return _metric("kendall_tau_b_mean", float(tau[ok].mean()), int(ok.sum()))


def kendall_tau_b_mean(labels: Sequence[RankingLabel]) -> Metric:
    """Mean tau-b over all (prompt, two annotators) where both rankings have a strict pair."""
    p = _prepare(labels, "ranking")
    if p is None:
        return _metric("kendall_tau_b_mean", None, 0, "no labels")
    return _tau_b_mean(p)


# ---------------------------------------------------------------------------------------------
# Kappas (pairwise projects)
# ---------------------------------------------------------------------------------------------


def fleiss_kappa_table(counts: np.ndarray) -> Metric:
    """Fleiss' kappa from a subjects x categories count table; rater counts may differ per subject.

    Gwet (2014), Handbook of Inter-Rater Reliability §2 / irrCAC `fleiss()`: p_a averages
    sum_k r_ik (r_ik - 1) / (r_i (r_i - 1)) over subjects with r_i >= 2; pi_k averages r_ik / r_i over
    subjects with r_i >= 1; p_e = sum_k pi_k^2. Equals statsmodels' `fleiss_kappa` when r_i is constant."""
    counts = np.asarray(counts, dtype=float)
    r = counts.sum(axis=1)
    counts, r = counts[r >= 1], r[r >= 1]
    multi = r >= 2
    if not multi.any():
        return _metric("fleiss_kappa", None, 0, "no prompt was labelled by 2 or more annotators")
    pa = ((counts[multi] * (counts[multi] - 1)).sum(axis=1) / (r[multi] * (r[multi] - 1))).mean()
    pi = (counts / r[:, None]).mean(axis=0)
    pe = float((pi**2).sum())
    if pe >= 1 - 1e-12:
        return _metric("fleiss_kappa", None, int(multi.sum()), "no variation: every label is the same")
    return _metric("fleiss_kappa", (pa - pe) / (1 - pe), int(multi.sum()))


def _fleiss(p: _Prepared) -> Metric:
    return fleiss_kappa_table(np.column_stack([p.pos[:, 0], p.tie[:, 0], p.neg[:, 0]]))


def fleiss_kappa(labels: Sequence[PairwiseLabel]) -> Metric:
    p = _prepare(labels, "pairwise")
    if p is None:
        return _metric("fleiss_kappa", None, 0, "no labels")
    return _fleiss(p)


def _annotator_pair_groups(p: _Prepared, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group label pairs by annotator pair: (annotator a index, annotator b index, group of each pair)."""
    n_annot = len(p.annotator_ids)
    key = p.label_annotator[i].astype(np.int64) * n_annot + p.label_annotator[j]
    keys, group = np.unique(key, return_inverse=True)
    return keys // n_annot, keys % n_annot, group


def _cohen_pairs(p: _Prepared) -> list[AnnotatorPair]:
    i, j = p.label_pairs()
    if not len(i):
        return []
    a_idx, b_idx, group = _annotator_pair_groups(p, i, j)
    x = p.signs[i, 0].astype(np.int64) + 1
    y = p.signs[j, 0].astype(np.int64) + 1
    tables = np.bincount(group * 9 + x * 3 + y, minlength=len(a_idx) * 9).reshape(-1, 3, 3)
    n = tables.sum(axis=(1, 2))
    agree = np.trace(tables, axis1=1, axis2=2)
    chance = (tables.sum(axis=2) * tables.sum(axis=1)).sum(axis=1)  # n^2 p_e, exact integers
    result = []
    for g in range(len(a_idx)):
        if chance[g] == n[g] ** 2:
            value, reason = None, "no variation: both annotators used one and the same category"
        else:
            value, reason = (agree[g] * n[g] - chance[g]) / (n[g] ** 2 - chance[g]), None
        result.append(AnnotatorPair(
            annotator_a=int(p.annotator_ids[a_idx[g]]), annotator_b=int(p.annotator_ids[b_idx[g]]), n_shared=int(n[g]),
            metric=_metric("cohen_kappa", value, int(n[g]), reason),
        ))  # fmt: skip
    return result


def cohen_kappa_pairs(labels: Sequence[PairwiseLabel]) -> list[AnnotatorPair]:
    """Cohen's kappa (A / B / tie) for every two annotators, over the prompt pairs both labelled."""
    p = _prepare(labels, "pairwise")
    return [] if p is None else _cohen_pairs(p)


def _mean_of_pairs(name: str, pairs: list[AnnotatorPair]) -> Metric:
    values = [pa.metric.value for pa in pairs if pa.metric.value is not None]
    if not pairs:
        return _metric(name, None, 0, "no two annotators labelled the same prompt")
    if not values:
        return _metric(name, None, 0, "undefined for every annotator pair")
    return _metric(name, float(np.mean(values)), len(values))


def _tau_pairs(p: _Prepared) -> list[AnnotatorPair]:
    i, j, tau = _tau_b_pairs(p)
    if not len(i):
        return []
    a_idx, b_idx, group = _annotator_pair_groups(p, i, j)
    ok = ~np.isnan(tau)
    shared = np.bincount(group, minlength=len(a_idx))
    used = np.bincount(group[ok], minlength=len(a_idx))
    sums = np.bincount(group[ok], weights=tau[ok], minlength=len(a_idx))
    return [
        AnnotatorPair(
            annotator_a=int(p.annotator_ids[a_idx[g]]), annotator_b=int(p.annotator_ids[b_idx[g]]), n_shared=int(shared[g]),
            metric=_metric("kendall_tau_b_pair", sums[g] / used[g], int(used[g])) if used[g]
            else _metric("kendall_tau_b_pair", None, 0, "no variation: one of the rankings is a single tie"),
        )
        for g in range(len(a_idx))
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Per annotator: leave-one-out consensus agreement and position bias
# ---------------------------------------------------------------------------------------------


def _loo_scores(p: _Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per label: sum of tie_half scores against the others' consensus, comparisons scored, and of the
    comparisons where neither side ties (the careless test's), how many agree and how many there are.

    Rankings: the others' consensus orders a pair by their mean fractional rank (equal means = tie).
    Pairwise: the sign of the others' votes (+1 A, -1 B, tie 0), i.e. the majority of non-tie votes.
    For a prompt with 2 responses both rules coincide."""
    shared = p.unit_m[p.label_unit] >= 2
    if p.kind == "ranking":
        assert p.ranks is not None
        k_max = p.ranks.shape[1]
        ranks = np.nan_to_num(p.ranks)
        others = np.add.reduceat(ranks, p.unit_start, axis=0)[p.label_unit] - ranks
        others /= np.maximum(p.unit_m[p.label_unit] - 1, 1)[:, None]
        iu, ju = np.triu_indices(k_max, 1)
        diff = others[:, ju] - others[:, iu]
        consensus = np.where(np.abs(diff) < _TOL, 0, np.sign(diff))
    else:
        votes = p.signs.astype(np.int64)
        consensus = np.sign(np.add.reduceat(votes, p.unit_start, axis=0)[p.label_unit] - votes)
    valid = p.valid[p.label_unit] & shared[:, None]
    score = np.where(valid, 1.0 - np.abs(p.signs - consensus) / 2.0, 0.0)
    strict = valid & (p.signs != 0) & (consensus != 0)
    return score.sum(axis=1), valid.sum(axis=1).astype(float), (strict & (p.signs == consensus)).sum(axis=1), strict.sum(axis=1)


def _above_chance(hits: int, n: int) -> ChanceTest:
    """One-sided binomial test of the agreements with the others' consensus against chance (0.5; see ChanceTest)."""
    if n == 0:
        return ChanceTest(observed=None, hits=0, n=0, p_value=None, reason="no comparison where neither side ties")
    from scipy.stats import binomtest  # imported here, as in _position_bias

    p_value = float(binomtest(hits, n, 0.5, alternative="greater").pvalue)
    return ChanceTest(observed=hits / n, hits=hits, n=n, p_value=min(p_value, 1.0))


def _position_bias(hit: np.ndarray, expected: np.ndarray) -> PositionBias:
    used = ~np.isnan(hit)
    n = int(used.sum())
    if n == 0:
        return PositionBias(observed=None, expected=None, hits=0, n=0, p_value=None, reason="no display order was recorded")
    hits = int(hit[used].sum())
    # Chance varies per label with the top tier's size; a binomial at the mean chance approximates
    # the exact Poisson-binomial (it is exact when every label has the same chance, e.g. pairwise).
    chance = float(expected[used].mean())
    from scipy.stats import binomtest  # imported here: scipy.stats costs ~1 s at every app start otherwise

    p_value = float(binomtest(hits, n, min(max(chance, 0.0), 1.0)).pvalue)
    return PositionBias(observed=hits / n, expected=chance, hits=hits, n=n, p_value=min(p_value, 1.0))


def _annotators(p: _Prepared) -> list[AnnotatorRow]:
    n_annot = len(p.annotator_ids)
    score, compared, strict_hits, strict_n = _loo_scores(p)
    hits_sum = np.bincount(p.label_annotator, weights=strict_hits, minlength=n_annot)
    strict_sum = np.bincount(p.label_annotator, weights=strict_n, minlength=n_annot)
    score_sum = np.bincount(p.label_annotator, weights=score, minlength=n_annot)
    compared_sum = np.bincount(p.label_annotator, weights=compared, minlength=n_annot)
    n_labels = np.bincount(p.label_annotator, minlength=n_annot)
    shared_rows = p.unit_m[p.label_unit] >= 2
    if p.kind == "pairwise":  # count prompts, not response pairs
        label_prompt = p.unit_prompt[p.label_unit]
        key = label_prompt * n_annot + p.label_annotator
        _, first = np.unique(key, return_index=True)
        n_labels = np.bincount(p.label_annotator[first], minlength=n_annot)
        shared_keys = np.unique(key[shared_rows])
        n_shared = np.bincount(shared_keys % n_annot, minlength=n_annot)
    else:
        n_shared = np.bincount(p.label_annotator[shared_rows], minlength=n_annot)
    order = np.argsort(p.label_annotator, kind="stable")
    bounds = np.searchsorted(p.label_annotator[order], np.arange(n_annot + 1))
    result = []
    for a in range(n_annot):
        rows = order[bounds[a] : bounds[a + 1]]
        if compared_sum[a] > 0:
            loo = _metric("loo_agreement", score_sum[a] / compared_sum[a], int(compared_sum[a]))
        else:
            loo = _metric("loo_agreement", None, 0, "labelled no prompt together with another annotator")
        result.append(AnnotatorRow(
            annotator_id=int(p.annotator_ids[a]), n_labels=int(n_labels[a]), n_shared=int(n_shared[a]), loo_agreement=loo,
            position_bias=_position_bias(p.pos_hit[rows], p.pos_expected[rows]),
            above_chance=_above_chance(int(hits_sum[a]), int(strict_sum[a])),
        ))  # fmt: skip
    return result


# ---------------------------------------------------------------------------------------------
# Per prompt
# ---------------------------------------------------------------------------------------------


def _even_splits(p: _Prepared) -> np.ndarray:
    """Per prompt: response pairs whose non-tie votes split evenly, at least one each way (no majority)."""
    split = (p.valid & (p.pos == p.neg) & (p.pos > 0)).sum(axis=1)
    return np.bincount(p.unit_prompt, weights=split, minlength=len(p.prompt_ids)).astype(np.int64)


def _prompts(p: _Prepared) -> list[PromptRow]:
    agree, total = _prompt_agree_total(p, "tie_half")
    n_prompts = len(p.prompt_ids)
    if p.kind == "ranking":
        assert p.k is not None
        n_annot = p.unit_m
        w, _ = _kendall_w_per_prompt(p)
        one_response = p.k < 2
    else:  # a pairwise label always holds two different responses
        key = np.unique(p.unit_prompt[p.label_unit] * len(p.annotator_ids) + p.label_annotator)
        n_annot = np.bincount(key // len(p.annotator_ids), minlength=n_prompts)
        w, one_response = None, np.zeros(n_prompts, bool)
    rate = np.divide(agree, total, out=np.full(n_prompts, np.nan), where=total > 0)
    splits = _even_splits(p)
    result = []
    for q in range(n_prompts):
        defined = total[q] > 0
        reason = None
        if not defined:
            reason = "only one response: no pair to compare" if one_response[q] else "fewer than 2 annotators"
        result.append(PromptRow(
            prompt_id=int(p.prompt_ids[q]), n_annotators=int(n_annot[q]),
            agreement=float(rate[q]) if defined else None, n_comparisons=int(total[q]),
            kendall_w=None if w is None or np.isnan(w[q]) else float(w[q]),
            reason=reason, even_splits=int(splits[q]),
        ))  # fmt: skip
    return result


def prompt_agreement(labels: Sequence[RankingLabel] | Sequence[PairwiseLabel]) -> list[PromptRow]:
    """Per prompt (ascending id): annotators, agreement rate (tie_half) and, for rankings, Kendall's W."""
    p = _prepare(labels)
    return [] if p is None else _prompts(p)


# ---------------------------------------------------------------------------------------------
# The report the API, the dashboard and the CLI all use
# ---------------------------------------------------------------------------------------------


def _project_metrics(p: _Prepared) -> dict[str, Metric]:
    metrics: dict[str, Metric] = {}
    for convention in CONVENTIONS:
        for pooling in POOLINGS:
            metrics[agreement_name(convention, pooling)] = _agreement(p, convention, pooling)
    if p.kind == "ranking":
        metrics["krippendorff_alpha_ordinal_rank"] = _ranking_alpha(p)
        metrics["kendall_w_mean"] = _kendall_w_mean(p)
        metrics["kendall_tau_b_mean"] = _tau_b_mean(p)
    else:
        metrics["fleiss_kappa"] = _fleiss(p)
        metrics["krippendorff_alpha_nominal"] = _pairwise_alpha(p, "nominal")
        metrics["krippendorff_alpha_ordinal_strength"] = _pairwise_alpha(p, "ordinal")
    return metrics


_RANKING_METRICS = ("krippendorff_alpha_ordinal_rank", "kendall_w_mean", "kendall_tau_b_mean")
_PAIRWISE_METRICS = ("fleiss_kappa", "cohen_kappa_mean", "krippendorff_alpha_nominal", "krippendorff_alpha_ordinal_strength")


def agreement_report(
    labels: Sequence[RankingLabel] | Sequence[PairwiseLabel],
    *,
    kind: Kind,
    ratings: Sequence[RatingLabel] | None = None,
) -> AgreementReport:
    """Everything the statistics give the agreement pages (no NaN: undefined values are None with a
    reason); `service.project_report` adds what only the database knows."""
    if kind not in ("ranking", "pairwise"):
        raise ValueError(f"kind must be 'ranking' or 'pairwise', not {kind!r}")
    p = _prepare(labels, kind)
    criteria = rating_alpha(ratings or [])
    if p is None:
        names = [agreement_name(c, q) for c in CONVENTIONS for q in POOLINGS]
        names += list(_RANKING_METRICS if kind == "ranking" else _PAIRWISE_METRICS)
        return AgreementReport(
            kind=kind,
            summary=Summary(labels=0, prompts=0, annotators=0, prompts_with_2plus=0),
            project={name: _metric(name, None, 0, "no labels") for name in names},
            criteria=criteria, annotators=[], annotator_pairs=[], prompts=[],
        )  # fmt: skip
    project = _project_metrics(p)
    if kind == "pairwise":
        pairs = _cohen_pairs(p)
        project["cohen_kappa_mean"] = _mean_of_pairs("cohen_kappa_mean", pairs)
    else:
        pairs = _tau_pairs(p)
    prompts = _prompts(p)
    return AgreementReport(
        kind=kind,
        summary=Summary(
            labels=len(labels),
            prompts=len(p.prompt_ids),
            annotators=len(p.annotator_ids),
            prompts_with_2plus=sum(1 for q in prompts if q.n_annotators >= 2),
            even_splits=sum(q.even_splits for q in prompts),
        ),
        project=project, criteria=criteria, annotators=_annotators(p), annotator_pairs=pairs, prompts=prompts,
    )  # fmt: skip
