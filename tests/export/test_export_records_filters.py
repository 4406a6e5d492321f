"""A single-file export records the options (filters) it was made with: Parquet in its footer, a JSONL
download in a response header, a file written by the CLI in a `<file>.manifest.json` beside it."""

import hashlib
import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from app.export import service
from app.export.options import ExportOptions
from app.models import Project, Role

URL = "/api/projects/{}/export"


@pytest.fixture
def labelled(seed):
    """4 prompts x 3 responses; a and b agree on r0 and r2, disagree on r1 and r3; one flagged label."""
    rows = [{"id": f"r{i}", "prompt": f"question {i}", "responses": [f"x{i}", f"y{i}", f"z{i}"]} for i in range(4)]
    project = seed.project(rows, allow_ties=True, name="filters project")
    a, b = seed.annotators(2)
    for i in range(4):
        seed.label(project, f"r{i}", a, [[0], [1], [2]])
        seed.label(project, f"r{i}", b, [[0], [1], [2]] if i % 2 == 0 else [[2], [1], [0]], flag="odd" if i == 3 else None)
    return project


def test_parquet_footer_holds_options_and_counts(db, labelled, tmp_path):
    options = ExportOptions(format="trl", file_type="parquet", min_agreement=0.5, min_annotators=2, ties="keep")
    db.rollback()
    path = tmp_path / "out.parquet"
    counts = service.write_file(session=db, project=db.get(Project, labelled.id), options=options, path=path)
    recorded = json.loads(pq.read_metadata(path).metadata[b"preflab"])
    assert recorded["options"] == options.model_dump() and recorded["options"]["min_agreement"] == 0.5
    assert recorded["project"] == {"id": labelled.id, "name": "filters project", "kind": "ranking"}
    # r1 and r3: the two orders disagree on all 3 pairs (agreement 0 < 0.5); r0 and r2 agree (1.0), 2 x 3 pairs each
    assert recorded["counts"] == counts and counts["dropped"]["below_min_agreement"] == 2
    assert counts["rows"] == {"train": 2 * 2 * 3} == {"train": pq.read_table(path).num_rows}


def test_jsonl_download_names_its_options_in_a_header(client, make_user, bearer, labelled):
    params = {"format": "hh", "exclude_flagged": "true", "min_agreement": "0.25", "seed": "7"}
    response = client.get(URL.format(labelled.id), params=params, headers=bearer(make_user(Role.researcher)))
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
    recorded = json.loads(response.headers["preflab-export-options"])
    assert recorded == ExportOptions(format="hh", exclude_flagged=True, min_agreement=0.25, seed=7).model_dump()
    # r3's flagged label is left out, so r3 has one annotator and no agreement: dropped; r1 disagrees: dropped
    assert len(response.text.splitlines()) == 2 * 2 * 3


def test_cli_file_gets_a_sidecar_manifest(labelled, tmp_path):
    out = tmp_path / "pairs.jsonl"
    args = ["export", "filters project", "--exclude-flagged", "--min-annotators", "2", "--out", str(out)]
    result = subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=os.environ, timeout=120)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "pairs.jsonl.manifest.json").read_text())
    assert manifest["options"]["exclude_flagged"] is True and manifest["options"]["min_annotators"] == 2
    lines = out.read_bytes().splitlines()
    # r3 keeps one annotator after the flag filter: dropped by min_annotators; 3 prompts x 2 annotators x 3 pairs
    assert manifest["counts"]["rows"] == {"train": len(lines)} and len(lines) == 3 * 2 * 3
    assert manifest["counts"]["dropped"]["below_min_annotators"] == 1
    assert manifest["files"] == [
        {"path": "pairs.jsonl", "bytes": out.stat().st_size, "sha256": hashlib.sha256(out.read_bytes()).hexdigest()}
    ]


@pytest.mark.parametrize("ties", ["keep", "drop"])
def test_folder_card_says_how_ties_are_written(seed, db, tmp_path, ties):
    project = seed.project([{"id": "t", "prompt": "q", "responses": ["a", "b", "c"]}], allow_ties=True)
    (annotator,) = seed.annotators(1)
    seed.label(project, "t", annotator, [[0, 1], [2]])
    db.rollback()
    options = ExportOptions(format="trl", folder=True, ties=ties)
    folder = tmp_path / "ds"
    manifest = service.write_folder(session=db, project=db.get(Project, project.id), options=options, directory=folder)
    card = (folder / "README.md").read_text()
    assert ("written once in each order" in card) == (ties == "keep")
    # a > c and b > c, plus (keep) the tie of a and b in both orders
    assert manifest["counts"]["rows"] == {"train": 2 + (2 if ties == "keep" else 0)}
