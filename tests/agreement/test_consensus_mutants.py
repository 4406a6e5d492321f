"""Consensus worked out by hand, every field of the result: scores, pair votes, agreement, the method's name, the
errors on bad input, one-response prompts, and the Ranked Pairs lock order (see TESTING.md, mutation testing)."""

import math
import re

import pytest

from app.agreement import consensus as c
from app.agreement.metrics import RankingLabel


def labels(*orders, prompt_id=1):
    return [RankingLabel(prompt_id, a, [list(t) for t in tiers]) for a, tiers in enumerate(orders, start=1)]


class TestBorda:
    def test_every_field(self):
        # Fractional ranks: A1 [[1], [2, 3]] -> 1, 2.5, 2.5; A2 [[2], [1], [3]] -> 2, 1, 3.
        # Means 1.5, 1.75, 2.75; score = K - mean = 1.5, 1.25, 0.25.
        # Votes (for lower id, for higher id, tie): (1, 2) 1-1, (1, 3) 2-0, (2, 3) 1-0 with a tie: one even split.
        # Agreement (tie_half, pooled): (1, 2) 0, (1, 3) 1, (2, 3) 0.5 -> 1.5 / 3.
        result = c.borda(labels([[1], [2, 3]], [[2], [1], [3]]))
        assert result == c.Consensus(
            tiers=[[1], [2], [3]],
            method="borda",
            agreement=0.5,
            pair_votes={(1, 2): (1, 1, 0), (1, 3): (2, 0, 0), (2, 3): (1, 0, 1)},
            scores={1: 1.5, 2: 1.25, 3: 0.25},
            n_annotators=2,
            even_splits=1,
        )

    def test_a_tier_holds_scores_within_tol_of_its_best_member_inclusive(self):
        # Scores 1.5, 1.25, 0.25 (above): 1.25 is exactly 0.25 below the best, so it shares its tier.
        result = c.borda(labels([[1], [2, 3]], [[2], [1], [3]]), tol=0.25)
        assert result.tiers == [[1, 2], [3]]

    def test_one_annotator_has_no_agreement_and_two_have_one(self):
        assert c.borda(labels([[1], [2]])).agreement is None
        assert c.borda(labels([[1], [2]], [[1], [2]])).agreement == 1.0  # a single comparison: total 1


@pytest.mark.parametrize("method", sorted(c.METHODS))
class TestEveryMethod:
    def test_the_dispatcher_names_the_method(self, method):
        given = labels([[1], [2], [3]], [[1], [3], [2]])
        result = c.consensus(given, method)
        assert result.method == method
        assert result == c.METHODS[method](given)

    def test_one_response(self, method):
        # Nothing to compare: one tier, a zero score (Borda: K - rank = 0), no pairs, no agreement.
        result = c.consensus(labels([[5]], [[5]]), method)
        assert result == c.Consensus(
            tiers=[[5]], method=method, agreement=None, pair_votes={}, scores={5: 0.0}, n_annotators=2, even_splits=0
        )

    def test_two_responses_are_ordered(self, method):
        result = c.consensus(labels([[2], [1]], [[2], [1]]), method)
        assert result.tiers == [[2], [1]] and result.scores[2] > result.scores[1]


def test_borda_is_the_default():
    assert c.consensus(labels([[2], [1]])).method == "borda"


@pytest.mark.parametrize("method", [c.bradley_terry, c.plackett_luce])
def test_the_fits_are_barely_regularised(method):
    # Two responses, 2 of 3 annotators prefer 1: both models' maximum-likelihood log-strength difference is
    # log(2/3 / 1/3) = log 2. The small L2 term (alpha = 0.01) moves it by well under 0.02.
    result = method(labels([[1], [2]], [[1], [2]], [[2], [1]]))
    assert result.scores[1] - result.scores[2] == pytest.approx(math.log(2), abs=0.02)


