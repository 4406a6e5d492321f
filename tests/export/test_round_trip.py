"""The round trip of issue 4: export a labelled project, import the file into a pairwise project (each pair becomes an
item whose reference label is the exported choice), export that project's reference labels (labels=reference): the
pairs come back with exactly the same texts.

Which equality holds: the first export has one row per annotator and pair, so a pair that several annotators made
is several identical rows; the import derives an item's id from (prompt_id, prompt, chosen, rejected) and skips a
repeated pair. So the second export's rows are the *set* of the first export's (prompt, chosen, rejected) triples,
one row each: equal sets, and as many rows as distinct triples. Opposite preferences of two annotators are two
different triples and both come back. A tie (ties=keep) has no direction: the export writes it in both orders, the
re-import reads the two rows as one tied item, so ties compare as unordered pairs.
"""

import io
import json

import orjson
import pytest
from sqlalchemy import select

from app.models import Prompt, ReferenceLabel, Response, Role

EXPORT = "/api/projects/{}/export"
# Whitespace that must survive: leading/trailing spaces and newlines, double spaces, a response that starts with a
# space (the hh template adds one more, which the import removes again).
PROMPTS = [
    {
        "id": "w1",
        "prompt": "  Indented question?\n",
        "responses": ["plain", " starts with a space", "two  spaces\n", "tab\tend "],
    },
    {"id": "w2", "prompt": "Second\n\nparagraph", "responses": ["a", "b", "c", "d\n\n"]},
    {
        "id": "chat",
        "prompt": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi!"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "And now?"},
        ],
        "responses": ["Now.", "Later.", " Never.", "Soon"],
    },
]


def jsonl(rows) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def upload(client, project_id, content: bytes, headers, filename="export.jsonl"):
    return client.post(f"/api/projects/{project_id}/imports", files={"file": (filename, io.BytesIO(content))}, headers=headers)


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


def key(row: dict) -> tuple:
    """A pair as comparable text: (prompt, chosen, rejected), message lists as JSON; a tie without a direction."""
    texts = [json.dumps(row[k]) if not isinstance(row[k], str) else row[k] for k in ("prompt", "chosen", "rejected") if k in row]
    *prompt, chosen, rejected = texts
    return (*prompt, frozenset((chosen, rejected)), "tie") if row["tie"] else (*prompt, chosen, rejected)


@pytest.fixture
def staff(make_user, bearer):
    return bearer(make_user(Role.researcher))


@pytest.fixture
def ranked(client, make_user, make_project, bearer, staff):
    """A ranking project with ties, labelled through the API by three annotators who partly disagree."""
    annotators = [make_user(Role.annotator) for _ in range(3)]
    project = make_project(kind="ranking", overlap=3, allow_ties=True, members=annotators)
    assert upload(client, project.id, jsonl(PROMPTS), staff, "prompts.jsonl").json()["imported"] == 3
    for n, user in enumerate(annotators):
        headers = bearer(user)
        while (task := client.get(f"/api/projects/{project.id}/next", headers=headers)).status_code == 200:
            ids = sorted(r["id"] for r in task.json()["responses"])
            tiers = ([[i] for i in ids], [[ids[0]], [ids[1], ids[2]], [ids[3]]], [[i] for i in reversed(ids)])[n]
            assert (
                client.post(
                    f"/api/tasks/{task.json()['task_id']}/annotations", json={"ranking": tiers}, headers=headers
                ).status_code
                == 201
            )
    return project


