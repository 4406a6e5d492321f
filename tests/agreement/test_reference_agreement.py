"""Agreement with an imported reference label (a public dataset's choice), checked against a brute-force count
on generated data: annotators who agree with it more or less often, reference ties, and prompts without one."""

import json
import random
from collections import defaultdict

import pytest
from sqlalchemy import select

from app.agreement import service
from app.models import Prompt, Role, User

CONVENTIONS = ("tie_half", "tie_as_category", "strict_only")


def brute(reference: str, human: str, convention: str) -> float | None:
    """One human label against the reference; each is "good" (the file's chosen), "bad" or "tie"."""
    if convention == "strict_only" and "tie" in (reference, human):
        return None
    if reference == human:
        return 1.0
    return 0.5 if convention == "tie_half" and "tie" in (reference, human) else 0.0


def mean(values):
    values = [v for v in values if v is not None]
    return (sum(values) / len(values) if values else None), len(values)


@pytest.fixture
def labelled(client, make_user, make_project, bearer):
    rng = random.Random(11)
    annotators = [make_user(Role.annotator, email=f"a{i}@example.org") for i in range(4)]
    project = make_project(kind="pairwise", overlap=3, allow_ties=True, members=annotators)
    staff = bearer(make_user(Role.researcher))
    reference = {}  # prompt text -> "good" / "tie"
    rows = []
    for i in range(30):
        tie = rng.random() < 0.25
        score = rng.randint(1, 9)
        rows.append(
            {
                "prompt": f"question {i}",
                "chosen": f"good {i}",
                "rejected": f"bad {i}",
                "prompt_id": f"p{i}",
                "score_chosen": score + (0 if tie else 1),
                "score_rejected": score,
            }
        )
        reference[f"question {i}"] = "tie" if tie else "good"
    rows += [{"id": f"plain{i}", "prompt": f"plain {i}", "responses": [f"good x{i}", f"bad x{i}"]} for i in range(5)]
    content = "\n".join(json.dumps(r) for r in rows).encode()
    response = client.post(f"/api/projects/{project.id}/imports", files={"file": ("ref.jsonl", content)}, headers=staff)
    assert response.json()["imported"] == 35, response.text

    # Each annotator agrees with the reference with their own probability, sometimes ties.
    weights = {0: (0.9, 0.05, 0.05), 1: (0.6, 0.2, 0.2), 2: (0.3, 0.5, 0.2), 3: (0.5, 0.0, 0.5)}
    human: dict[tuple[str, str], str] = {}  # (email, prompt text) -> good / bad / tie
    active = {n: bearer(user) for n, user in enumerate(annotators)}
    while active:  # one task each in turn, so every annotator labels some of every kind
        for n, headers in list(active.items()):
            task = client.get(f"/api/projects/{project.id}/next", headers=headers)
            if task.status_code == 204:
                del active[n]
                continue
            task, user = task.json(), annotators[n]
            by_kind = {r["text"].split(" ")[0]: r["id"] for r in task["responses"]}
            choice = rng.choices(["good", "bad", "tie"], weights[n])[0]
            other = "bad" if choice == "good" else "good"
            body = {"tie": True} if choice == "tie" else {"chosen": by_kind[choice], "rejected": by_kind[other]}
            assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers).status_code == 201
            human[(user.email, task["prompt"])] = choice
    return project, staff, reference, human


def test_reference_agreement_matches_brute_force(client, labelled):
    project, staff, reference, human = labelled
    report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
    on_reference = {key: choice for key, choice in human.items() if key[1] in reference}
    (only,) = report["references"]
    assert only["prompts"] == 30 and only["source"] == "trl: ref.jsonl"
    assert only["labels"] == len(on_reference) == 90
    assert "tie" in reference.values() and {"good", "bad", "tie"} <= set(on_reference.values())
    for convention in CONVENTIONS:
        value, n = mean(brute(reference[text], choice, convention) for (_, text), choice in on_reference.items())
        metric = only[f"agreement_{convention}"]
        assert metric["value"] == pytest.approx(value) and metric["n"] == n
        assert convention in metric["definition"] or "tie" in metric["definition"]
    by_email = {a["email"]: a for a in report["annotators"]}
    per_annotator = defaultdict(dict)
    for (email, text), choice in on_reference.items():
        per_annotator[email][text] = choice
    assert len(per_annotator) == 4
    for email, labels in per_annotator.items():
        for convention in CONVENTIONS:
            value, n = mean(brute(reference[text], choice, convention) for text, choice in labels.items())
            got = by_email[email]["reference_agreements"]["trl: ref.jsonl"][convention]
            assert got["value"] == pytest.approx(value) and got["n"] == n, (email, convention)
    # The careful annotator agrees with the reference most.
    tie_half = {e: a["reference_agreements"]["trl: ref.jsonl"]["tie_half"]["value"] for e, a in by_email.items()}
    assert max(tie_half, key=tie_half.get) == "a0@example.org"


def test_dashboard_cli_and_prompt_page_show_the_reference(client, db, labelled, login_as):
    project, staff, reference, _human = labelled
    report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
    db.rollback()
    researcher = login_as(db.scalar(select(User).where(User.role == "researcher")))
    page = researcher.get(f"/projects/{project.id}/agreement").text
    value = report["references"][0]["agreement_tie_half"]["value"]
    assert f'data-metric="reference_tie_half">{value:.3f}<' in page
    a0 = next(a for a in report["annotators"] if a["email"] == "a0@example.org")["reference_agreements"]
    a0 = a0["trl: ref.jsonl"]["tie_half"]
    assert f'data-reference="a0@example.org">{a0["value"] * 100:.0f}% <span class="muted">({a0["n"]})' in page
    assert "Agreement with trl: ref.jsonl" in page

    from app.agreement.schemas import AgreementReport
    from app.cli import format_report

    text = "\n".join(format_report(AgreementReport.model_validate(report)))
    assert "AGREEMENT WITH trl: ref.jsonl (30 prompts; 90 labels)" in text
    assert "agreement_tie_half" in text and f"{value:.3f}" in text

    prompt = db.scalar(select(Prompt).where(Prompt.project_id == project.id, Prompt.external_id.like("p3:%")))
    view = service.prompt_annotations(session=db, project=project, prompt_id=prompt.id)
    texts = {r.id: r.text for r in view["responses"]}
    ranks = {texts[rid]: rank for rid, rank in view["reference_ranks"]["trl: ref.jsonl"].items()}
    assert ranks == ({"good 3": 1, "bad 3": 1} if reference["question 3"] == "tie" else {"good 3": 1, "bad 3": 2})
    html = researcher.get(f"/projects/{project.id}/prompts/{prompt.id}").text
    assert "reference labels from trl: ref.jsonl" in html and '<th title="reference label">trl: ref.jsonl</th>' in html


def test_no_reference_says_why(client, make_project, make_user, bearer):
    project = make_project(kind="pairwise")
    staff = bearer(make_user(Role.researcher))
    report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
    assert report["references"] == [] and all(a["reference_agreements"] is None for a in report["annotators"])
