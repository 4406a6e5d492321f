"""Export over HTTP (streamed file, Parquet, zipped dataset folder, 422s naming the parameter), from the
CLI (file and folder, progress on stderr) and the project page's form."""

import gzip
import io
import json
import os
import subprocess
import sys
import zipfile

import pyarrow.parquet as pq
import pytest
from datasets import List, Value, load_dataset

from app.models import Role

URL = "/api/projects/{}/export"


@pytest.fixture
def labelled(seed):
    rows = [{"id": f"h{i}", "prompt": f"question {i}", "responses": [f"a{i}", f"b{i}", f"c{i}"]} for i in range(20)]
    project = seed.project(rows, allow_ties=True, name="http project")
    a, b = seed.annotators(2)
    for i in range(20):
        seed.label(project, f"h{i}", a, [[0], [1], [2]])
        seed.label(project, f"h{i}", b, [[0, 1], [2]])
    return project


def test_jsonl_gzip_stream(client, make_user, bearer, labelled):
    response = client.get(
        URL.format(labelled.id),
        params={"format": "trl", "file_type": "jsonl.gz", "ties": "keep"},
        headers=bearer(make_user(Role.researcher)),
    )
    assert response.status_code == 200 and response.headers["content-type"] == "application/gzip"
    assert 'filename="http_project-trl.jsonl.gz"' in response.headers["content-disposition"]
    rows = [json.loads(line) for line in gzip.decompress(response.content).splitlines()]
    # a: 3 pairs; b: 2 pairs and its tie of a and b in both orders
    assert len(rows) == 20 * (3 + 2 + 2) and sum(r["tie"] for r in rows) == 20 * 2


def test_parquet_download(client, make_user, bearer, labelled):
    response = client.get(
        URL.format(labelled.id), params={"format": "listwise", "file_type": "parquet"}, headers=bearer(make_user(Role.admin))
    )
    assert response.status_code == 200 and response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.content))
    assert table.num_rows == 40 and table.column_names[:2] == ["prompt", "responses"]


def test_dataset_folder_as_zip(client, make_user, bearer, labelled, tmp_path):
    response = client.get(
        URL.format(labelled.id),
        headers=bearer(make_user(Role.researcher)),
        params={
            "format": "trl",
            "folder": "true",
            "file_type": "parquet",
            "test_fraction": "0.3",
            "consensus": "borda",
            "template": "hh",
        },
    )
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == [
            "README.md",
            "data/test.parquet",
            "data/train.parquet",
            "manifest.json",
            "skips.jsonl",
        ]
        archive.extractall(tmp_path / "ds")
    dd = load_dataset(str(tmp_path / "ds"))
    assert set(dd) == {"train", "test"} and not set(dd["train"]["prompt_id"]) & set(dd["test"]["prompt_id"])
    # Borda of a0 > b0 > c0 and (a0 = b0) > c0: mean ranks 1.25, 1.75, 3 -> three tiers, three pairs a prompt
    assert len(dd["train"]) + len(dd["test"]) == 20 * 3
    assert {(r["votes_chosen"], r["votes_rejected"], r["votes_tie"]) for r in dd["train"] if r["chosen"] == " a0"} <= {
        (1, 0, 1),
        (2, 0, 0),
    }
    row = dd["train"][0]
    assert row["prompt"].endswith("\n\nAssistant:") and row["chosen"].startswith(" ")


@pytest.mark.parametrize(
    "params, field",
    [
        ({"format": "csv"}, "format"),
        ({"file_type": "xlsx"}, "file_type"),
        ({"pairs": "some"}, "pairs"),
        ({"min_agreement": "2"}, "min_agreement"),
        ({"test_fraction": "1"}, "test_fraction"),
        ({"bogus": "1"}, "bogus"),
        ({"format": "raw", "pairs": "adjacent"}, "pairs"),
        ({"format": "listwise", "margin": "rank_distance"}, "margin"),
        ({"margin": "llama2_large"}, "margin"),  # a ranking project has no strength scale
    ],
)
def test_bad_options_are_422_naming_the_parameter(client, make_user, bearer, labelled, params, field):
    response = client.get(URL.format(labelled.id), params=params, headers=bearer(make_user(Role.admin)))
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_project_page_has_the_export_form(login_as, make_user, labelled):
    page = login_as(make_user(Role.researcher)).get(f"/projects/{labelled.id}")
    assert page.status_code == 200
    html = page.text
    # The form goes through the page route, which checks the options and sends good ones on to the download.
    assert f'action="/projects/{labelled.id}/export"' in html
    for name in (
        "format",
        "file_type",
        "pairs",
        "consensus",
        "margin",
        "ties",
        "min_agreement",
        "min_annotators",
        "exclude_flagged",
        "exclude_gold",
        "dedupe",
        "test_fraction",
        "seed",
        "template",
        "labels",
    ):
        assert f'name="{name}"' in html, name
    assert '<option value="trl-chat"' in html and 'name="folder" value="true" checked' in html


def test_form_defaults_download_a_loadable_folder(login_as, make_user, labelled, tmp_path):
    """What the page's Download button sends by default (a browser submits every field)."""
    client = login_as(make_user(Role.researcher))
    from app.export.options import form_fields

    params = {
        f["name"]: ("" if f["default"] is None else str(f["default"]).lower() if f["kind"] == "bool" else str(f["default"]))
        for f in form_fields()
        if not (f["kind"] == "bool" and not f["default"])
    }
    response = client.get(URL.format(labelled.id), params=params)
    assert response.status_code == 200, response.text
    zipfile.ZipFile(io.BytesIO(response.content)).extractall(tmp_path / "ds")
    dd = load_dataset(str(tmp_path / "ds"))
    assert set(dd) == {"train", "test"} and dd["train"].features["prompt"].dtype == "string"
    # The form's default template is the API's (auto: hh for trl), so prompt + chosen reads as one transcript.
    assert params["template"] == "auto" and dd["train"][0]["prompt"].endswith("\n\nAssistant:")
    assert dd["train"][0]["chosen"].startswith(" ")


def preflab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=os.environ, timeout=120)


def test_cli_folder_and_file(labelled, tmp_path):
    result = preflab(
        "export",
        "http project",
        "--format",
        "trl-chat",
        "--folder",
        "--test-fraction",
        "0.5",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "ds"),
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert f"wrote {sum(manifest['counts']['rows'].values())} pairs" in result.stderr
    assert "prompts" in result.stderr  # the progress counter
    dd = load_dataset(str(tmp_path / "ds"))
    assert set(dd) == {"train", "test"} and dd["train"].features["chosen"] == List(
        {"role": Value("string"), "content": Value("string")}
    )
    result = preflab(
        "export",
        "http project",
        "--format",
        "raw",
        "--file-type",
        "parquet",
        "--exclude-flagged",
        "--out",
        str(tmp_path / "raw.parquet"),
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 40 rows" in result.stderr
    assert pq.read_table(tmp_path / "raw.parquet").num_rows == 40


def test_cli_bad_option_names_it(labelled, tmp_path):
    result = preflab("export", "http project", "--format", "csv", "--out", str(tmp_path / "x"))
    assert result.returncode == 1 and "--format" in result.stderr
    result = preflab("export", "http project", "--file-type", "parquet")
    assert result.returncode == 1 and "--out" in result.stderr


def test_cli_refuses_a_non_empty_folder(labelled, tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "old.parquet").write_bytes(b"x")
    result = preflab("export", "http project", "--folder", "--out", str(tmp_path / "ds"))
    assert result.returncode == 1 and "is not empty" in result.stderr
