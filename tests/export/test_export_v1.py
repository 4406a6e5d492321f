"""TRL export v1: the pairs match what was ranked."""

import itertools
import json
import random

import pytest

from app.export.pairs import pairs_from_tiers
from app.models import Role


def reference_pairs(tiers):
    """Brute force: every two responses in different tiers, better first."""
    rank = {rid: i for i, tier in enumerate(tiers) for rid in tier}
    return {(a, b) if rank[a] < rank[b] else (b, a) for a, b in itertools.combinations(rank, 2) if rank[a] != rank[b]}


@pytest.mark.parametrize("seed", range(30))
def test_pairs_from_tiers_matches_brute_force(seed):
    rng = random.Random(seed)
    ids = list(range(rng.randint(2, 9)))
    rng.shuffle(ids)
    cuts = sorted(rng.sample(range(1, len(ids)), rng.randint(0, len(ids) - 1)))
    tiers = [ids[a:b] for a, b in zip([0, *cuts], [*cuts, len(ids)], strict=True)]
    pairs = list(pairs_from_tiers(tiers))
    assert len(pairs) == len(set(pairs)) and set(pairs) == reference_pairs(tiers)


def test_k_responses_without_ties_give_k_choose_2():
    for k in range(2, 10):
        assert len(list(pairs_from_tiers([[i] for i in range(k)]))) == k * (k - 1) // 2


def test_export_matches_labels(client, make_user, make_project, bearer):
    annotator = make_user(Role.annotator)
    project = make_project(members=[annotator], allow_ties=True, overlap=1)
    staff = bearer(make_user(Role.researcher))
    content = "\n".join(
        json.dumps({"id": f"q{i}", "prompt": f"question {i}", "responses": [f"ans {i}-{j}" for j in range(4)]}) for i in range(2)
    )
    assert (
        client.post(
            f"/api/projects/{project.id}/imports", files={"file": ("b.jsonl", content.encode())}, headers=staff
        ).status_code
        == 200
    )
    h = bearer(annotator)
    expected = set()
    for tie in (False, True):
        task = client.get(f"/api/projects/{project.id}/next", headers=h).json()
        ids = [r["id"] for r in task["responses"]]
        text = {r["id"]: r["text"] for r in task["responses"]}
        tiers = [[ids[1]], [ids[0], ids[2]], [ids[3]]] if tie else [[i] for i in reversed(ids)]
        assert client.post(f"/api/tasks/{task['task_id']}/annotations", json={"ranking": tiers}, headers=h).status_code == 201
        expected |= {(task["prompt"], text[a], text[b]) for a, b in reference_pairs(tiers)}
    response = client.get(f"/api/projects/{project.id}/export?format=trl", headers=staff)
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert len(rows) == 6 + 5  # 4 responses: C(4,2) = 6 pairs; with one 2-way tie: 6 - 1
    # The default template is hh: TRL's prompt + chosen reads "\n\nHuman: …\n\nAssistant: …".
    assert {(r["prompt"], r["chosen"], r["rejected"]) for r in rows} == {
        (f"\n\nHuman: {p}\n\nAssistant:", " " + c, " " + r) for p, c, r in expected
    }
    assert all(r["annotator_id"] == annotator.id and r["prompt_id"] in {"q0", "q1"} for r in rows)
    raw = client.get(f"/api/projects/{project.id}/export?format=trl&template=raw", headers=staff)
    assert {(r["prompt"], r["chosen"], r["rejected"]) for r in map(json.loads, raw.text.splitlines())} == expected


def test_pairwise_and_tie_and_none_acceptable(client, make_user, make_project, bearer):
    a1, a2, a3 = (make_user(Role.annotator) for _ in range(3))
    project = make_project(members=[a1, a2, a3], kind="pairwise", allow_ties=True)
    staff = bearer(make_user(Role.admin))
    client.post(
        f"/api/projects/{project.id}/imports",
        headers=staff,
        files={"file": ("b.jsonl", b'{"id": "x", "prompt": "p", "responses": ["good", "bad"]}')},
    )
    bodies = []
    for annotator, choice in ((a1, "pick"), (a2, "tie"), (a3, "none")):
        h = bearer(annotator)
        task = client.get(f"/api/projects/{project.id}/next", headers=h).json()
        by_text = {r["text"]: r["id"] for r in task["responses"]}
        body = {
            "pick": {"chosen": by_text["good"], "rejected": by_text["bad"]},
            "tie": {"tie": True},
            "none": {"none_acceptable": True},
        }[choice]
        bodies.append(client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=h).status_code)
    assert bodies == [201, 201, 201]
    rows = [json.loads(x) for x in client.get(f"/api/projects/{project.id}/export", headers=staff).text.splitlines()]
    assert [(r["prompt"], r["chosen"], r["rejected"], r["annotator_id"]) for r in rows] == [
        ("\n\nHuman: p\n\nAssistant:", " good", " bad", a1.id)
    ]


@pytest.mark.parametrize("role", [Role.annotator])
def test_annotators_cannot_export(client, make_user, make_project, bearer, role):
    user = make_user(role)
    project = make_project(members=[user])
    assert client.get(f"/api/projects/{project.id}/export", headers=bearer(user)).status_code == 403


def test_unknown_format_is_422(client, make_user, make_project, bearer):
    response = client.get(f"/api/projects/{make_project().id}/export?format=csv", headers=bearer(make_user(Role.admin)))
    assert response.status_code == 422
