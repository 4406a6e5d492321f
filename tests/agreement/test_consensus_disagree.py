"""Inputs where the consensus methods disagree (in test_consensus.py they all agree), so a mutant of one method
cannot hide behind the others. Borda, Copeland (pair_majority) and Ranked Pairs are worked by hand below;
Bradley–Terry and Plackett–Luce against a plain maximum-likelihood fit with scipy (not choix, which the app uses)."""

import numpy as np
import pytest
from scipy.optimize import minimize

from app.agreement import consensus as c
from app.agreement.metrics import RankingLabel


def labels(orders):
    return [RankingLabel(1, a, [[r] for r in order]) for a, order in enumerate(orders)]


def mle_order(orders, model):
    """Response ids best first by an unregularised ML fit: BT over every pair of each ranking, or PL's
    sequential choices (each position chosen from the responses not yet placed)."""
    ids = sorted(orders[0])
    col = {r: i for i, r in enumerate(ids)}

    def nll(free):
        t = np.concatenate([[0.0], free])  # the first strength is fixed at 0 (the scale is free)
        total = 0.0
        for order in orders:
            cs = [col[r] for r in order]
            for n, w in enumerate(cs[:-1]):
                if model == "pl":
                    total -= t[w] - np.log(np.exp(t[cs[n:]]).sum())
                else:
                    total -= sum(t[w] - np.logaddexp(t[w], t[x]) for x in cs[n + 1 :])
        return total

    fit = np.concatenate([[0.0], minimize(nll, np.zeros(len(ids) - 1)).x])
    return [ids[i] for i in np.argsort(-fit)]


# 3 x A>B>C and 2 x B>C>A (A=1, B=2, C=3).
# Borda (2, 1, 0 points): A 6, B 3 + 4 = 7, C 2 -> B > A > C. Majorities: A>B 3-2, A>C 3-2, B>C 5-0, so
# Copeland A 2, B 1, C 0 and Ranked Pairs (lock B>C, then A>B, A>C) both give A > B > C: the Condorcet winner
# is not the Borda winner.
CONDORCET_VS_BORDA = [[1, 2, 3]] * 3 + [[2, 3, 1]] * 2
# Five rankings of 10..13 where PL (which weighs who comes first) and BT (every pair alike) order 10 and 11
# differently. Borda (3, 2, 1, 0 points): 10: 6, 11: 5, 12: 11, 13: 8. Majorities: 12 beats all, 13 beats 10
# (3-2) and 11 (3-2), 10 beats 11 (3-2): Copeland and Ranked Pairs 12 > 13 > 10 > 11, as Borda.
PL_VS_BT = [[13, 12, 11, 10], [10, 11, 12, 13], [12, 10, 11, 13], [13, 12, 11, 10], [12, 13, 10, 11]]
# A Condorcet cycle 1>2 (4-1), 2>3 (3-2), 3>1 (3-2): Copeland gives every response one win, one tier;
# Ranked Pairs locks the strongest majority 1>2, then 2>3 (margin 1, tied with 3>1 and as many winning votes; the lower winner id locks first),
# then refuses 3>1, which would close the cycle.
CYCLE = [[1, 2, 3]] * 2 + [[3, 1, 2]] * 2 + [[2, 3, 1]]


def test_condorcet_winner_is_not_the_borda_winner():
    data = labels(CONDORCET_VS_BORDA)
    assert c.borda(data).tiers == [[2], [1], [3]]
    assert c.pair_majority(data).tiers == [[1], [2], [3]]
    assert c.ranked_pairs(data).tiers == [[1], [2], [3]]
    assert c.pair_majority(data).pair_votes == {(1, 2): (3, 2, 0), (1, 3): (3, 2, 0), (2, 3): (5, 0, 0)}
    for method, model in ((c.bradley_terry, "bt"), (c.plackett_luce, "pl")):
        assert [r for t in method(data).tiers for r in t] == mle_order(CONDORCET_VS_BORDA, model) == [2, 1, 3]


def test_plackett_luce_and_bradley_terry_disagree():
    data = labels(PL_VS_BT)
    assert mle_order(PL_VS_BT, "pl") == [12, 13, 11, 10] and mle_order(PL_VS_BT, "bt") == [12, 13, 10, 11]
    assert c.plackett_luce(data).tiers == [[12], [13], [11], [10]]
    assert c.bradley_terry(data).tiers == [[12], [13], [10], [11]]
    for method in (c.borda, c.pair_majority, c.ranked_pairs):
        assert method(data).tiers == [[12], [13], [10], [11]], method.__name__


def test_a_cycle_is_one_copeland_tier_but_ranked_pairs_breaks_it():
    data = labels(CYCLE)
    # 1 vs 2: above in [1,2,3] x2 and [3,1,2] x2 -> 4-1; 2 vs 3: [1,2,3] x2, [2,3,1] -> 3-2; 3 vs 1: [3,1,2] x2,
    # [2,3,1] -> 3-2. Every response wins once: Copeland 1 each.
    votes = c.pair_majority(data).pair_votes
    assert votes == {(1, 2): (4, 1, 0), (2, 3): (3, 2, 0), (1, 3): (2, 3, 0)}
    assert c.pair_majority(data).tiers == [[1, 2, 3]]
    assert c.ranked_pairs(data).tiers == [[1], [2], [3]]
    # Borda (2, 1, 0): 1: 4 + 2 + 0 = 6, 2: 2 + 0 + 2 = 4, 3: 0 + 4 + 1 = 5 -> 1 > 3 > 2
    assert c.borda(data).tiers == [[1], [3], [2]]


@pytest.mark.parametrize("method", [c.borda, c.bradley_terry, c.plackett_luce, c.pair_majority, c.ranked_pairs])
def test_a_tied_consensus_keeps_the_tie(method):
    # Two opposite rankings: every method must call it a tie, not pick the lower id.
    assert method(labels([[1, 2], [2, 1]])).tiers == [[1, 2]]