@pytest.mark.parametrize(
    "fmt, params",
    [
        ("trl", {}),  # the default template, hh
        ("trl", {"template": "raw"}),  # the text as stored
        ("trl-chat", {}),
        ("hh", {}),
    ],
)
def test_export_import_export_keeps_the_pairs(client, db, make_project, staff, ranked, fmt, params):
    first = rows_of(client.get(EXPORT.format(ranked.id), params={"format": fmt, **params}, headers=staff))
    triples = {key(r) for r in first}
    # 3 prompts x (6 + 5 + 6) pairs; annotators 1 and 3 are exact opposites, annotator 2 agrees with 1 on 5 pairs
    assert len(first) == 3 * 17 and len(triples) == 3 * 12

    pairwise = make_project(kind="pairwise", allow_ties=True)
    body = upload(client, pairwise.id, "\n".join(json.dumps(r) for r in first).encode(), staff).json()
    assert (body["imported"], body["skipped"], body["errors"]) == (len(triples), len(first) - len(triples), [])

    second = rows_of(
        client.get(EXPORT.format(pairwise.id), params={"format": fmt, "labels": "reference", **params}, headers=staff)
    )
    assert {key(r) for r in second} == triples and len(second) == len(triples)
    assert all(
        r["annotator_id"] is None and r["annotation_id"] is None and r["reference_source"] == f"{fmt}: export.jsonl"
        for r in second
    )
    # Exact texts, whitespace included: the stored prompt and responses are the labelled project's.
    db.rollback()
    stored = {
        m["content"] for messages in db.scalars(select(Prompt.messages).where(Prompt.project_id == pairwise.id)) for m in messages
    }
    stored |= set(db.scalars(select(Response.text).join(Prompt).where(Prompt.project_id == pairwise.id)))
    assert {" starts with a space", "two  spaces\n", "tab\tend ", "d\n\n", "  Indented question?\n", " Never."} <= stored


def test_labels_reference_listwise_and_the_annotators_default(client, make_project, staff):
    pairwise = make_project(kind="pairwise", allow_ties=True)
    records = [
        {"prompt": "Sky?", "chosen": "Blue.", "rejected": "Green."},
        {"prompt": "Sea?", "chosen": "Wet.", "rejected": "Dry.", "tie": True},
    ]
    assert upload(client, pairwise.id, jsonl(records), staff, "prefs.jsonl").json()["imported"] == 2
    # No human label yet: the default (annotators) exports nothing, the reference labels export both prompts.
    assert client.get(EXPORT.format(pairwise.id), headers=staff).text == ""
    rows = rows_of(client.get(EXPORT.format(pairwise.id), params={"format": "listwise", "labels": "reference"}, headers=staff))
    by_prompt = {r["prompt"]: r for r in rows}
    sky, sea = by_prompt["Sky?"], by_prompt["Sea?"]
    assert sky["responses"][sky["ranking"][0][0]] == "Blue." and len(sky["ranking"]) == 2
    assert sea["ranking"] == [[0, 1]] and sea["ranks"] == [1, 1]  # the tie comes back as a tie
    assert {r["reference_source"] for r in rows} == {"trl: prefs.jsonl"} and all(r["annotator_id"] is None for r in rows)


def test_pairwise_ties_round_trip_as_tied_references(client, db, make_user, make_project, bearer, staff):
    """ties=keep writes a tie as a row with tie=true; the import reads it back as a tied reference."""
    annotators = [make_user(Role.annotator) for _ in range(2)]
    project = make_project(kind="pairwise", overlap=2, allow_ties=True, members=annotators)
    prompts = [{"id": f"t{i}", "prompt": f"Question {i}?", "responses": [f"yes {i}", f"no {i}"]} for i in range(3)]
    assert upload(client, project.id, jsonl(prompts), staff, "prompts.jsonl").json()["imported"] == 3
    for n, user in enumerate(annotators):  # the first prefers "yes" on all three; the second ties t0 and t1
        headers = bearer(user)
        while (task := client.get(f"/api/projects/{project.id}/next", headers=headers)).status_code == 200:
            task = task.json()
            by_text = {r["text"][:2]: r["id"] for r in task["responses"]}
            tie = n == 1 and task["prompt"] != "Question 2?"
            body = {"tie": True} if tie else {"chosen": by_text["ye"], "rejected": by_text["no"]}
            assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers).status_code == 201

    first = rows_of(client.get(EXPORT.format(project.id), params={"ties": "keep"}, headers=staff))
    assert sum(r["tie"] for r in first) == 2 * 2 and len(first) == 4 + 4  # each tie in both orders
    triples = {key(r) for r in first}
    assert len(triples) == 5  # t2's two identical preferences are one pair; a tie and a preference stay apart

    target = make_project(kind="pairwise", allow_ties=True)
    body = upload(client, target.id, "\n".join(json.dumps(r) for r in first).encode(), staff).json()
    assert (body["imported"], body["skipped"]) == (5, 3)  # t2's repeat and the second order of each tie
    db.rollback()
    references = list(db.scalars(select(ReferenceLabel.ranking).join(Prompt).where(Prompt.project_id == target.id)))
    assert sum(len(r) == 1 and len(r[0]) == 2 for r in references) == 2  # two tied references [[a, b]]

    second = rows_of(client.get(EXPORT.format(target.id), params={"ties": "keep", "labels": "reference"}, headers=staff))
    assert {key(r) for r in second} == triples and len(second) == 3 + 2 * 2
    dropped = rows_of(client.get(EXPORT.format(target.id), params={"labels": "reference"}, headers=staff))
    assert {key(r) for r in dropped} == {t for t in triples if t[-1] != "tie"}  # ties=drop (default) drops them


