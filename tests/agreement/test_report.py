"""The typed agreement report: its shape in the API, and what it says where a number alone would mislead
(an even split, a prompt with one response, Kendall's W without chance correction, prompt_mean)."""

import pytest
from sqlalchemy import select

from app.agreement import metrics as m
from app.agreement.metrics import PairwiseLabel, RankingLabel
from app.agreement.schemas import AgreementReport
from app.cli import format_report
from app.export import card
from app.models import Role, User
from tests.agreement.test_agreement_app import upload


def test_a_prompt_with_one_response_says_so_not_fewer_than_2_annotators():
    report = m.agreement_report([RankingLabel(1, 1, [[5]]), RankingLabel(1, 2, [[5]])], kind="ranking")
    assert report.prompts[0].n_annotators == 2
    assert report.prompts[0].reason == "only one response: no pair to compare"
    assert report.project["kendall_w_mean"].reason == "every prompt has only one response: nothing to rank"


def test_even_splits_are_counted_per_prompt_and_in_the_summary():
    # Prompt 1: responses 1 and 2 split 1-1 (the third annotator's tie abstains); 1 and 3, 2 and 3 have a majority.
    # Prompt 2: unanimous. An all-tie pair is agreement, not a split.
    ranking = [
        RankingLabel(1, 1, [[1], [2], [3]]),
        RankingLabel(1, 2, [[2], [1], [3]]),
        RankingLabel(1, 3, [[1, 2], [3]]),
        RankingLabel(2, 1, [[4], [5]]),
        RankingLabel(2, 2, [[4], [5]]),
        RankingLabel(3, 1, [[6, 7]]),
        RankingLabel(3, 2, [[6, 7]]),
    ]
    report = m.agreement_report(ranking, kind="ranking")
    assert [q.even_splits for q in report.prompts] == [1, 0, 0] and report.summary.even_splits == 1
    pairwise = [PairwiseLabel(1, 1, 1, 2, "a"), PairwiseLabel(1, 2, 1, 2, "b"), PairwiseLabel(2, 1, 3, 4, "a")]
    assert m.agreement_report(pairwise, kind="pairwise").summary.even_splits == 1


def test_prompt_mean_weighs_prompts_not_comparisons():
    """What the module docstring says: the mean of each prompt's pooled rate, unlike irrCAC's per-comparison pa."""
    labels = [
        RankingLabel(1, 1, [[1], [2], [3], [4]]),  # 6 response pairs, all agreed
        RankingLabel(1, 2, [[1], [2], [3], [4]]),
        RankingLabel(2, 1, [[5], [6]]),  # 1 response pair, disagreed
        RankingLabel(2, 2, [[6], [5]]),
    ]
    value = m.pairwise_agreement(labels, convention="tie_as_category", pooling="prompt_mean").value
    assert value == pytest.approx((1.0 + 0.0) / 2)
    assert value != pytest.approx(6 / 7)  # the per-comparison mean


def test_the_api_documents_the_report_shape(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/api/projects/{project_id}/agreement"]["get"]["responses"]["200"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/AgreementReport"}
    assert "even_splits" in spec["components"]["schemas"]["Summary"]["properties"]


def test_dashboard_says_w_is_not_chance_corrected_and_counts_even_splits(client, db, make_user, make_project, bearer, login_as):
    first, second = make_user(Role.annotator), make_user(Role.annotator)
    project = make_project(members=[first, second], overlap=2)
    upload(client, project, bearer(make_user(Role.researcher)), n=1, k=3)
    for user, swap in ((first, False), (second, True)):
        h = bearer(user)
        task = client.get(f"/api/projects/{project.id}/next", headers=h).json()
        ids = sorted(r["id"] for r in task["responses"])
        order = [ids[1], ids[0], ids[2]] if swap else ids
        body = {"ranking": [[i] for i in order]}
        assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=h).status_code == 201
    db.rollback()
    researcher = db.scalar(select(User).where(User.role == "researcher"))
    page = login_as(researcher).get(f"/projects/{project.id}/agreement").text
    assert "Kendall&#39;s W is not chance-corrected" in page or "Kendall's W is not chance-corrected" in page
    assert '<p class="muted" id="even-splits">1 response pairs split evenly' in page


def _report_with_an_even_split() -> AgreementReport:
    labels = [RankingLabel(1, 1, [[1], [2]]), RankingLabel(1, 2, [[2], [1]])]
    return m.agreement_report(labels, kind="ranking")


def test_cli_names_even_splits_and_w_without_chance_correction():
    text = "\n".join(format_report(_report_with_an_even_split()))
    assert "1 response pairs split evenly" in text and "Kendall's W is not chance-corrected" in text


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"format": "trl", "consensus": "none", "ties": "drop"}, "(as many votes each way)."),
        (
            {"format": "trl", "consensus": "borda", "ties": "drop"},
            "(as many votes each way): no majority orders them in the `borda` consensus (a two-response prompt's is a tie, "
            "which gives no pair rows while `ties` is `drop`).",
        ),
    ],
)
def test_dataset_card_names_even_splits_and_w_without_chance_correction(options, expected):
    manifest = {
        "project": {"name": "p", "kind": "ranking", "id": 1},
        "counts": {"rows": {"train": 1}, "prompts": {"train": 1}, "annotators": 2, "dropped": {}},
        "options": options,
        "created_at": "2026-11-30",
    }
    text = card.render(manifest=manifest, cols=[], data_files={"train": "data/train.jsonl"}, report=_report_with_an_even_split())
    assert "- Kendall's W is not chance-corrected" in text
    assert "- 1 response pairs split evenly between annotators " + expected in text
    assert "| kendall_w_mean | 0.000 |" in text  # the shared formatter's three digits


def test_a_gold_answer_with_an_empty_group_is_refused_by_name(client, db, make_user, make_project, bearer):
    from app.models import Prompt, Response

    project = make_project()
    staff = bearer(make_user(Role.researcher))
    upload(client, project, staff, n=1, k=3)
    db.rollback()
    prompt = db.scalar(select(Prompt).where(Prompt.project_id == project.id))
    ids = list(db.scalars(select(Response.id).where(Response.prompt_id == prompt.id).order_by(Response.position)))
    url = f"/api/projects/{project.id}/prompts/{prompt.id}/gold"
    empty = client.put(url, json={"ranking": [[ids[0]], [], [ids[1], ids[2]]]}, headers=staff)
    assert empty.status_code == 422 and "`ranking` must not contain empty groups" in empty.text
    twice = client.put(url, json={"ranking": [[ids[0]], [ids[0], ids[1], ids[2]]]}, headers=staff)
    assert twice.status_code == 422 and "exactly once" in twice.text
    db.rollback()
    assert db.get(Prompt, prompt.id).is_gold is False  # nothing stored
