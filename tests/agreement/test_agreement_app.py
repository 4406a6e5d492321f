"""Agreement through the app: JSON, dashboard and CLI agree with each other and with the references;
careless annotators stand out; low-agreement prompts get extra annotators; gold accuracy is shown."""

import json
import os
import random
import subprocess
import sys

import pytest
from sqlalchemy import select

from app.agreement.metrics import RankingLabel
from app.annotation import service as annotation
from app.models import Prompt, Role
from tests.agreement.test_metrics_reference import brute_agreement


def upload(client, project, headers, n, k=4):
    rows = [{"id": f"q{i}", "prompt": f"question {i}", "responses": [f"r{j} of {i}" for j in range(k)]} for i in range(n)]
    content = "\n".join(json.dumps(r) for r in rows).encode()
    assert (
        client.post(f"/api/projects/{project.id}/imports", files={"file": ("b.jsonl", content)}, headers=headers).status_code
        == 200
    )


def label_all(client, project, headers, strategy, rng):
    """Loop next → submit with a labelling strategy until the queue is empty for this annotator."""
    while (response := client.get(f"/api/projects/{project.id}/next", headers=headers)).status_code == 200:
        task = response.json()
        by_text = {r["text"].split(" ")[0]: r["id"] for r in task["responses"]}
        truth = [by_text[f"r{j}"] for j in range(len(by_text))]
        shown = [r["id"] for r in task["responses"]]
        if strategy == "careful":
            order = truth[:]
            if rng.random() < 0.15:
                order[1], order[2] = order[2], order[1]
        elif strategy == "first":
            order = shown
        else:
            order = rng.sample(truth, len(truth))
        body = {"ranking": [[i] for i in order], "time_spent_ms": 1000}
        assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers).status_code == 201
    assert response.status_code == 204


@pytest.fixture
def labelled(client, make_user, make_project, bearer, monkeypatch):
    # The display order is seeded: with the server's random shuffle, a careful annotator's 40 top picks
    # land first-shown often enough to fail the position-bias check about once in 500 runs.
    monkeypatch.setattr(annotation, "_shuffle", random.Random(7).shuffle)
    rng = random.Random(7)
    careful = [make_user(Role.annotator, email=f"careful{i}@example.org") for i in range(3)]
    first = make_user(Role.annotator, email="first@example.org")
    rand = make_user(Role.annotator, email="random@example.org")
    project = make_project(members=[*careful, first, rand], overlap=5)
    staff = bearer(make_user(Role.researcher))
    upload(client, project, staff, n=40)
    for user in careful:
        label_all(client, project, bearer(user), "careful", rng)
    label_all(client, project, bearer(first), "first", rng)
    label_all(client, project, bearer(rand), "random", rng)
    return project, staff


def by_email_id(report, email: str) -> int:
    return next(a["annotator_id"] for a in report["annotators"] if a["email"] == email)


def test_json_matches_reference_and_flags_careless_annotators(client, db, labelled):
    project, staff = labelled
    report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
    # Untouched: submitted exactly as shown, counted here from the stored rankings and shown orders.
    from app.models import Annotation

    db.rollback()
    annotations = list(db.scalars(select(Annotation)))
    untouched = [a.annotator_id for a in annotations if a.ranking == [[rid] for rid in a.shown_order]]
    assert report["summary"] == {
        "labels": 200,
        "prompts": 40,
        "annotators": 5,
        "prompts_with_2plus": 40,
        "even_splits": 0,
        "ranked_labels": 200,
        "untouched_labels": len(untouched),
        "untouched_rate": len(untouched) / 200,
    }
    for row in report["annotators"]:  # "first" submits every task as shown
        expected = 40 if row["email"] == "first@example.org" else untouched.count(row["annotator_id"])
        assert (row["ranked_labels"], row["untouched_labels"], row["untouched_rate"]) == (40, expected, expected / 40)
    assert untouched.count(by_email_id(report, "first@example.org")) == 40

    # The project figure equals the brute-force reference on the stored labels.
    stored = [RankingLabel(a.prompt_id, a.annotator_id, a.ranking) for a in annotations]
    assert report["project"]["agreement_tie_half_pooled"]["value"] == pytest.approx(brute_agreement(stored, "tie_half", "pooled"))

    by_email = {a["email"]: a for a in report["annotators"]}
    assert by_email["first@example.org"]["position_bias"]["observed"] == 1.0
    assert by_email["first@example.org"]["position_bias"]["p_value"] < 1e-6
    assert all(by_email[f"careful{i}@example.org"]["position_bias"]["p_value"] > 1e-3 for i in range(3))
    loo = {email: a["loo_agreement"]["value"] for email, a in by_email.items()}
    assert max(loo["random@example.org"], loo["first@example.org"]) < min(loo[f"careful{i}@example.org"] for i in range(3))
    assert by_email["careful0@example.org"]["median_seconds"] == 1.0
    assert report["most_disputed"][0]["agreement"] <= report["most_disputed"][-1]["agreement"]


