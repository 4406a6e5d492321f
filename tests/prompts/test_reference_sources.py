"""AI-judge labels as named reference sources (issue #15, item 3): listwise judgements attach to prompts by id, else
by content, or create them; several sources a project; agreement with each source against a brute-force count;
export by source and its round trip; annotators never see a source. Expected rankings are computed here from the
files' texts, never read back through the app's own mapping."""

import io
import json
import random
from itertools import combinations

import orjson
import pytest
from sqlalchemy import select

from app.models import Prompt, ReferenceLabel, Response, Role

EXPORT = "/api/projects/{}/export"
CONVENTIONS = ("tie_half", "tie_as_category", "strict_only")


def jsonl(*rows) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def upload(client, project_id, content: bytes, headers, *, filename="judge.jsonl", **params):
    return client.post(
        f"/api/projects/{project_id}/imports", params=params, files={"file": (filename, io.BytesIO(content))}, headers=headers
    )


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def text_tiers(texts: list[str], rank: list[int]) -> list[set[str]]:
    """The ranking a record means, as tiers of response texts: rank[i] is the place of texts[i], 1 = best."""
    return [{t for t, r in zip(texts, rank, strict=True) if r == place} for place in sorted(set(rank))]


def stored(db, project_id, source: str) -> dict[str, list[set[str]]]:
    """external id -> the source's stored ranking as tiers of response texts."""
    db.rollback()
    text = dict(db.execute(select(Response.id, Response.text)).all())
    rows = db.execute(
        select(Prompt.external_id, ReferenceLabel.ranking)
        .join(ReferenceLabel, ReferenceLabel.prompt_id == Prompt.id)
        .where(Prompt.project_id == project_id, ReferenceLabel.source == source)
    )
    return {ext: [{text[rid] for rid in tier} for tier in ranking] for ext, ranking in rows}


@pytest.fixture
def staff(make_user, bearer):
    return bearer(make_user(Role.researcher))


@pytest.fixture
def ranking(client, make_project, staff):
    """A ranking project with prompts p0..p5, three responses each."""
    project = make_project(kind="ranking", min_responses=2, max_responses=3)
    prompts = [{"id": f"p{i}", "prompt": f"Question {i}?", "responses": [f"a{i}", f"b{i}", f"c{i}"]} for i in range(6)]
    assert upload(client, project.id, jsonl(*prompts), staff, filename="prompts.jsonl").json()["imported"] == 6
    return project


def test_listwise_attaches_by_id_by_content_and_creates_new_prompts(client, db, ranking, staff):
    records = [
        # by id, the responses in another order than stored
        {"id": "p0", "prompt": "Question 0?", "responses": ["c0", "a0", "b0"], "rank": [3, 1, 2]},
        # by id, "ranking" tiers with a tie
        {"id": "p1", "prompt": "Question 1?", "responses": ["a1", "b1", "c1"], "ranking": [[2], [0, 1]]},
        # by content: no id, the same prompt and texts in another order
        {"prompt": "Question 3?", "responses": ["b3", "c3", "a3"], "rank": [1, 1, 3]},
        # the listwise export's shape: "prompt_id" and "ranks" plus "ranking", which agree
        {
            "prompt_id": "p4",
            "prompt": "Question 4?",
            "responses": ["a4", "b4", "c4"],
            "ranks": [2, 3, 1],
            "ranking": [[2], [0], [1]],
        },
        # new: not in the project
        {"id": "n1", "prompt": "New question?", "responses": ["x", "y"], "rank": [2, 1], "judge_model": "gpt"},
    ]
    body = upload(client, ranking.id, jsonl(*records), staff, source="judge-gpt")
    assert body.status_code == 200, body.text
    assert (body.json()["imported"], body.json()["skipped"], body.json()["references"]) == (1, 4, 5)
    expected = {
        "p0": text_tiers(["c0", "a0", "b0"], [3, 1, 2]),
        "p1": [{"c1"}, {"a1", "b1"}],
        "p3": text_tiers(["b3", "c3", "a3"], [1, 1, 3]),
        "p4": text_tiers(["a4", "b4", "c4"], [2, 3, 1]),
        "n1": [{"y"}, {"x"}],
    }
    assert stored(db, ranking.id, "judge-gpt") == expected
    new = db.scalar(select(Prompt).where(Prompt.project_id == ranking.id, Prompt.external_id == "n1"))
    assert new.messages == [{"role": "user", "content": "New question?"}] and new.metadata_ == {"judge_model": "gpt"}
    assert new.target_overlap == ranking.overlap and not new.is_gold  # an ordinary prompt, served as any imported one
    assert db.scalar(select(Prompt).where(Prompt.external_id == "p3")).metadata_ is None  # attaching changes no prompt

    # A second source on the same prompts; the first one stays.
    again = [{"id": "p0", "prompt": "Question 0?", "responses": ["a0", "b0", "c0"], "rank": [1, 2, 3]}]
    assert upload(client, ranking.id, jsonl(*again), staff, source="judge-b").json()["references"] == 1
    assert stored(db, ranking.id, "judge-b") == {"p0": [{"a0"}, {"b0"}, {"c0"}]}
    assert stored(db, ranking.id, "judge-gpt")["p0"] == expected["p0"]
    # The same source again replaces its label of that prompt (one per prompt and source).
    changed = [{"id": "p0", "prompt": "Question 0?", "responses": ["a0", "b0", "c0"], "rank": [2, 2, 1]}]
    assert upload(client, ranking.id, jsonl(*changed), staff, source="judge-gpt").json()["references"] == 1
    assert stored(db, ranking.id, "judge-gpt")["p0"] == [{"c0"}, {"a0", "b0"}]
    db.rollback()
    counts = db.execute(select(ReferenceLabel.prompt_id, ReferenceLabel.source)).all()
    assert len(counts) == len(set(counts)) == 6  # 5 of judge-gpt (p0's replaced, not added) and 1 of judge-b


