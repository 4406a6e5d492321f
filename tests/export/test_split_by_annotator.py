"""Held-out annotators (issue 15 item 4): `split_by=annotator` puts all of an annotator's rows in one split, with the
same seeded hash and test_fraction as the split by prompt; a prompt may then be in both splits."""

import json
from collections import defaultdict

import pytest

from app.export.rows import annotator_split, split_of
from app.models import Role
from tests.cli.test_cli import preflab
from tests.export.test_formats import export

URL = "/api/projects/{}/export"


@pytest.fixture
def crowd(seed):
    """12 prompts x 3 responses; 30 annotators, each labelling 4 prompts (so every prompt has several)."""
    rows = [{"id": f"c{i}", "prompt": f"q{i}", "responses": ["a", "b", "c"]} for i in range(12)]
    project = seed.project(rows)
    people = seed.annotators(30)
    for k, person in enumerate(people):
        for i in range(4):
            seed.label(project, f"c{(k + 3 * i) % 12}", person, [[0], [1], [2]] if k % 3 else [[2], [0, 1]])
    return project, people


def rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("fmt", ["trl", "listwise", "raw"])
def test_every_annotators_rows_are_in_one_split(db, crowd, tmp_path, fmt):
    project, people = crowd
    path, counts = export(db, project, tmp_path, format=fmt, split_by="annotator", test_fraction=0.3, seed=5)
    rows = rows_of(path)
    splits = defaultdict(set)
    for row in rows:
        splits[row["annotator_id"]].add(row["split"])
    assert set(splits) == {p.id for p in people}
    for annotator, seen in splits.items():
        assert seen == {annotator_split(annotator, seed=5, test_fraction=0.3)}
    test = {a for a, s in splits.items() if s == {"test"}}
    assert 0 < len(test) < len(people)
    # A prompt is in both splits when annotators of both labelled it.
    prompts = defaultdict(set)
    for row in rows:
        prompts[row["prompt_id"]].add(row["split"])
    assert any(s == {"train", "test"} for s in prompts.values())
    assert counts["prompts"] == {s: sum(1 for v in prompts.values() if s in v) for s in ("train", "test")}
    assert counts["rows"] == {s: sum(1 for r in rows if r["split"] == s) for s in ("train", "test")}


def test_the_fraction_is_honoured_and_the_split_is_seeded():
    ids = range(1, 4001)
    for fraction in (0.1, 0.3, 0.5):
        share = sum(annotator_split(a, seed=3, test_fraction=fraction) == "test" for a in ids) / len(ids)
        assert share == pytest.approx(fraction, abs=0.03)
    first = [annotator_split(a, seed=3, test_fraction=0.3) for a in ids]
    assert first == [annotator_split(a, seed=3, test_fraction=0.3) for a in ids]
    assert first != [annotator_split(a, seed=4, test_fraction=0.3) for a in ids]
    # the same hash as the prompt split, of a key no prompt split shares
    assert all(
        annotator_split(a, seed=3, test_fraction=0.3) == split_of(f"annotator:{a}", seed=3, test_fraction=0.3) for a in ids
    )
    assert annotator_split(7, seed=3, test_fraction=0) == "train"


def test_reproducible_file_and_another_seed_moves_annotators(db, crowd, tmp_path):
    project, _ = crowd
    path, _ = export(db, project, tmp_path, format="trl", split_by="annotator", test_fraction=0.3, seed=5)
    (tmp_path / "again").mkdir()
    again, _ = export(db, project, tmp_path / "again", format="trl", split_by="annotator", test_fraction=0.3, seed=5)
    assert again.read_bytes() == path.read_bytes()
    (tmp_path / "other").mkdir()
    other, _ = export(db, project, tmp_path / "other", format="trl", split_by="annotator", test_fraction=0.3, seed=6)
    test_of = lambda p: {r["annotator_id"] for r in rows_of(p) if r["split"] == "test"}  # noqa: E731
    assert test_of(other) != test_of(path)


def test_folder_card_says_a_prompt_may_be_in_both_splits(db, crowd, tmp_path):
    project, _ = crowd
    folder, manifest = export(db, project, tmp_path, format="trl", folder=True, split_by="annotator", test_fraction=0.3)
    assert manifest["options"]["split_by"] == "annotator"
    assert "a prompt can be in both splits" in (folder / "README.md").read_text()


@pytest.mark.parametrize(
    "params",
    [
        {"split_by": "annotator", "consensus": "borda"},
        {"split_by": "annotator", "labels": "reference"},
        {"split_by": "rater"},
    ],
)
def test_split_by_annotator_with_consensus_or_reference_labels_is_422(client, make_user, make_project, bearer, params):
    project = make_project(kind="pairwise")
    response = client.get(URL.format(project.id), params=params, headers=bearer(make_user(Role.researcher)))
    assert response.status_code == 422, response.text
    assert "split_by" in response.json()["detail"]


def test_http_and_cli(client, db, crowd, make_user, bearer, tmp_path, login_as):
    project, _ = crowd
    staff = make_user(Role.researcher)
    params = {"format": "trl", "split_by": "annotator", "test_fraction": "0.4", "seed": "2"}
    response = client.get(URL.format(project.id), params=params, headers=bearer(staff))
    assert response.status_code == 200
    http_rows = [json.loads(line) for line in response.text.splitlines()]
    assert all(r["split"] == annotator_split(r["annotator_id"], seed=2, test_fraction=0.4) for r in http_rows)
    out = tmp_path / "cli.jsonl"
    result = preflab(
        "export",
        project.name,
        "--format",
        "trl",
        "--split-by",
        "annotator",
        "--test-fraction",
        "0.4",
        "--seed",
        "2",
        "--out",
        str(out),
    )
    assert rows_of(out) == http_rows and "train" in result.stderr and "test" in result.stderr
    bad = preflab("export", project.name, "--split-by", "annotator", "--consensus", "borda", check=False)
    assert bad.returncode == 1 and "split-by: annotator needs one row per annotator's label" in bad.stderr
    assert 'name="split_by"' in login_as(staff).get(f"/projects/{project.id}").text  # the page's export form
