"""Consensus rankings: Borda, Bradley–Terry / Plackett–Luce, per-pair majority, Ranked Pairs."""

import pytest

from app.agreement import consensus as c
from app.agreement.metrics import RankingLabel


def labels(*orders):
    return [RankingLabel(1, a, [list(t) for t in tiers]) for a, tiers in enumerate(orders)]


ALL = [c.borda, c.bradley_terry, c.plackett_luce, c.pair_majority, c.ranked_pairs]


@pytest.mark.parametrize("method", ALL)
def test_unanimous_rankings_are_kept(method):
    result = method(labels([[3], [1], [2]], [[3], [1], [2]]))
    assert result.tiers == [[3], [1], [2]] and result.agreement == 1.0 and result.n_annotators == 2


@pytest.mark.parametrize("method", ALL)
def test_majority_wins(method):
    result = method(labels([[1], [2], [3]], [[1], [2], [3]], [[3], [2], [1]]))
    assert result.tiers[0] == [1] and result.tiers[-1] == [3]


def test_borda_is_mean_rank_and_ties_form_a_tier():
    result = c.borda(labels([[1], [2]], [[2], [1]]))
    assert result.tiers == [[1, 2]]


def test_pair_votes_are_counted():
    result = c.pair_majority(labels([[1], [2]], [[1, 2]], [[2], [1]], [[1], [2]]))
    assert result.pair_votes[(1, 2)] == (2, 1, 1)


def test_ranked_pairs_breaks_a_condorcet_cycle_by_strongest_majority():
    # 1>2 (strong: 3 votes), 2>3 (2 votes), 3>1 (2 votes): lock 1>2 first, then 2>3; 3>1 would close a cycle.
    orders = [[[1], [2], [3]]] * 2 + [[[3], [1], [2]]] * 1 + [[[2], [3], [1]]] * 1 + [[[1], [2], [3]]]
    result = c.ranked_pairs(labels(*orders))
    assert result.tiers == [[1], [2], [3]]


def test_agreement_matches_the_pairwise_rate():
    from app.agreement.metrics import pairwise_agreement

    data = labels([[1], [2], [3]], [[2], [1], [3]], [[1, 2], [3]])
    assert c.borda(data).agreement == pytest.approx(pairwise_agreement(data, convention="tie_half", pooling="pooled").value)


@pytest.mark.parametrize("method", ALL)
def test_an_even_split_is_counted_not_dropped_silently(method):
    # 1 vs 2 splits 1-1 (the tie vote abstains); 1 vs 3 and 2 vs 3 have a clear majority; all-tie pairs are no split.
    result = method(labels([[1], [2], [3]], [[2], [1], [3]], [[1, 2], [3]]))
    assert result.even_splits == 1
    assert method(labels([[1, 2]], [[1, 2]])).even_splits == 0
    assert method(labels([[1], [2]], [[1], [2]], [[2], [1]])).even_splits == 0


@pytest.mark.parametrize(
    "tiers, problem",
    [([[1], [1]], "exactly once"), ([[1], [3]], "exactly once"), ([[1], [], [2]], "empty groups")],
)
def test_every_ranking_lists_the_same_responses_once(tiers, problem):
    with pytest.raises(ValueError, match=problem):
        c.borda(labels([[1], [2]], tiers))
