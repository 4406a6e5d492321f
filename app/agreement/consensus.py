"""Merge several annotators' labels of ONE prompt into one consensus ranking (tiers).

Called prompt by prompt (the export streams), so each call is small-array numpy or plain Python.
Methods (README, "Agreement"; sources: Bradley & Terry 1952, Luce 1959 / Plackett 1975, Tideman 1987):
- `borda` (default): mean fractional rank; score = K - mean rank = Borda points with half a point
  per tie.
- `bradley_terry`: ML strengths from the pairs of all rankings (a tie counts as half a win each way,
  as Chatbot Arena does), via `choix.ilsr_pairwise_dense`.
- `plackett_luce`: ML Plackett–Luce via `choix.ilsr_top1`; a tie group uses Breslow's rule (each
  member is chosen from the remaining items, the other members included), so strict rankings give
  plain Plackett–Luce.
- `pair_majority`: per response pair, the majority of non-tie votes (ties abstain); tiers by Copeland
  score (1 per pair won, 0.5 per pair drawn), since pair majorities can form cycles.
- `ranked_pairs`: Tideman, as OpenAssistant does for its export: lock majorities by margin (then
  winning votes, then ids) unless that makes a cycle; tiers are the layers of the locked graph
  (drawn pairs are never locked, so they can end up in one tier).
Every consensus carries the prompt's agreement (pairwise agreement rate, tie_half, pooled over its
annotator pairs; None with < 2 annotators), the votes of every pair, and how many pairs split evenly. Equal scores (within `tol`)
share a tier. Both ML fits use a small L2 regularisation `alpha` so unanimous data still converge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Literal

import numpy as np

from app.agreement.metrics import RankingLabel, _agree_total
from app.rankings import Tiers, tiers_problem

Method = Literal["borda", "bradley_terry", "plackett_luce", "pair_majority", "ranked_pairs"]


@dataclass(frozen=True, slots=True)
class Consensus:
    tiers: Tiers  # response ids, best group first; ids ascending inside a tier
    method: str
    agreement: float | None  # pairwise agreement rate of the prompt (tie_half); None with < 2 annotators
    pair_votes: dict[tuple[int, int], tuple[int, int, int]]  # (lo id, hi id) -> (for lo, for hi, tie)
    scores: dict[int, float]  # the method's score per response, higher = better
    n_annotators: int
    # Response pairs whose non-tie votes split evenly (at least one each way): no majority orders them
    # (with two responses every method gives one tier, a tie); counted so an export can say so.
    even_splits: int = 0


@dataclass(frozen=True, slots=True)
class _Prompt:
    ids: list[int]  # response ids ascending (= columns)
    ranks: np.ndarray  # (m, K) fractional ranks
    iu: np.ndarray
    ju: np.ndarray
    wins_i: np.ndarray  # per pair (iu, ju): annotators ranking iu above ju
    wins_j: np.ndarray
    ties: np.ndarray


def _tally(labels: Sequence[RankingLabel]) -> _Prompt:
    if not labels:
        raise ValueError("consensus needs at least one ranking")
    if len({lab.prompt_id for lab in labels}) > 1:
        raise ValueError("consensus takes the rankings of one prompt")
    if len({lab.annotator_id for lab in labels}) < len(labels):
        raise ValueError("an annotator may rank a prompt only once")
    ids = sorted(chain.from_iterable(labels[0].tiers))
    if not ids:
        raise ValueError(f"prompt {labels[0].prompt_id}: a ranking needs at least one response")
    col = {r: c for c, r in enumerate(ids)}
    rows = []
    for lab in labels:
        if problem := tiers_problem(lab.tiers, ids):
            raise ValueError(f"prompt {lab.prompt_id}, annotator {lab.annotator_id}: a ranking {problem}")
        row = [0.0] * len(ids)
        placed = 0
        for tier in lab.tiers:
            for r in tier:
                row[col[r]] = placed + (len(tier) + 1) / 2
            placed += len(tier)
        rows.append(row)
    ranks = np.array(rows)
    iu, ju = np.triu_indices(len(ids), 1)
    signs = np.sign(ranks[:, ju] - ranks[:, iu])  # +1: iu ranked above ju
    wins_i = (signs > 0).sum(axis=0)
    wins_j = (signs < 0).sum(axis=0)
    return _Prompt(ids, ranks, iu, ju, wins_i, wins_j, len(labels) - wins_i - wins_j)


def _agreement(wins_i: np.ndarray, wins_j: np.ndarray, ties: np.ndarray) -> float | None:
    agree, total = _agree_total(wins_i, wins_j, ties, "tie_half")
    return float(agree.sum() / total.sum()) if total.sum() > 0 else None


def _tiers(ids: Sequence[int], scores: np.ndarray, tol: float) -> Tiers:
    """Group by score, highest first; a tier holds scores within `tol` of its best member."""
    order = sorted(range(len(ids)), key=lambda c: (-scores[c], ids[c]))
    tiers: Tiers = []
    top = None
    for c in order:
        if top is None or top - scores[c] > tol:
            tiers.append([])
            top = scores[c]
        tiers[-1].append(ids[c])
    return [sorted(t) for t in tiers]


def _result(p: _Prompt, method: str, scores: np.ndarray, tol: float, tiers: Tiers | None = None) -> Consensus:
    votes = {
        (p.ids[i], p.ids[j]): (int(a), int(b), int(t))
        for i, j, a, b, t in zip(p.iu, p.ju, p.wins_i, p.wins_j, p.ties, strict=True)
    }
    return Consensus(
        tiers=tiers if tiers is not None else _tiers(p.ids, scores, tol),
        method=method,
        agreement=_agreement(p.wins_i, p.wins_j, p.ties),
        pair_votes=votes,
        scores={r: float(s) for r, s in zip(p.ids, scores, strict=True)},
        n_annotators=len(p.ranks),
        even_splits=int(((p.wins_i == p.wins_j) & (p.wins_i > 0)).sum()),
    )


def borda(labels: Sequence[RankingLabel], *, tol: float = 1e-9) -> Consensus:
    """Mean fractional rank; score K - mean rank (Borda points, half a point per tie)."""
    p = _tally(labels)
    return _result(p, "borda", len(p.ids) - p.ranks.mean(axis=0), tol)


def borda_pairs(lo: np.ndarray, hi: np.ndarray, sign: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`borda` for every prompt at once, from all its labels' decisions (app.leaderboard.decisions.label_pairs: lo <
    hi response ids, sign +1 when lo was preferred, 0 for a tie). A response's Borda points summed over a prompt's
    labels are its wins plus half its ties, and every label of a prompt ranks the same responses, so comparing the
    sums orders each pair as `borda`'s mean ranks do. Returns each distinct pair once, with the consensus sign."""
    low = int(lo.min(initial=0))
    tie = (sign == 0) * 0.5
    # Points per response id, offset by the smallest (a project's response ids are nearly consecutive).
    points = np.bincount(np.concatenate([lo, hi]) - low, weights=np.concatenate([(sign > 0) + tie, (sign < 0) + tie]))
    base = int(hi.max(initial=0)) + 1
    key = np.sort(lo * base + hi)  # one int64 per pair; sorted, then each distinct one kept once
    key = key[np.concatenate([[True], key[1:] != key[:-1]])] if len(key) else key
    pair_lo, pair_hi = key // base, key % base
    gap = points[pair_lo - low] - points[pair_hi - low]
    return pair_lo, pair_hi, np.sign(gap).astype(np.int8)