def test_default_source_name_and_pairwise_listwise(client, db, make_project, staff):
    pairwise = make_project(kind="pairwise")
    body = upload(client, pairwise.id, jsonl({"id": "q", "prompt": "Q?", "responses": ["u", "v"], "rank": [2, 1]}), staff)
    assert body.json()["references"] == 1
    assert stored(db, pairwise.id, "listwise: judge.jsonl") == {"q": [{"v"}, {"u"}]}
    # trl pairs name their source too, and attach to the same prompt by content as a second source
    pair = {"prompt": "Q?", "chosen": "u", "rejected": "v"}
    body = upload(client, pairwise.id, jsonl(pair), staff, filename="prefs.jsonl", source="judge-c").json()
    assert (body["imported"], body["references"]) == (0, 1)
    assert stored(db, pairwise.id, "judge-c") == {"q": [{"u"}, {"v"}]}


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        (
            {"id": "p0", "prompt": "Question 0?", "responses": ["a0", "b0", "zz"], "rank": [1, 2, 3]},
            "responses",
            "not the responses",
        ),
        ({"id": "x", "prompt": "Q", "responses": ["a", "b", "c"], "rank": [1, 2]}, "rank", "2 places for 3 responses"),
        ({"id": "x", "prompt": "Q", "responses": ["a", "b", "c"], "rank": [1, 0, 2]}, "rank[1]", "whole number from 1"),
        ({"id": "x", "prompt": "Q", "responses": ["a", "b", "c"], "ranking": [[0], [2]]}, "ranking", "exactly once"),
        (
            {"id": "x", "prompt": "Q", "responses": ["a", "b", "c"], "rank": [1, 2, 3], "ranking": [[1], [0], [2]]},
            "ranking",
            "differently",
        ),
        ({"id": "x", "prompt": "Q", "responses": ["a", "b", "c", "d"], "rank": [1, 2, 3, 4]}, "responses", "2 to 3 responses"),
    ],
)
def test_bad_judgements_name_line_and_field_and_import_nothing(client, db, ranking, staff, record, field, words):
    good = {"id": "p1", "prompt": "Question 1?", "responses": ["a1", "b1", "c1"], "rank": [1, 2, 3]}
    body = upload(client, ranking.id, jsonl(good, record), staff, source="judge-gpt", format="listwise")
    assert body.status_code == 422, body.text
    (error,) = body.json()["errors"]
    assert error.startswith(f'line 2, field "{field}"') and words in error, error
    db.rollback()
    assert db.scalar(select(ReferenceLabel.id)) is None  # all or nothing: line 1's label is not kept either


def test_source_name_is_checked(client, ranking, staff):
    record = {"id": "p1", "prompt": "Question 1?", "responses": ["a1", "b1", "c1"], "rank": [1, 2, 3]}
    body = upload(client, ranking.id, jsonl(record), staff, source="   ")
    assert body.status_code == 422 and body.json()["errors"] == ["source: must not be empty"]