def test_dashboard_and_cli_show_the_same_numbers(client, labelled, login_as, db):
    project, staff = labelled
    report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
    db.rollback()
    from app.models import User

    page = login_as(db.scalar(select(User).where(User.role == "researcher"))).get(f"/projects/{project.id}/agreement")
    assert page.status_code == 200
    for name in ("agreement_tie_half_pooled", "krippendorff_alpha_ordinal_rank", "kendall_w_mean"):
        value = f"{report['project'][name]['value']:.3f}"
        assert f'data-metric="{name}">{value}<' in page.text
    assert 'class="alert" data-annotator="first@example.org"' in page.text  # highlighted
    assert '<td data-untouched="first@example.org">100% (40 of 40)</td>' in page.text
    summary = report["summary"]
    total = f"{round(summary['untouched_rate'] * 100)}% ({summary['untouched_labels']} of 200)"
    assert f'<span id="untouched-total">{total}</span>' in page.text
    assert "<svg" in page.text and "<script" not in page.text.split("</main>")[0]

    cli = subprocess.run(
        [sys.executable, "-m", "app.cli", "agreement", str(project.id)],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert f"Labels submitted in the order shown, untouched: {total}" in cli.stdout
    for row in report["annotators"]:  # columns: email labels vs-others >chance-p first-on-top chance p untouched ...
        cells = next(l for l in cli.stdout.splitlines() if l.strip().startswith(row["email"])).split()
        assert cells[7] == f"{round(row['untouched_rate'] * 100)}%", cells
    line = next(l for l in cli.stdout.splitlines() if "agreement_tie_half_pooled" in l)
    assert f"{report['project']['agreement_tie_half_pooled']['value']:.3f}" in line
    cli_json = subprocess.run(
        [sys.executable, "-m", "app.cli", "agreement", str(project.id), "--json"],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert json.loads(cli_json.stdout)["project"] == report["project"]


def test_prompt_page_shows_every_label_with_names(client, labelled, login_as, db):
    project, _staff = labelled
    from app.models import User

    db.rollback()
    prompt = db.scalar(select(Prompt).where(Prompt.project_id == project.id, Prompt.external_id == "q0"))
    page = login_as(db.scalar(select(User).where(User.role == "researcher"))).get(f"/projects/{project.id}/prompts/{prompt.id}")
    assert page.status_code == 200
    for email in ("careful0@example.org", "first@example.org", "random@example.org"):
        assert email in page.text


def test_adaptive_overlap_asks_for_more_on_disputed_prompts(client, db, make_user, make_project, bearer):
    a, b, c = (make_user(Role.annotator) for _ in range(3))
    project = make_project(members=[a, b, c], overlap=2, adaptive_threshold=0.9, max_overlap=3)
    upload(client, project, bearer(make_user(Role.admin)), n=3)
    ha, hb, hc = bearer(a), bearer(b), bearer(c)
    # a and b label the same first prompt in opposite orders; every other prompt is untouched.
    t1 = client.get(f"/api/projects/{project.id}/next", headers=ha).json()
    ids = sorted(r["id"] for r in t1["responses"])
    client.post(f"/api/tasks/{t1['task_id']}/annotations", json={"ranking": [[i] for i in ids]}, headers=ha)
    t2 = client.get(f"/api/projects/{project.id}/next", headers=hb).json()
    assert t2["prompt_id"] != t1["prompt_id"]  # least-served first
    client.post(f"/api/tasks/{t2['task_id']}/skip", headers=hb)
    while (t := client.get(f"/api/projects/{project.id}/next", headers=hb).json())["prompt_id"] != t1["prompt_id"]:
        client.post(f"/api/tasks/{t['task_id']}/skip", headers=hb)
    client.post(f"/api/tasks/{t['task_id']}/annotations", json={"ranking": [[i] for i in reversed(ids)]}, headers=hb)
    db.rollback()
    disputed = db.get(Prompt, t1["prompt_id"])
    assert (disputed.target_overlap, disputed.boosted) == (3, True)
    # c is served the disputed prompt first, although others have fewer labels.
    assert client.get(f"/api/projects/{project.id}/next", headers=hc).json()["prompt_id"] == t1["prompt_id"]


def test_agreeing_labels_do_not_raise_overlap(client, db, make_user, make_project, bearer):
    a, b = make_user(Role.annotator), make_user(Role.annotator)
    project = make_project(members=[a, b], overlap=2, adaptive_threshold=0.5, max_overlap=4)
    upload(client, project, bearer(make_user(Role.admin)), n=1)
    for h in (bearer(a), bearer(b)):
        task = client.get(f"/api/projects/{project.id}/next", headers=h).json()
        ids = sorted(r["id"] for r in task["responses"])
        client.post(f"/api/tasks/{task['task_id']}/annotations", json={"ranking": [[i] for i in ids]}, headers=h)
    db.rollback()
    assert db.scalar(select(Prompt.target_overlap)) == 2


def test_gold_accuracy_per_annotator(client, db, make_user, make_project, bearer):
    good, bad = make_user(Role.annotator, email="good@example.org"), make_user(Role.annotator, email="bad@example.org")
    project = make_project(members=[good, bad], overlap=1)
    staff = bearer(make_user(Role.researcher))
    upload(client, project, staff, n=1)
    db.rollback()
    prompt = db.scalar(select(Prompt))
    from app.models import Response

    ids = list(db.scalars(select(Response.id).where(Response.prompt_id == prompt.id).order_by(Response.position)))
    bad_gold = client.put(f"/api/projects/{project.id}/prompts/{prompt.id}/gold", json={"ranking": [[ids[0]]]}, headers=staff)
    assert bad_gold.status_code == 422
    assert (
        client.put(
            f"/api/projects/{project.id}/prompts/{prompt.id}/gold", json={"ranking": [[i] for i in ids]}, headers=staff
        ).json()["is_gold"]
        is True
    )
    # Gold prompts go to every annotator, beyond the overlap of 1.
    for user, order in ((good, ids), (bad, list(reversed(ids)))):
        h = bearer(user)
        task = client.get(f"/api/projects/{project.id}/next", headers=h).json()
        assert task["prompt_id"] == prompt.id and "gold" not in json.dumps(task)  # unannounced
        client.post(f"/api/tasks/{task['task_id']}/annotations", json={"ranking": [[i] for i in order]}, headers=h)
    by_email = {a["email"]: a for a in client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()["annotators"]}
    assert by_email["good@example.org"]["gold_accuracy"] == 1.0
    assert by_email["bad@example.org"]["gold_accuracy"] == 0.0


def test_pairwise_report_has_kappas(client, make_user, make_project, bearer):
    users = [make_user(Role.annotator) for _ in range(3)]
    project = make_project(members=users, kind="pairwise", allow_ties=True)
    staff = bearer(make_user(Role.admin))
    upload(client, project, staff, n=6, k=2)
    rng = random.Random(1)
    for user in users:
        h = bearer(user)
        while (r := client.get(f"/api/projects/{project.id}/next", headers=h)).status_code == 200:
            task = r.json()
            x, y = (res["id"] for res in task["responses"])
            body = rng.choice([{"chosen": x, "rejected": y}, {"chosen": y, "rejected": x}, {"tie": True}])
            assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=h).status_code == 201
    project_metrics = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()["project"]
    for name in ("fleiss_kappa", "cohen_kappa_mean", "krippendorff_alpha_nominal", "agreement_tie_half_pooled"):
        assert name in project_metrics and project_metrics[name]["definition"]


@pytest.mark.parametrize("path", ["/api/projects/{id}/agreement", "/projects/{id}/agreement", "/projects/{id}/prompts/1"])
def test_annotators_cannot_see_agreement(client, make_user, make_project, bearer, path):
    annotator = make_user(Role.annotator)
    project = make_project(members=[annotator])
    response = client.get(path.format(id=project.id), headers=bearer(annotator) | {"accept": "application/json"})
    assert response.status_code == 403
    gold = client.put(f"/api/projects/{project.id}/prompts/1/gold", json={"ranking": None}, headers=bearer(annotator))
    assert gold.status_code == 403


def test_gold_from_a_stored_label_on_the_prompt_page(client, db, make_user, make_project, bearer, login_as):
    from app.models import Annotation

    annotator, researcher = make_user(Role.annotator), make_user(Role.researcher)
    project = make_project(members=[annotator], overlap=1)
    upload(client, project, bearer(researcher), n=1)
    h = bearer(annotator)
    task = client.get(f"/api/projects/{project.id}/next", headers=h).json()
    ranking = [[r["id"]] for r in task["responses"]]
    client.post(f"/api/tasks/{task['task_id']}/annotations", json={"ranking": ranking}, headers=h)
    db.rollback()
    annotation = db.scalar(select(Annotation))
    browser = login_as(researcher)
    page = browser.post(
        f"/projects/{project.id}/prompts/{annotation.prompt_id}/gold",
        data={"annotation_id": annotation.id, "csrf_token": browser.headers["X-CSRF-Token"]},
    )
    assert page.status_code == 200 and "gold" in page.text
    db.rollback()
    prompt = db.get(Prompt, annotation.prompt_id)
    assert prompt.is_gold and prompt.gold_ranking == ranking
    browser.post(f"/projects/{project.id}/prompts/{prompt.id}/gold", data={"csrf_token": browser.headers["X-CSRF-Token"]})
    db.rollback()
    assert db.get(Prompt, prompt.id).is_gold is False