def bradley_terry(labels: Sequence[RankingLabel], *, alpha: float = 0.01, tol: float = 1e-6) -> Consensus:
    """ML Bradley–Terry log-strengths from all pairs; a tie is half a win each way."""
    p = _tally(labels)
    k = len(p.ids)
    if k < 2:
        return _result(p, "bradley_terry", np.zeros(k), tol)
    # Doubled counts keep them integral: a win counts 2, a tie 1 each way.
    wins = np.zeros((k, k))
    wins[p.iu, p.ju] = 2 * p.wins_i + p.ties
    wins[p.ju, p.iu] = 2 * p.wins_j + p.ties
    import choix  # here: it imports scipy.stats (seconds), which Borda never needs

    params = choix.ilsr_pairwise_dense(wins, alpha=alpha)
    return _result(p, "bradley_terry", params, tol)


def plackett_luce(labels: Sequence[RankingLabel], *, alpha: float = 0.01, tol: float = 1e-6) -> Consensus:
    """ML Plackett–Luce log-strengths; tie groups by Breslow's rule."""
    p = _tally(labels)
    k = len(p.ids)
    col = {r: c for c, r in enumerate(p.ids)}
    data: list[tuple[int, tuple[int, ...]]] = []
    for lab in labels:
        remaining = [col[r] for r in chain.from_iterable(lab.tiers)]
        start = 0
        for tier in lab.tiers:
            members = remaining[start : start + len(tier)]
            rest = remaining[start:]
            for w in members:
                losers = tuple(c for c in rest if c != w)
                if losers:
                    data.append((w, losers))
            start += len(tier)
    if k < 2 or not data:
        return _result(p, "plackett_luce", np.zeros(k), tol)
    import choix

    params = choix.ilsr_top1(k, data, alpha=alpha)
    return _result(p, "plackett_luce", params, tol)


