"""The `preflab` command line, run as a real process against the test database."""

import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

pytestmark = pytest.mark.usefixtures("database")


def preflab(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=os.environ, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_user_project_import_export_round(tmp_path, client):
    token_line = preflab("user", "create", "ann@example.org", "--role", "annotator", "--password", "longenough", "--token").stdout
    assert "created annotator ann@example.org" in token_line
    token = token_line.split("API token (shown once): ")[1].strip()
    preflab("user", "create", "res@example.org", "--role", "researcher", "--password", "longenough")
    assert (
        "created ranking project 'cli project'"
        in preflab("project", "create", "cli project", "--kind", "ranking", "--overlap", "1").stdout
    )
    preflab("project", "add-member", "cli project", "ann@example.org")
    batch = tmp_path / "batch.jsonl"
    batch.write_text('{"id": "a", "prompt": "p", "responses": ["best", "mid", "worst"]}\n')
    assert "imported 1, skipped 0" in preflab("import", "cli project", str(batch)).stdout
    assert "imported 0, skipped 1" in preflab("import", "cli project", str(batch)).stdout

    headers = {"Authorization": f"Bearer {token}"}
    project_id = client.get("/api/projects", headers=headers).json()[0]["id"]
    task = client.get(f"/api/projects/{project_id}/next", headers=headers).json()
    by_text = {r["text"]: r["id"] for r in task["responses"]}
    ranking = [[by_text["best"]], [by_text["mid"]], [by_text["worst"]]]
    assert client.post(f"/api/tasks/{task['task_id']}/annotations", json={"ranking": ranking}, headers=headers).status_code == 201

    out = tmp_path / "pairs.jsonl"
    result = preflab("export", "cli project", "--format", "trl", "--out", str(out))
    assert "wrote 3 pairs" in result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # The default template is hh (TRL joins prompt + chosen); --template raw keeps the text as stored.
    assert {(r["prompt"], r["chosen"], r["rejected"]) for r in rows} == {
        ("\n\nHuman: p\n\nAssistant:", c, r) for c, r in ((" best", " mid"), (" best", " worst"), (" mid", " worst"))
    }
    preflab("export", "cli project", "--format", "trl", "--template", "raw", "--out", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["chosen"], r["rejected"]) for r in rows} == {("best", "mid"), ("best", "worst"), ("mid", "worst")}


def test_import_errors_exit_1_and_name_the_line(tmp_path):
    preflab("project", "create", "p2", "--kind", "pairwise")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "responses": ["a", "b"]}\n{"prompt": "p", "responses": ["a"]}\n')
    result = preflab("import", "p2", str(bad), check=False)
    assert result.returncode == 1
    assert "line 2" in result.stderr and "nothing imported" in result.stderr


def test_clear_errors(tmp_path):
    (tmp_path / "x.jsonl").write_text("{}")
    assert "No project named or numbered 'missing'" in preflab("import", "missing", str(tmp_path / "x.jsonl"), check=False).stderr
    result = preflab("user", "create", "not-an-email", "--role", "admin", check=False)
    assert result.returncode == 1 and "email" in result.stderr
    result = preflab("export", "nope", "--format", "trl", check=False)
    assert result.returncode == 1 and "No project named or numbered 'nope'" in result.stderr


def test_demo_is_idempotent_and_logs_in_with_the_passwords_it_printed_once(client):
    import re

    from tests.conftest import csrf_from

    first = preflab("demo").stdout
    assert "8 prompts imported" in first
    passwords = dict(re.findall(r"^  (\S+@example\.org) +(\S+) ", first, re.M))
    from app import demo

    assert len(passwords) == len(demo.ACCOUNTS) == 9 and "preflab-demo" not in first
    assert len(set(passwords.values())) == 9  # random, one each
    again = preflab("demo").stdout
    assert "0 prompts imported, 8 already there" in again
    assert not any(p in again for p in passwords.values()), "a re-run printed (or reset) the passwords"

    def log_in(password: str):
        token = csrf_from(client.get("/login").text)
        return client.post("/login", data={"email": "annotator@example.org", "password": password, "csrf_token": token})

    assert log_in("preflab-demo").status_code == 400
    response = log_in(passwords["annotator@example.org"])
    assert response.status_code == 200 and "Demo: assistant responses" in response.text


def test_demo_known_passwords_only_when_asked(client):
    from tests.conftest import csrf_from

    result = preflab("demo", "--known-passwords")
    assert "preflab-demo" in result.stderr and "127.0.0.1" in result.stderr  # the warning
    token = csrf_from(client.get("/login").text)
    response = client.post("/login", data={"email": "admin@example.org", "password": "preflab-demo", "csrf_token": token})
    assert response.status_code == 200


def test_demo_dashboard_singles_out_the_careless_seeded_raters(client, db, make_user, bearer, monkeypatch):
    """The demo's seeded raters give the dashboard real disagreement: the 'always the first shown' rater
    has a position bias far above chance, and both careless raters agree less with the others than the
    careful ones do. (The display order is seeded here so the check is deterministic.)"""
    import random

    from app import demo
    from app.annotation import service as annotation
    from app.models import Project, Role

    monkeypatch.setattr(annotation, "_shuffle", random.Random(7).shuffle)
    db.commit()
    list(demo.create(db))
    db.commit()
    project = db.scalar(select(Project).where(Project.name == demo.RANKING_PROJECT))
    report = client.get(f"/api/projects/{project.id}/agreement", headers=bearer(make_user(Role.researcher))).json()
    assert report["summary"]["prompts_with_2plus"] == len(demo.RANKING_PROMPTS)
    by_email = {a["email"]: a for a in report["annotators"]}
    assert by_email["firstshown@example.org"]["position_bias"]["observed"] == 1.0
    assert by_email["firstshown@example.org"]["position_bias"]["p_value"] < 0.01
    loo = {email: a["loo_agreement"]["value"] for email, a in by_email.items()}
    assert max(loo["random@example.org"], loo["firstshown@example.org"]) < min(
        loo["rater@example.org"], loo["rater2@example.org"], loo["rater3@example.org"]
    )


def test_the_commands_do_not_load_the_web_stack():
    """The command line loads the database half of app/db.py only: FastAPI and Starlette (~0.3 s of every command's
    start) come in with app/web/sessions.py, which only the routes use."""
    probe = "import sys, app.cli; print(sorted(m for m in ('fastapi', 'starlette') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