def test_listwise_round_trips_through_the_export(client, db, ranking, make_project, staff):
    """export listwise (a source's labels) -> import as a new source -> export labels=reference&source=: the same
    rankings; into the same project (attached by prompt_id) and into an empty one (new prompts)."""
    rng = random.Random(5)
    judged = []
    for i in range(6):
        texts = [f"a{i}", f"b{i}", f"c{i}"]
        rng.shuffle(texts)
        judged.append({"id": f"p{i}", "prompt": f"Question {i}?", "responses": texts, "rank": [rng.randint(1, 3) for _ in texts]})
    assert upload(client, ranking.id, jsonl(*judged), staff, source="judge-gpt").json()["references"] == 6
    params = {"format": "listwise", "labels": "reference"}
    first = rows_of(client.get(EXPORT.format(ranking.id), params=params | {"source": "judge-gpt"}, headers=staff))
    assert {r["prompt_id"]: text_tiers(r["responses"], r["ranks"]) for r in first} == {
        r["id"]: text_tiers(r["responses"], r["rank"]) for r in judged
    }
    exported = "\n".join(json.dumps(r) for r in first).encode()
    other = make_project(kind="ranking", min_responses=2, max_responses=3)
    for project, imported in ((ranking, 0), (other, 6)):
        body = upload(client, project.id, exported, staff, filename="export.jsonl", source="copy").json()
        assert (body["imported"], body["references"]) == (imported, 6), body
        again = rows_of(client.get(EXPORT.format(project.id), params=params | {"source": "copy"}, headers=staff))

        def rankings(rows):
            return {r["prompt_id"]: (r["responses"], r["ranking"], r["ranks"]) for r in rows}

        assert rankings(again) == rankings(first)
        assert {r["reference_source"] for r in again} == {"copy"}


def test_export_chooses_one_source(client, login_as, make_user, ranking, staff):
    one = [{"id": "p0", "prompt": "Question 0?", "responses": ["a0", "b0", "c0"], "rank": [1, 2, 3]}]
    assert upload(client, ranking.id, jsonl(*one), staff, source="judge-a").status_code == 200
    # One source: it may be left out.
    rows = rows_of(client.get(EXPORT.format(ranking.id), params={"labels": "reference", "format": "listwise"}, headers=staff))
    assert [r["reference_source"] for r in rows] == ["judge-a"]
    assert upload(client, ranking.id, jsonl(*one), staff, source="judge-b").status_code == 200
    several = client.get(EXPORT.format(ranking.id), params={"labels": "reference"}, headers=staff)
    assert several.status_code == 422 and "choose one: judge-a, judge-b" in several.text
    unknown = client.get(EXPORT.format(ranking.id), params={"labels": "reference", "source": "nope"}, headers=staff)
    assert unknown.status_code == 422 and "unknown source 'nope'" in unknown.text and "judge-a, judge-b" in unknown.text
    human = client.get(EXPORT.format(ranking.id), params={"source": "judge-a"}, headers=staff)
    assert human.status_code == 422 and "only labels=reference" in human.text
    html = login_as(make_user(Role.researcher)).get(f"/projects/{ranking.id}").text
    assert '<select name="source"' in html and '<option value="judge-a"' in html and '<option value="judge-b"' in html


def brute(reference: list[set[str]], human: list[set[str]], convention: str) -> float | None:
    """One human ranking against a source's, pair by pair, from the definitions (metrics.py conventions)."""
    place_ref = {t: i for i, tier in enumerate(reference) for t in tier}
    place = {t: i for i, tier in enumerate(human) for t in tier}
    scores = []
    for x, y in combinations(sorted(place_ref), 2):
        ref = "tie" if place_ref[x] == place_ref[y] else x if place_ref[x] < place_ref[y] else y
        got = "tie" if place[x] == place[y] else x if place[x] < place[y] else y
        if convention == "strict_only" and "tie" in (ref, got):
            continue
        scores.append(1.0 if ref == got else 0.5 if convention == "tie_half" and "tie" in (ref, got) else 0.0)
    return sum(scores) / len(scores) if scores else None