def _copeland(k: int, iu: np.ndarray, ju: np.ndarray, wins_i: np.ndarray, wins_j: np.ndarray) -> np.ndarray:
    score = np.zeros(k)
    np.add.at(score, iu, np.where(wins_i > wins_j, 1.0, np.where(wins_i == wins_j, 0.5, 0.0)))
    np.add.at(score, ju, np.where(wins_j > wins_i, 1.0, np.where(wins_i == wins_j, 0.5, 0.0)))
    return score


def pair_majority(labels: Sequence[RankingLabel]) -> Consensus:
    """Per-pair majority of non-tie votes, with counts; tiers by Copeland score."""
    p = _tally(labels)
    return _result(p, "pair_majority", _copeland(len(p.ids), p.iu, p.ju, p.wins_i, p.wins_j), 1e-9)


def ranked_pairs(labels: Sequence[RankingLabel]) -> Consensus:
    """Tideman ranked pairs; score = number of responses below in the locked graph."""
    p = _tally(labels)
    k = len(p.ids)
    majorities = []
    for i, j, a, b in zip(p.iu, p.ju, p.wins_i, p.wins_j, strict=True):
        if a != b:
            win, lose, w, v = (i, j, a, b) if a > b else (j, i, b, a)
            majorities.append((-(w - v), -w, p.ids[win], p.ids[lose], int(win), int(lose)))
    majorities.sort()
    below: list[set[int]] = [set() for _ in range(k)]  # locked edges: winner -> losers

    def reaches(src: int, dst: int) -> bool:
        stack, seen = [src], {src}
        while stack:
            node = stack.pop()
            if node == dst:
                return True
            for nxt in below[node] - seen:
                seen.add(nxt)
                stack.append(nxt)
        return False

    for *_, win, lose in majorities:
        if not reaches(lose, win):  # locking win -> lose must not close a cycle
            below[win].add(lose)
    # Layers: responses no remaining response is locked above come first.
    remaining = set(range(k))
    tiers: Tiers = []
    while remaining:
        beaten = set().union(*(below[c] for c in remaining)) & remaining
        layer = sorted(remaining - beaten)
        tiers.append(sorted(p.ids[c] for c in layer))
        remaining -= set(layer)
    scores = np.array([len(_descendants(below, c)) for c in range(k)], dtype=float)
    return _result(p, "ranked_pairs", scores, 0.0, tiers=tiers)


def _descendants(below: list[set[int]], c: int) -> set[int]:
    out: set[int] = set()
    stack = [c]
    while stack:
        for nxt in below[stack.pop()] - out:
            out.add(nxt)
            stack.append(nxt)
    return out


METHODS: dict[str, Callable[[Sequence[RankingLabel]], Consensus]] = {
    "borda": borda,
    "bradley_terry": bradley_terry,
    "plackett_luce": plackett_luce,
    "pair_majority": pair_majority,
    "ranked_pairs": ranked_pairs,
}


def consensus(labels: Sequence[RankingLabel], method: Method = "borda") -> Consensus:
    """The consensus of one prompt's rankings by the named method."""
    try:
        return METHODS[method](labels)
    except KeyError:
        raise ValueError(f"unknown consensus method {method!r}; one of {sorted(METHODS)}") from None
