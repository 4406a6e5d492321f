"""The careless-annotator flag: agreement with the leave-one-out consensus not significantly above chance,
by a one-sided binomial test at chance 0.5 over the comparisons where neither side ties (ChanceTest)."""

import pytest
from scipy.stats import binomtest
from sqlalchemy import select

from app import demo
from app.agreement import formatting, service
from app.agreement import metrics as m
from app.agreement.schemas import CARELESS_ALERT_P, CARELESS_MIN_COMPARISONS
from app.models import Project


def _pairwise(prompt: int, annotator: int, choice: str) -> m.PairwiseLabel:
    return m.PairwiseLabel(prompt, annotator, 10 * prompt, 10 * prompt + 1, choice)  # type: ignore[arg-type]


def test_p_value_is_scipys_one_sided_binomial_on_a_hand_built_case():
    """12 pairwise prompts: annotators 1 and 2 always choose A; annotator 3 chooses A on 8, B on 3, ties on one.
    Annotator 3's strict comparisons against the others' consensus (A, by 1 and 2): 11 (the tie is left out),
    8 agreeing."""
    labels = []
    for q in range(12):
        labels += [_pairwise(q, 1, "a"), _pairwise(q, 2, "a")]
        labels.append(_pairwise(q, 3, "tie" if q == 11 else "b" if q in (1, 4, 7) else "a"))
    rows = {a.annotator_id: a for a in m.agreement_report(labels, kind="pairwise").annotators}
    test = rows[3].above_chance
    assert (test.hits, test.n, test.chance) == (8, 11, 0.5)
    assert test.p_value == pytest.approx(binomtest(8, 11, 0.5, alternative="greater").pvalue)
    assert test.p_value == pytest.approx(sum(__import__("math").comb(11, k) for k in range(8, 12)) / 2**11)
    assert rows[3].careless_alert  # p ≈ 0.11: not significantly above chance
    # Annotator 1 against 2 and 3: A (+1) where 3 chose A or tied, a tie where 3's B cancels 2's A (left out).
    assert rows[1].above_chance.n == 9 and rows[1].above_chance.hits == 9
    assert not rows[1].careless_alert


def test_ranking_counts_strict_pairs_against_the_mean_rank_consensus():
    """Three annotators rank 3 responses on 5 prompts. 1 and 2 rank [r0, r1, r2]; 3 ranks the reverse.
    For 3, the others' consensus is r0 > r1 > r2: all 3 response pairs disagree, on every prompt."""
    labels = []
    for q in range(5):
        ids = [3 * q, 3 * q + 1, 3 * q + 2]
        labels += [m.RankingLabel(q, 1, [[i] for i in ids]), m.RankingLabel(q, 2, [[i] for i in ids])]
        labels.append(m.RankingLabel(q, 3, [[i] for i in reversed(ids)]))
    rows = {a.annotator_id: a for a in m.agreement_report(labels, kind="ranking").annotators}
    assert (rows[3].above_chance.hits, rows[3].above_chance.n) == (0, 15)
    assert rows[3].above_chance.p_value == pytest.approx(1.0)
    assert rows[3].careless_alert
    # 1 against the mean rank of 2 and 3: 2 and 3 tie every pair (mean ranks equal), so nothing strict remains.
    assert rows[1].above_chance.n == 0 and rows[1].above_chance.reason
    assert not rows[1].careless_alert


def test_too_few_comparisons_are_not_flagged():
    labels = []
    for q in range(CARELESS_MIN_COMPARISONS - 1):
        labels += [_pairwise(q, 1, "a"), _pairwise(q, 2, "a"), _pairwise(q, 3, "b" if q % 2 else "a")]
    row = {a.annotator_id: a for a in m.agreement_report(labels, kind="pairwise").annotators}[3]
    assert row.above_chance.n == CARELESS_MIN_COMPARISONS - 1
    assert row.above_chance.p_value >= CARELESS_ALERT_P
    assert not row.careless_alert and row.careless_undecided


def test_the_minimum_is_the_least_n_at_which_the_test_can_reach_significance():
    """Below it even agreeing on every comparison is not significant, so no verdict is possible."""
    below, at = CARELESS_MIN_COMPARISONS - 1, CARELESS_MIN_COMPARISONS
    assert binomtest(below, below, 0.5, alternative="greater").pvalue >= CARELESS_ALERT_P
    assert binomtest(at, at, 0.5, alternative="greater").pvalue < CARELESS_ALERT_P
    labels = []
    for q in range(at):  # annotator 3 agrees with 1 and 2 on every one of exactly `at` comparisons
        labels += [_pairwise(q, 1, "a"), _pairwise(q, 2, "a"), _pairwise(q, 3, "a")]
    row = {a.annotator_id: a for a in m.agreement_report(labels, kind="pairwise").annotators}[3]
    assert row.above_chance.n == at and not row.careless_alert and not row.careless_undecided


@pytest.mark.parametrize("project_name", [demo.RANKING_PROJECT, demo.PAIRWISE_PROJECT])
def test_the_demos_random_clicker_is_flagged_and_its_careful_raters_are_not(db, project_name):
    """A newcomer's first dashboard must not raise a false alarm: each careful rater agrees with the others
    significantly above chance, in both demo projects, whatever order the queue showed the responses in."""
    db.commit()
    for _ in demo.create(db, known_passwords=True):
        pass
    db.commit()
    project = db.scalar(select(Project).where(Project.name == project_name))
    report = service.project_report(session=db, project=project)
    by_email = {a.email: a for a in report.annotators}
    assert by_email["random@example.org"].careless_alert, by_email["random@example.org"].above_chance
    careful = [email for email, style in demo.SEEDED_RATERS.items() if style == "careful"]
    assert len(careful) == 3
    for email in careful:
        assert not by_email[email].careless_alert, by_email[email].above_chance
        assert not by_email[email].careless_undecided, by_email[email].above_chance
        assert by_email[email].above_chance.p_value < CARELESS_ALERT_P


def test_dashboard_shows_the_flag_in_red_with_its_p_value(client, db, make_user):
    from tests.conftest import login

    db.commit()
    for _ in demo.create(db, known_passwords=True):
        pass
    db.commit()
    project = db.scalar(select(Project).where(Project.name == demo.RANKING_PROJECT))
    report = service.project_report(session=db, project=project)
    random_row = next(a for a in report.annotators if a.email == "random@example.org")
    login(client, make_user("researcher"))
    html = client.get(f"/projects/{project.id}/agreement").text
    row = html.split('data-annotator="random@example.org"')[1].split("</tr>")[0]
    assert 'data-careless="true"' in row
    assert formatting.p_value(random_row.above_chance.p_value) in row
    careful = html.split('data-annotator="rater@example.org"')[1].split("</tr>")[0]
    assert 'data-careless="true"' not in careful
