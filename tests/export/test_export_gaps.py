"""Export rules no other test pins down (issue 12, item 8's known gaps): margins next to ties, `min_agreement` at
its boundary, and what the dedupe key holds. Expected values are worked by hand in each test."""

import orjson
import pytest

from app.export import service
from app.export.options import ExportOptions
from app.models import Project

STRENGTHS = ["significantly better", "better", "slightly better", "negligibly better / unsure"]


def rows(db, project, tmp_path, **options) -> tuple[list[dict], dict]:
    db.rollback()  # a fresh snapshot that sees what the test wrote
    path = tmp_path / "out.jsonl"
    counts = service.write_file(session=db, project=db.get(Project, project.id), options=ExportOptions(**options), path=path)
    return [orjson.loads(line) for line in path.read_bytes().splitlines()], counts


def test_consensus_margin_counts_only_the_winners_supporters_not_the_tie(seed, db, tmp_path):
    project = seed.project([{"id": "p", "prompt": "q", "responses": ["good", "bad"]}], kind="pairwise", allow_ties=True,
                           strength_scale=STRENGTHS)  # fmt: skip
    a, b, c = seed.annotators(3)
    seed.label(project, "p", a, [[0], [1]], strength=1)  # better: large margin 3 - 1 = 2
    seed.label(project, "p", b, [[0], [1]], strength=3)  # negligibly: 0
    seed.label(project, "p", c, [[0, 1]])  # a tie: no vote for the winner, so no part in its margin
    (row,), _ = rows(db, project, tmp_path, consensus="majority", margin="llama2_large", template="raw")
    assert (row["chosen"], row["votes_chosen"], row["votes_tie"]) == ("good", 2, 1)
    assert row["margin"] == pytest.approx((2 + 0) / 2)  # with the tie counted as 0 it would be 2/3


def test_rank_distance_counts_tiers_not_positions_and_a_tie_is_zero(seed, db, tmp_path):
    project = seed.project([{"id": "r", "prompt": "q", "responses": ["w", "x", "y", "z"]}], allow_ties=True)
    (a,) = seed.annotators(1)
    seed.label(project, "r", a, [[0], [1, 2], [3]])
    got, _ = rows(db, project, tmp_path, margin="rank_distance", ties="keep", template="raw")
    margins = {(r["chosen"], r["rejected"]): r["margin"] for r in got}
    # w is one tier above x and y and two above z (three positions); x and y tie in both orders at 0
    assert margins == {
        ("w", "x"): 1.0, ("w", "y"): 1.0, ("w", "z"): 2.0, ("x", "z"): 1.0, ("y", "z"): 1.0,
        ("x", "y"): 0.0, ("y", "x"): 0.0,
    }  # fmt: skip


@pytest.mark.parametrize("threshold, kept", [(0.5, True), (0.5000001, False), (0.4999999, True)])
def test_min_agreement_keeps_a_prompt_exactly_at_the_threshold(seed, db, tmp_path, threshold, kept):
    project = seed.project([{"id": "h", "prompt": "q", "responses": ["x", "y"]}], allow_ties=True)
    a, b = seed.annotators(2)
    seed.label(project, "h", a, [[0], [1]])
    seed.label(project, "h", b, [[0, 1]])  # a tie against a preference scores 1/2: agreement exactly 0.5
    got, counts = rows(db, project, tmp_path, min_agreement=threshold)
    assert (len(got) == 1) is kept and counts["dropped"]["below_min_agreement"] == (0 if kept else 1)


def test_dedupe_key_is_prompt_chosen_rejected_and_tie(seed, db, tmp_path):
    prompts = [{"id": "d1", "prompt": "same", "responses": ["x", "y"]}, {"id": "d2", "prompt": "other", "responses": ["x", "y"]}]
    project = seed.project(prompts, allow_ties=True)
    a, b, c, d = seed.annotators(4)
    seed.label(project, "d1", a, [[0], [1]])  # x > y
    seed.label(project, "d1", b, [[0, 1]])  # x = y: tie rows (x, y) and (y, x), not duplicates of a's
    seed.label(project, "d1", c, [[1], [0]])  # y > x: the other direction, not a duplicate
    seed.label(project, "d1", d, [[0], [1]])  # x > y again: the one duplicate
    seed.label(project, "d2", a, [[0], [1]])  # x > y under another prompt text: not a duplicate
    got, counts = rows(db, project, tmp_path, dedupe=True, ties="keep", template="raw")
    assert sorted((r["prompt"], r["chosen"], r["rejected"], r["tie"]) for r in got) == [
        ("other", "x", "y", False),
        ("same", "x", "y", False),
        ("same", "x", "y", True),
        ("same", "y", "x", False),
        ("same", "y", "x", True),
    ]
    assert counts["dropped"]["duplicates"] == 1
