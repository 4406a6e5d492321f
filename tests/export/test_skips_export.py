"""The skips export (`format=skips`): one row per skipped task, over HTTP (JSONL, Parquet), from the CLI, and as
skips.jsonl in every dataset folder; rows checked against the stored assignments."""

import io
import json
import os
import subprocess
import sys
import zipfile

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select, update

from app.export.rows import split_of
from app.models import Assignment, Prompt, Role, User
from app.models.base import as_utc

URL = "/api/projects/{}/export"


@pytest.fixture
def skipped(client, db, make_user, make_project, bearer):
    """Annotators skip some tasks through the API (one without a reason, as the API still allows) and label others."""
    annotators = [make_user(Role.annotator) for _ in range(3)]
    project = make_project(members=annotators, overlap=3, name="skip project")
    staff = bearer(make_user(Role.researcher))
    records = [{"id": f"s{i}", "prompt": f"question {i}", "responses": [f"a{i}", f"b{i}", f"c{i}"]} for i in range(8)]
    content = "\n".join(json.dumps(r) for r in records).encode()
    assert (
        client.post(f"/api/projects/{project.id}/imports", files={"file": ("b.jsonl", content)}, headers=staff).status_code == 200
    )
    plans = [["too long", "<i>unsafe</i>", None, "too long"], ["too long", "", "label"], ["label", "label"]]
    for user, plan in zip(annotators, plans, strict=True):
        headers = bearer(user)
        for step in plan:
            task = client.get(f"/api/projects/{project.id}/next", headers=headers).json()
            if step == "label":
                body = {"ranking": [[r["id"]] for r in task["responses"]]}
                assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers).status_code == 201
            else:
                payload = {} if step is None else {"json": {"reason": step}}
                assert client.post(f"/api/tasks/{task['task_id']}/skip", headers=headers, **payload).status_code == 204
    db.rollback()
    first_skipped = db.scalars(select(Assignment.prompt_id).where(Assignment.status == "skipped").order_by(Assignment.id)).first()
    db.rollback()
    db.execute(update(Prompt).where(Prompt.id == first_skipped).values(is_gold=True))
    db.commit()
    return project, staff


def stored_skips(db, project) -> list[dict]:
    """The expected rows, from the assignments table."""
    db.rollback()
    rows = db.execute(
        select(Assignment, Prompt, User)
        .join(Prompt, Prompt.id == Assignment.prompt_id)
        .join(User, User.id == Assignment.annotator_id)
        .where(Assignment.project_id == project.id, Assignment.status == "skipped")
        .order_by(Assignment.prompt_id, Assignment.skipped_at, Assignment.id)
    ).all()
    return [
        {
            "prompt_id": p.external_id,
            "prompt_db_id": p.id,
            "annotator_id": u.id,
            "annotator_email": u.email,
            "reason": a.skip_reason,
            "skipped_at": as_utc(a.skipped_at).isoformat(),
            "is_gold": p.is_gold,
        }
        for a, p, u in rows
    ]


def test_jsonl_has_one_row_per_skip(client, db, skipped):
    project, staff = skipped
    want = stored_skips(db, project)
    assert len(want) == 6 and {r["reason"] for r in want} == {"too long", "<i>unsafe</i>", None}
    assert all(r["skipped_at"] for r in want)
    response = client.get(URL.format(project.id), params={"format": "skips"}, headers=staff)
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    assert 'filename="skip_project-skips.jsonl"' in response.headers["content-disposition"]
    assert [json.loads(line) for line in response.text.splitlines()] == want


def test_gold_filter_and_split(client, db, skipped):
    project, staff = skipped
    want = stored_skips(db, project)
    response = client.get(URL.format(project.id), params={"format": "skips", "exclude_gold": "true"}, headers=staff)
    assert [json.loads(line) for line in response.text.splitlines()] == [r for r in want if not r["is_gold"]]
    response = client.get(URL.format(project.id), params={"format": "skips", "test_fraction": "0.5", "seed": "3"}, headers=staff)
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert [r["split"] for r in rows] == [split_of(r["prompt_id"], seed=3, test_fraction=0.5) for r in want]


def test_parquet(client, db, skipped):
    project, staff = skipped
    response = client.get(URL.format(project.id), params={"format": "skips", "file_type": "parquet"}, headers=staff)
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(response.content))
    assert table.column_names == [
        "prompt_id",
        "prompt_db_id",
        "annotator_id",
        "annotator_email",
        "reason",
        "skipped_at",
        "is_gold",
    ]
    assert table.to_pylist() == stored_skips(db, project)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"consensus": "borda"}, "consensus"),
        ({"min_agreement": "0.5"}, "min_agreement"),
        ({"exclude_flagged": "true"}, "exclude_flagged"),
        ({"labels": "reference"}, "labels"),
        ({"margin": "rank_distance"}, "margin"),
    ],
)
def test_label_options_are_refused(client, skipped, params, named):
    project, staff = skipped
    response = client.get(URL.format(project.id), params={"format": "skips"} | params, headers=staff)
    assert response.status_code == 422 and named in response.text


def test_dataset_folder_holds_skips_jsonl(client, db, skipped):
    project, staff = skipped
    want = stored_skips(db, project)
    response = client.get(URL.format(project.id), params={"format": "trl", "folder": "true"}, headers=staff)
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert [json.loads(line) for line in archive.read("skips.jsonl").splitlines()] == want
        manifest = json.loads(archive.read("manifest.json"))
        card = archive.read("README.md").decode()
    assert manifest["counts"]["skips"] == 6
    assert {"path": "skips.jsonl", "split": None, "rows": 6}.items() <= next(
        f for f in manifest["files"] if f["path"] == "skips.jsonl"
    ).items()
    assert "`skips.jsonl` holds every task an annotator skipped (6)" in card
    assert "skips.jsonl" not in card.split("---")[1]  # not a split of the dataset's configs


def test_only_staff_may_export_skips(client, make_user, bearer, skipped):
    project, _ = skipped
    assert client.get(URL.format(project.id), params={"format": "skips"}).status_code == 401
    assert (
        client.get(URL.format(project.id), params={"format": "skips"}, headers=bearer(make_user(Role.annotator))).status_code
        == 404
    )


def test_cli(db, skipped, tmp_path):
    project, _ = skipped
    out = tmp_path / "skips.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "export", str(project.id), "--format", "skips", "--out", str(out)],
        capture_output=True,
        text=True,
        env=os.environ,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in out.read_text().splitlines()] == stored_skips(db, project)
