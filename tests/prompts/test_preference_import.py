"""Importing preference datasets through the API, the form and the CLI: the stored reference label, all or
nothing, re-imports skipped, the v1 trl export read back, and annotators never see the reference."""

import hashlib
import io
import json
import os
import subprocess
import sys

import orjson
import pytest
from scipy.stats import binomtest
from sqlalchemy import func, select

from app.models import Prompt, ReferenceLabel, Response, Role
from app.prompts.upload import content_digest

SHARED = "\n\nHuman: What is a mole?\n\nAssistant: An animal, or a unit?\n\nHuman: The unit."


def jsonl(*rows) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows) + b"\n"


def upload(client, project_id, content: bytes, headers, filename="prefs.jsonl", fmt: str | None = None):
    params = {"format": fmt} if fmt else None
    return client.post(
        f"/api/projects/{project_id}/imports", params=params, files={"file": (filename, io.BytesIO(content))}, headers=headers
    )


def stored_pairs(db, project_id) -> dict[str, tuple]:
    """external id -> (prompt messages, chosen text, rejected text, source) as the reference says, or a tie."""
    db.rollback()
    result = {}
    for prompt in db.scalars(select(Prompt).where(Prompt.project_id == project_id)):
        texts = {r.id: r.text for r in db.scalars(select(Response).where(Response.prompt_id == prompt.id))}
        label = db.scalar(select(ReferenceLabel).where(ReferenceLabel.prompt_id == prompt.id))
        tiers = label.ranking
        judged = ("tie", *sorted(texts[i] for i in tiers[0])) if len(tiers) == 1 else (texts[tiers[0][0]], texts[tiers[1][0]])
        result[prompt.external_id] = (prompt.messages, *judged, label.source)
    return result


def count(db, project_id) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Prompt).where(Prompt.project_id == project_id))


@pytest.fixture
def staff(make_user, bearer):
    return bearer(make_user(Role.researcher))


@pytest.fixture
def pairwise(make_project):
    return make_project(kind="pairwise", allow_ties=True)


FILES = {
    "trl": {"prompt": "The sky is", "chosen": " blue.", "rejected": " green."},
    "trl-chat": {
        "prompt": [{"role": "user", "content": "Sky colour?"}],
        "chosen": [{"role": "assistant", "content": "Blue."}],
        "rejected": [{"role": "assistant", "content": "Green."}],
    },
    "hh": {"chosen": SHARED + "\n\nAssistant: 6.022e23 entities.", "rejected": SHARED + "\n\nAssistant: A small mammal."},
    "ultrafeedback": {
        "prompt": "Hi?",
        "prompt_id": "u1",
        "score_chosen": 9.0,
        "score_rejected": 9.0,
        "chosen": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Go away."}],
    },
}
EXPECTED = {
    "trl": ([{"role": "user", "content": "The sky is"}], " blue.", " green."),
    "trl-chat": ([{"role": "user", "content": "Sky colour?"}], "Blue.", "Green."),
    "hh": (
        [
            {"role": "user", "content": "What is a mole?"},
            {"role": "assistant", "content": "An animal, or a unit?"},
            {"role": "user", "content": "The unit."},
        ],
        "6.022e23 entities.",
        "A small mammal.",
    ),
    "ultrafeedback": ([{"role": "user", "content": "Hi?"}], "tie", "Go away.", "Hello!"),  # equal scores
}