def test_agreement_with_each_source_matches_brute_force(client, db, login_as, make_user, make_project, bearer, staff):
    rng = random.Random(7)
    annotators = [make_user(Role.annotator, email=f"h{i}@example.org") for i in range(3)]
    project = make_project(kind="ranking", min_responses=3, max_responses=3, overlap=3, allow_ties=True, members=annotators)
    prompts = [{"id": f"p{i}", "prompt": f"Question {i}?", "responses": [f"a{i}", f"b{i}", f"c{i}"]} for i in range(12)]
    assert upload(client, project.id, jsonl(*prompts), staff, filename="prompts.jsonl").json()["imported"] == 12
    judges: dict[str, dict[str, list[set[str]]]] = {}
    for source, judged in (("judge-a", range(12)), ("judge-b", range(0, 12, 2))):
        records = []
        for i in judged:
            texts, rank = [f"a{i}", f"b{i}", f"c{i}"], [rng.randint(1, 3) for _ in range(3)]
            records.append({"id": f"p{i}", "prompt": f"Question {i}?", "responses": texts, "rank": rank})
        assert upload(client, project.id, jsonl(*records), staff, source=source).json()["references"] == len(records)
        judges[source] = {r["id"]: text_tiers(r["responses"], r["rank"]) for r in records}
    human: dict[tuple[str, str], list[set[str]]] = {}  # (email, prompt id) -> ranking as text tiers
    ext = {f"Question {i}?": f"p{i}" for i in range(12)}
    for user in annotators:
        headers = bearer(user)
        while (task := client.get(f"/api/projects/{project.id}/next", headers=headers)).status_code == 200:
            task = task.json()
            ids = {r["text"]: r["id"] for r in task["responses"]}
            places = {t: rng.randint(1, 3) for t in ids}
            tiers = [{t for t in ids if places[t] == p} for p in sorted(set(places.values()))]
            body = {"ranking": [[ids[t] for t in sorted(tier)] for tier in tiers]}
            assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers).status_code == 201
            human[user.email, ext[task["prompt"]]] = tiers
    report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
    assert [r["source"] for r in report["references"]] == ["judge-a", "judge-b"]
    by_email = {a["email"]: a for a in report["annotators"]}
    for ref in report["references"]:
        judged = judges[ref["source"]]
        on = {(email, pid): tiers for (email, pid), tiers in human.items() if pid in judged}
        assert (ref["prompts"], ref["labels"]) == (len(judged), len(on))
        for convention in CONVENTIONS:
            values = [v for (_, pid), t in on.items() if (v := brute(judged[pid], t, convention)) is not None]
            metric = ref[f"agreement_{convention}"]
            assert metric["n"] == len(values) and metric["value"] == pytest.approx(sum(values) / len(values))
            for user in annotators:
                mine = [
                    v for (e, pid), t in on.items() if e == user.email and (v := brute(judged[pid], t, convention)) is not None
                ]
                got = by_email[user.email]["reference_agreements"][ref["source"]][convention]
                assert got["n"] == len(mine) and got["value"] == pytest.approx(sum(mine) / len(mine) if mine else None)
    page = login_as(make_user(Role.researcher)).get(f"/projects/{project.id}/agreement").text
    assert page.count('class="card reference"') == 2 and "Agreement with judge-b" in page
    a = by_email["h0@example.org"]["reference_agreements"]["judge-b"]["strict_only"]
    assert f'data-annotator-reference="h0@example.org" data-convention="strict_only">{a["value"]:.3f}' in page

    from app.agreement.schemas import AgreementReport
    from app.cli import format_report

    text = "\n".join(format_report(AgreementReport.model_validate(report)))
    assert "AGREEMENT WITH judge-a (12 prompts;" in text and "AGREEMENT WITH judge-b (6 prompts;" in text


def test_annotators_never_see_a_source(client, login_as, make_user, make_project, bearer, staff):
    annotator = make_user(Role.annotator)
    project = make_project(kind="ranking", min_responses=2, max_responses=3, members=[annotator])
    record = {"id": "p0", "prompt": "Question?", "responses": ["first", "second", "third"], "rank": [3, 1, 2]}
    assert upload(client, project.id, jsonl(record), staff, source="secret-judge-name").json()["imported"] == 1
    headers = bearer(annotator)
    task = client.get(f"/api/projects/{project.id}/next", headers=headers)
    assert task.status_code == 200
    task = task.json()
    seen = [json.dumps(task), client.get(f"/api/tasks/{task['task_id']}", headers=headers).text]
    browser = login_as(annotator)
    seen.append(browser.get(f"/projects/{project.id}/annotate").text)
    ids = {r["text"]: r["id"] for r in task["responses"]}
    body = {"ranking": [[ids["first"]], [ids["second"]], [ids["third"]]]}
    assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers).status_code == 201
    seen.append(client.get("/api/me/annotations", params={"project_id": project.id}, headers=headers).text)
    seen.append(browser.get(f"/projects/{project.id}/my-labels").text)
    seen.append(browser.get(f"/projects/{project.id}/my-labels/{task['task_id']}").text)
    for text in seen:
        assert "secret-judge-name" not in text and "reference" not in text.lower() and 'rank": [3' not in text
    # The researcher pages that show sources are closed to annotators.
    assert client.get(f"/api/projects/{project.id}/agreement", headers=headers).status_code == 403
    assert client.get(EXPORT.format(project.id), params={"labels": "reference"}, headers=headers).status_code == 403
    assert client.post(f"/api/projects/{project.id}/imports", params={"source": "x"}, headers=headers).status_code == 403
    assert client.get(f"/api/projects/{project.id}/agreement").status_code == 401