def test_plackett_luce_tie_groups_by_breslow():
    # A tie group [1, 2] on top: each member is chosen from {1, 2, 3}; 3, alone in the last tier, is chosen
    # from nothing. So 1 and 2 are symmetric, and above 3.
    result = c.plackett_luce(labels([[1, 2], [3]], [[1, 2], [3]]))
    assert result.tiers == [[1, 2], [3]] and result.scores[1] == pytest.approx(result.scores[2])


class TestRankedPairs:
    def test_chain_scores_count_the_responses_below(self):
        result = c.ranked_pairs(labels([[1], [2], [3]], [[1], [2], [3]]))
        assert result.tiers == [[1], [2], [3]] and result.scores == {1: 2.0, 2: 1.0, 3: 0.0}
        assert result.method == "ranked_pairs"

    def test_tiers_are_layers_of_the_locked_graph_not_score_groups(self):
        # (1, 2) 2-0 locks 1 > 2; (1, 3) and (2, 3) split 1-1 and are never locked. Layers: nothing is locked above
        # 1 or 3, so they come first: [[1, 3], [2]]. Grouping by score (1: 1 below; 2, 3: none) would give [[1], [2, 3]].
        result = c.ranked_pairs(labels([[1], [2], [3]], [[3], [1], [2]]))
        assert result.tiers == [[1, 3], [2]]
        assert result.scores == {1: 1.0, 2: 0.0, 3: 0.0}

    def test_larger_margin_locks_first(self):
        # Votes: 2 > 1 by 3-2, 1 > 3 by 3-2 (margins 1, five votes each), 3 > 2 by 3-1 with a tie (margin 2, four votes).
        # By margin: lock 3 > 2, then 1 > 3 (same margin and winning votes as 2 > 1: lower winner id first);
        # 2 > 1 would close the cycle. Result 1, 3, 2 (by the number of votes it would be 2, 1, 3).
        given = labels([[3], [2], [1]], [[1], [3], [2]], [[2, 3], [1]], [[1], [3], [2]], [[2], [1], [3]])
        result = c.ranked_pairs(given)
        assert result.pair_votes == {(1, 2): (2, 3, 0), (1, 3): (3, 2, 0), (2, 3): (1, 3, 1)}
        assert result.tiers == [[1], [3], [2]]

    def test_equal_margins_lock_more_winning_votes_first(self):
        # Votes: 2 > 1 by 2-1 with two ties, 1 > 3 by 3-2, 3 > 2 by 3-2: every margin 1. More winning votes first:
        # 1 > 3 and 3 > 2 (3 votes each) lock, 2 > 1 (2 votes) would close the cycle. Result 1, 3, 2.
        given = labels([[1], [3], [2]], [[2, 1], [3]], [[2], [1], [3]], [[3], [1, 2]], [[3], [2], [1]])
        result = c.ranked_pairs(given)
        assert result.pair_votes == {(1, 2): (1, 2, 2), (1, 3): (3, 2, 0), (2, 3): (2, 3, 0)}
        assert result.tiers == [[1], [3], [2]] and result.scores == {1: 2.0, 2: 0.0, 3: 1.0}


class TestBadInput:
    @pytest.mark.parametrize(
        "given, message",
        [
            ([], "consensus needs at least one ranking"),
            (labels([[1], [2]]) + labels([[1], [2]], prompt_id=2), "consensus takes the rankings of one prompt"),
            (labels([[1], [2]]) + labels([[2], [1]]), "an annotator may rank a prompt only once"),
            ([RankingLabel(7, 1, [])], "prompt 7: a ranking needs at least one response"),
            (
                [RankingLabel(7, 1, [[1], [2]]), RankingLabel(7, 2, [[1]])],
                "prompt 7, annotator 2: a ranking must list each of the prompt's responses exactly once: "
                "expected [1, 2], got [1]",
            ),
        ],
    )
    def test_refused(self, given, message):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            c.borda(given)

    def test_unknown_method(self):
        message = "unknown consensus method 'median'; one of ['borda', 'bradley_terry', 'pair_majority', 'plackett_luce', 'ranked_pairs']"
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            c.consensus(labels([[1], [2]]), "median")  # type: ignore[arg-type]