class TestImport:
    @pytest.mark.parametrize("fmt", ["auto", "explicit"])
    def test_each_format_stores_the_reference(self, client, db, pairwise, staff, fmt):
        for name, row in FILES.items():
            body = upload(
                client, pairwise.id, jsonl(row), staff, filename=f"{name}.jsonl", fmt=name if fmt == "explicit" else None
            )
            assert body.status_code == 200 and body.json()["imported"] == 1, body.text
        stored = stored_pairs(db, pairwise.id)
        assert sorted(json.dumps(v[:-1]) for v in stored.values()) == sorted(json.dumps(v) for v in EXPECTED.values())
        assert sorted(v[-1] for v in stored.values()) == sorted(f"{n}: {n}.jsonl" for n in FILES)

    def test_json_array_file(self, client, db, pairwise, staff):
        body = upload(client, pairwise.id, json.dumps([FILES["trl"], FILES["hh"]]).encode(), staff, filename="x.json")
        assert body.json()["imported"] == 2 and count(db, pairwise.id) == 2

    def test_parquet_upload(self, client, db, pairwise, staff):
        import pyarrow as pa
        import pyarrow.parquet as pq

        out = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([FILES["ultrafeedback"]]), out)
        body = upload(client, pairwise.id, out.getvalue(), staff, filename="train_prefs.parquet").json()
        assert body["imported"] == 1, body
        (stored,) = stored_pairs(db, pairwise.id).values()
        assert stored == (*EXPECTED["ultrafeedback"], "ultrafeedback: train_prefs.parquet")

    def test_bad_records_import_nothing_and_name_line_and_field(self, client, db, pairwise, staff):
        good = [{"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(2500)]
        bad = [
            {"prompt": "p", "chosen": "same", "rejected": "same"},
            {"chosen": SHARED + "\n\nAssistant: a", "rejected": "\n\nHuman: Other\n\nAssistant: b"},
        ]
        response = upload(client, pairwise.id, jsonl(*good, *bad), staff)  # the good ones span several chunks
        assert response.status_code == 422
        body = response.json()
        assert body["imported"] == 0 and body["total_errors"] == 2
        assert body["errors"][0].startswith('line 2501, field "rejected": is the same as chosen')
        assert body["errors"][1].startswith('line 2502, field "rejected": does not share the conversation')
        assert count(db, pairwise.id) == 0

    def test_reimport_skips_and_repeated_pairs_in_a_file_are_skipped(self, client, db, pairwise, staff):
        rows = [FILES["trl"], FILES["hh"], FILES["trl"]]
        first = upload(client, pairwise.id, jsonl(*rows), staff).json()
        assert (first["imported"], first["skipped"]) == (2, 1)
        again = upload(client, pairwise.id, jsonl(*rows, FILES["trl-chat"]), staff).json()
        assert (again["imported"], again["skipped"]) == (1, 3)
        assert count(db, pairwise.id) == 3

    def test_ranking_project_is_refused(self, client, db, make_project, staff):
        ranking = make_project(kind="ranking")
        response = upload(client, ranking.id, jsonl(FILES["trl"]), staff, fmt="trl")
        assert response.status_code == 422
        assert response.json()["errors"] == [
            "the trl format holds preference pairs (chosen/rejected): import it into "
            "a pairwise project; this is a ranking project"
        ]
        auto = upload(client, ranking.id, jsonl({"prompt": "p", "responses": ["a", "b"]}, FILES["hh"]), staff).json()
        assert auto["errors"] == [
            "line 2: preference records (chosen/rejected) can only be imported into a pairwise project; this is a ranking project"
        ]
        assert count(db, ranking.id) == 0

    def test_unknown_format_is_a_validation_error(self, client, pairwise, staff):
        assert upload(client, pairwise.id, jsonl(FILES["trl"]), staff, fmt="dpo").status_code == 422

    def test_form_takes_the_format(self, client, db, pairwise, make_user, login_as):
        browser = login_as(make_user(Role.admin))
        page = browser.get(f"/projects/{pairwise.id}")
        assert 'name="format"' in page.text and 'value="hh"' in page.text
        response = browser.post(
            f"/projects/{pairwise.id}/imports",
            data={"csrf_token": browser.headers["X-CSRF-Token"], "format": "hh"},
            files={"file": ("h.jsonl", io.BytesIO(jsonl(FILES["hh"])))},
        )
        assert response.status_code == 200 and "Imported 1, skipped 0" in response.text
        wrong = browser.post(
            f"/projects/{pairwise.id}/imports",
            data={"csrf_token": browser.headers["X-CSRF-Token"], "format": "hh"},
            files={"file": ("t.jsonl", io.BytesIO(jsonl(FILES["trl"])))},
        )
        assert wrong.status_code == 422 and "HH transcript" in wrong.text

    @pytest.mark.usefixtures("database")
    def test_cli_format_option(self, tmp_path, db, pairwise):
        path = tmp_path / "hh.jsonl"
        path.write_bytes(jsonl(FILES["hh"]))

        def preflab(*args):
            return subprocess.run(
                [sys.executable, "-m", "app.cli", "import", str(pairwise.id), str(path), *args],
                capture_output=True,
                text=True,
                env=os.environ,
                timeout=120,
            )

        bad = preflab("--format", "trl-chat")
        assert bad.returncode == 1 and 'line 1, field "chosen": must be a list' in bad.stderr
        assert "imported 1, skipped 0" in preflab("--format", "hh").stdout
        assert stored_pairs(db, pairwise.id).popitem()[1][-1] == "hh: hh.jsonl"


def test_v1_trl_export_imports_as_one_item_per_distinct_pair(client, db, make_user, make_project, bearer, staff):
    """Export a labelled ranking project (v1 trl: extra id columns, several pairs per prompt_id), import the file into
    a pairwise project: every distinct (prompt, chosen, rejected) is one item; repeats are skipped."""
    annotators = [make_user(Role.annotator) for _ in range(3)]
    ranking = make_project(kind="ranking", overlap=3, allow_ties=True, members=annotators)
    prompts = [{"id": f"q{i}", "prompt": f"question {i}", "responses": [f"r{j} of {i}" for j in range(3)]} for i in range(4)]
    assert upload(client, ranking.id, jsonl(*prompts), staff).json()["imported"] == 4
    for n, user in enumerate(annotators):
        headers = bearer(user)
        while (task := client.get(f"/api/projects/{ranking.id}/next", headers=headers)).status_code == 200:
            ids = sorted(r["id"] for r in task.json()["responses"])
            tiers = [[i] for i in ids] if n < 2 else [[ids[2]], [ids[0], ids[1]]]  # two agree, one differs with a tie
            assert (
                client.post(
                    f"/api/tasks/{task.json()['task_id']}/annotations", json={"ranking": tiers}, headers=headers
                ).status_code
                == 201
            )
    export = client.get(f"/api/projects/{ranking.id}/export?format=trl&template=raw", headers=staff).content  # v1: text as stored
    rows = [json.loads(line) for line in export.splitlines()]
    triples = {(r["prompt"], r["chosen"], r["rejected"]) for r in rows}
    assert len(rows) == 4 * (3 + 3 + 2) and len(triples) == 4 * 5

    pairwise = make_project(kind="pairwise")
    body = upload(client, pairwise.id, export, staff, filename="export.jsonl").json()
    assert (body["imported"], body["skipped"], body["errors"]) == (len(triples), len(rows) - len(triples), [])
    stored = stored_pairs(db, pairwise.id)
    assert {(m[0]["content"], c, r) for m, c, r, _ in stored.values()} == triples
    assert all(key.split(":")[0] in {p["id"] for p in prompts} for key in stored)
    db.rollback()
    metadata = db.scalars(select(Prompt.metadata_).where(Prompt.project_id == pairwise.id)).all()
    assert all({"prompt_id", "annotator_id", "annotation_id"} <= m.keys() for m in metadata)
    assert upload(client, pairwise.id, export, staff).json()["skipped"] == len(rows)


def test_annotators_never_see_the_reference(client, db, make_user, make_project, bearer, login_as, staff):
    annotator = make_user(Role.annotator)
    project = make_project(kind="pairwise", overlap=1, members=[annotator])
    rows = [
        {
            "chosen": SHARED + f"\n\nAssistant: good {i}",
            "rejected": SHARED + f"\n\nAssistant: bad {i}",
            "prompt_id": f"secret-id-{i}",
            "score_chosen": 9,
            "score_rejected": 1,
        }
        for i in range(40)
    ]
    assert upload(client, project.id, jsonl(*rows), staff, filename="hidden-source.jsonl").json()["imported"] == 40
    headers = bearer(annotator)
    forbidden = ("hidden-source", "reference", "secret-id", "score", "chosen")

    first = client.get(f"/api/projects/{project.id}/next", headers=headers)
    task = first.json()
    assert set(task) == {
        "task_id",
        "project_id",
        "kind",
        "prompt_id",
        "prompt",
        "responses",
        "allow_ties",
        "strength_scale",
        "rating_criteria",
        "lease_expires_at",
    }
    assert all(set(r) == {"id", "text", "label"} for r in task["responses"])
    for text in (
        first.text,
        client.get(f"/api/tasks/{task['task_id']}", headers=headers).text,
        login_as(annotator).get(f"/projects/{project.id}/annotate").text,
    ):
        assert not [word for word in forbidden if word in text.lower()]
    # Nor the researcher pages or the report.
    assert client.get(f"/api/projects/{project.id}/agreement", headers=headers).status_code == 403
    assert client.get(f"/projects/{project.id}/prompts/{task['prompt_id']}", headers=headers).status_code == 403

    # The ids and the canonical A/B order do not give the reference away: the chosen response is not always first.
    db.rollback()
    first_is_chosen = [
        r[0][0] == min(r[0] + r[1])
        for r in db.scalars(select(ReferenceLabel.ranking).join(Prompt).where(Prompt.project_id == project.id))
    ]
    assert 8 <= sum(first_is_chosen) <= 32


def _public_hash_guess(messages, first: str, second: str) -> bool | None:
    """The attack of issue #11: the old import stored the chosen response first iff a bit of the sha256 of the
    item's content id was 0, and that id is computed from texts the annotator sees. True: "the response with the
    lower id is chosen", False: the other one, None: both hypotheses fit."""

    def first_stored_is_chosen(chosen: str, rejected: str) -> bool:
        item_id = "sha256:" + content_digest(messages, [chosen, rejected])[:32]
        return hashlib.sha256(item_id.encode()).digest()[0] & 1 == 0

    low_chosen_fits = first_stored_is_chosen(first, second)  # hypothesis: first (lower id) is chosen
    high_chosen_fits = not first_stored_is_chosen(second, first)  # hypothesis: second is chosen, stored second
    return None if low_chosen_fits == high_chosen_fits else low_chosen_fits


def test_nothing_the_annotator_sees_predicts_the_reference(client, db, make_user, make_project, bearer, staff):
    """Issue #11, item 6: the storage order (and so the response ids) is drawn at random, not from the content.
    400 pairs imported into two projects, then the annotator walks the first one through the API."""
    n = 400
    rows = [{"prompt": f"Question {i}?", "chosen": f"A good answer {i}.", "rejected": f"A bad answer {i}."} for i in range(n)]
    annotator = make_user(Role.annotator)
    first, second = (make_project(kind="pairwise", overlap=1, members=[annotator]) for _ in range(2))
    for project in (first, second):
        assert upload(client, project.id, jsonl(*rows), staff, fmt="trl").json()["imported"] == n

    def chosen_has_lower_id(project) -> dict[str, bool]:
        db.rollback()
        rows = db.execute(
            select(Prompt.messages, ReferenceLabel.ranking).join(ReferenceLabel).where(Prompt.project_id == project.id)
        )
        return {messages[0]["content"]: r[0][0] < r[1][0] for messages, r in rows}

    in_first, in_second = chosen_has_lower_id(first), chosen_has_lower_id(second)

    # What the annotator receives: response ids and the order they are shown in.
    headers, seen = bearer(annotator), []
    while (task := client.get(f"/api/projects/{first.id}/next", headers=headers)).status_code == 200:
        body = task.json()
        (_low, low_text), (_, high_text) = sorted((r["id"], r["text"]) for r in body["responses"])
        chosen_first_shown = body["responses"][0]["text"].startswith("A good")
        guess = _public_hash_guess([{"role": "user", "content": body["prompt"]}], low_text, high_text)
        seen.append((in_first[body["prompt"]], low_text.startswith("A good"), chosen_first_shown, guess))
        assert client.post(f"/api/tasks/{body['task_id']}/skip", headers=headers).status_code == 204
    assert len(seen) == n
    assert all(lower == from_api for lower, from_api, _, _ in seen)  # the API shows the stored ids

    def consistent_with_chance(hits: int, trials: int) -> bool:
        # The draws are the server's (secrets), so a true coin fails a check with probability p: at 0.001 the four
        # checks failed about once in 250 runs. An order derived from the content is nowhere near (p ~ 1e-100 at 400).
        return 0 < hits < trials and binomtest(hits, trials, 0.5).pvalue > 1e-6

    assert consistent_with_chance(sum(lower for lower, *_ in seen), n)  # the id order
    assert consistent_with_chance(sum(shown for _, _, shown, _ in seen), n)  # the order shown
    decided = [(guess, lower) for lower, _, _, guess in seen if guess is not None]
    assert consistent_with_chance(sum(guess == lower for guess, lower in decided), len(decided))  # the old attack
    # Any function of the content would give the same order in both projects; a random draw agrees half the time.
    assert consistent_with_chance(sum(in_first[q] == in_second[q] for q in in_first), n)
    # The reference itself still names the right texts.
    assert {c for _, c, _, _ in stored_pairs(db, first.id).values()} == {r["chosen"] for r in rows}