def test_a_tie_in_either_order_is_one_item(client, make_project, staff):
    pairwise = make_project(kind="pairwise", allow_ties=True)
    records = [
        {"prompt_id": "q", "prompt": "P?", "chosen": "x", "rejected": "y", "tie": True},
        {"prompt_id": "q", "prompt": "P?", "chosen": "y", "rejected": "x", "tie": True},
        {"prompt_id": "q", "prompt": "P?", "chosen": "x", "rejected": "y", "tie": False},
    ]
    body = upload(client, pairwise.id, jsonl(records), staff).json()
    assert (body["imported"], body["skipped"]) == (2, 1)
    bad = upload(client, make_project(kind="pairwise").id, jsonl([records[0] | {"tie": "yes"}]), staff)
    assert bad.status_code == 422 and bad.json()["errors"] == ['line 1, field "tie": must be true or false, got a string']


@pytest.mark.parametrize(
    "params, field",
    [
        ({"labels": "reference", "format": "raw"}, "labels"),
        ({"labels": "reference", "consensus": "borda"}, "consensus"),
        ({"labels": "reference", "min_agreement": "0.5"}, "min_agreement"),
        ({"labels": "reference", "min_annotators": "2"}, "min_annotators"),
        ({"labels": "humans"}, "labels"),
    ],
)
def test_reference_options_that_do_not_apply_are_422(client, make_project, staff, params, field):
    response = client.get(EXPORT.format(make_project(kind="pairwise").id), params=params, headers=staff)
    assert response.status_code == 422 and field in response.json()["detail"], response.text


def test_reference_dataset_folder_counts_no_annotators(client, make_project, staff, tmp_path):
    """The folder's manifest counts the reference rows, with no annotators behind them."""
    import zipfile

    from datasets import load_dataset

    pairwise = make_project(kind="pairwise", allow_ties=True)
    records = [{"prompt": f"Q{i}?", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(6)]
    assert upload(client, pairwise.id, jsonl(records), staff).json()["imported"] == 6
    response = client.get(
        EXPORT.format(pairwise.id), headers=staff, params={"labels": "reference", "folder": "true", "file_type": "parquet"}
    )
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(tmp_path / "ds")
    manifest = json.loads((tmp_path / "ds/manifest.json").read_text())
    assert manifest["counts"]["rows"] == {"train": 6} and manifest["counts"]["annotators"] == 0
    assert "- labels: the reference labels of the imported preference data" in (tmp_path / "ds/README.md").read_text()
    train = load_dataset(str(tmp_path / "ds"))["train"]
    assert sorted(train["chosen"]) == sorted(f" good {i}" for i in range(6)) and set(train["annotator_id"]) == {None}


def test_cli_exports_reference_labels(client, make_project, staff, tmp_path):
    import os
    import subprocess
    import sys

    pairwise = make_project(kind="pairwise", name="imported prefs")
    records = [{"prompt": f"Q{i}?", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)]
    assert upload(client, pairwise.id, jsonl(records), staff).json()["imported"] == 3
    out = tmp_path / "ref.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "export",
            "imported prefs",
            "--labels",
            "reference",
            "--template",
            "raw",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert result.returncode == 0 and "wrote 3 pairs" in result.stderr, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["prompt"], r["chosen"], r["rejected"]) for r in rows} == {(f"Q{i}?", f"good {i}", f"bad {i}") for i in range(3)}
