"""Overlap rules (app/annotation/overlap.py): the import target, the adaptive boost (threshold, cap), gold
marking that keeps a boost, the counts' "complete"; adaptive overlap from the form and the CLI."""

import ast
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, update

from app import migrate
from app.annotation.overlap import boosted_target
from app.config import get_settings
from app.db import build_engine
from app.models import Assignment, Project, Prompt, Response, Role
from app.models.base import utcnow
from tests.agreement.test_agreement_app import upload
from tests.cli.test_cli import preflab
from tests.conftest import login

ROOT = Path(__file__).resolve().parents[2]


class TestBoostRule:
    @pytest.mark.parametrize(
        ("target", "agreement", "expected"),
        [
            (2, 0.49, 3),  # below the threshold: one more annotator
            (2, 0.5, None),  # exactly at the threshold: agreement enough
            (2, 0.9, None),
            (2, None, None),  # fewer than two labels: nothing to judge
            (4, 0.0, None),  # at the cap: never above max_overlap
            (3, 0.0, 4),
        ],
    )
    def test_threshold_and_cap(self, target, agreement, expected):
        assert boosted_target(target=target, agreement=agreement, threshold=0.5, max_overlap=4) == expected


def label(client, project, headers, order=lambda ids: ids) -> int:
    task = client.get(f"/api/projects/{project.id}/next", headers=headers).json()
    ids = sorted(r["id"] for r in task["responses"])
    body = {"ranking": [[i] for i in order(ids)]}
    assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers).status_code == 201
    return task["prompt_id"]


def disputed_prompt(client, db, make_user, make_project, bearer, *, max_overlap=3):
    """One prompt, overlap 2, labelled in opposite orders by two annotators: adaptive overlap boosts it."""
    annotators = [make_user(Role.annotator) for _ in range(4)]
    project = make_project(members=annotators, overlap=2, adaptive_threshold=0.9, max_overlap=max_overlap)
    upload(client, project, bearer(make_user(Role.admin)), n=1)
    headers = [bearer(a) for a in annotators]
    label(client, project, headers[0])
    prompt_id = label(client, project, headers[1], order=lambda ids: ids[::-1])
    db.rollback()
    return project, headers, db.get(Prompt, prompt_id)


class TestAdaptiveOverlap:
    def test_never_above_max_overlap(self, client, db, make_user, make_project, bearer):
        project, headers, prompt = disputed_prompt(client, db, make_user, make_project, bearer, max_overlap=3)
        assert (prompt.target_overlap, prompt.boosted) == (3, True)
        label(client, project, headers[2], order=lambda ids: [ids[1], ids[0], *ids[2:]])  # still disputed
        db.rollback()
        db.refresh(prompt)
        assert (prompt.target_overlap, prompt.boosted) == (3, False)  # capped: no fourth annotator
        assert client.get(f"/api/projects/{project.id}/next", headers=headers[3]).status_code == 204

    def test_marking_gold_then_unmarking_keeps_the_boost(self, client, db, make_user, make_project, bearer):
        project, headers, prompt = disputed_prompt(client, db, make_user, make_project, bearer)
        staff = bearer(make_user(Role.researcher))
        ids = list(db.scalars(select(Response.id).where(Response.prompt_id == prompt.id).order_by(Response.position)))
        url = f"/api/projects/{project.id}/prompts/{prompt.id}/gold"
        assert client.put(url, json={"ranking": [[i] for i in ids]}, headers=staff).status_code == 200
        db.rollback()
        db.refresh(prompt)
        assert (prompt.is_gold, prompt.target_overlap) == (True, 3)  # gold is a flag, the target stays
        assert client.put(url, json={"ranking": None}, headers=staff).status_code == 200
        db.rollback()
        db.refresh(prompt)
        assert (prompt.is_gold, prompt.target_overlap, prompt.boosted) == (False, 3, True)
        assert client.get(f"/api/projects/{project.id}/next", headers=headers[2]).json()["prompt_id"] == prompt.id


def test_late_label_on_a_gold_prompt_past_its_target_is_kept(client, db, make_user, make_project, bearer):
    """A lease that expired and was reclaimed: its late label counts on a gold prompt, which wants everyone."""
    first, second = make_user(Role.annotator), make_user(Role.annotator)
    project = make_project(members=[first, second], overlap=1)
    upload(client, project, bearer(make_user(Role.admin)), n=1)
    db.execute(update(Prompt).values(is_gold=True, gold_ranking=[[0]]))
    db.commit()
    task = client.get(f"/api/projects/{project.id}/next", headers=bearer(first)).json()
    db.execute(update(Assignment).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    label(client, project, bearer(second))  # reclaims the first lease; the prompt is at its target of 1
    body = {"ranking": [[r["id"]] for r in task["responses"]]}
    assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=bearer(first)).status_code == 201
    db.rollback()
    assert db.scalar(select(Prompt.completed_count)) == 2


def test_imported_prompts_want_the_projects_overlap(client, db, make_user, make_project, bearer):
    project = make_project(overlap=4)
    upload(client, project, bearer(make_user(Role.admin)), n=2)
    db.rollback()
    assert list(db.scalars(select(Prompt.target_overlap))) == [4, 4]


def test_complete_counts_prompts_at_their_target_but_never_gold_ones(client, db, make_user, make_project, bearer):
    annotator = make_user(Role.annotator)
    project = make_project(members=[annotator], overlap=1)
    staff = bearer(make_user(Role.researcher))
    upload(client, project, staff, n=3)
    db.rollback()
    gold = db.scalars(select(Prompt).order_by(Prompt.id)).first()
    ids = list(db.scalars(select(Response.id).where(Response.prompt_id == gold.id).order_by(Response.position)))
    url = f"/api/projects/{project.id}/prompts/{gold.id}/gold"
    assert client.put(url, json={"ranking": [[i] for i in ids]}, headers=staff).status_code == 200
    for _ in range(2):  # the gold prompt (least served, lowest id) and one other
        label(client, project, bearer(annotator))
    stats = client.get(f"/api/projects/{project.id}/stats", headers=staff).json()
    assert (stats["prompts"], stats["annotations"], stats["complete"]) == (3, 2, 1)


def test_annotation_service_does_not_import_the_agreement_service():
    tree = ast.parse((ROOT / "app/annotation/service.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "app.agreement.service" not in imported, sorted(imported)


class TestAdaptiveOverlapSettings:
    def test_form_sets_adaptive_overlap(self, client, db, make_user):
        login(client, make_user(Role.admin))
        form = {"name": "adaptive", "kind": "ranking", "overlap": "2", "csrf_token": client.headers["X-CSRF-Token"]}
        page = client.get("/projects/new")
        assert 'name="adaptive_threshold"' in page.text and 'name="max_overlap"' in page.text and 'value="3"' in page.text
        created = client.post("/projects/new", data=form | {"adaptive_threshold": "0.7", "max_overlap": "4"})
        assert created.status_code == 200 and "adaptive" in created.text
        db.rollback()
        project = db.scalar(select(Project))
        assert (project.overlap, project.adaptive_threshold, project.max_overlap) == (2, 0.7, 4)

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"adaptive_threshold": "0.7"}, "needs both adaptive_threshold and max_overlap"),
            ({"adaptive_threshold": "1.5", "max_overlap": "4"}, "adaptive_threshold"),
            ({"adaptive_threshold": "often", "max_overlap": "4"}, "adaptive_threshold"),
            ({"adaptive_threshold": "0.7", "max_overlap": "2"}, "max_overlap (2) must be greater than overlap (2)"),
        ],
    )
    def test_form_shows_adaptive_errors_and_stores_nothing(self, client, db, make_user, fields, message):
        login(client, make_user(Role.admin))
        form = {"name": "adaptive", "kind": "ranking", "overlap": "2", "csrf_token": client.headers["X-CSRF-Token"]}
        bad = client.post("/projects/new", data=form | fields)
        assert bad.status_code == 400 and message in bad.text
        assert f'value="{fields["adaptive_threshold"]}"' in bad.text  # the field keeps what was typed
        db.rollback()
        assert db.scalar(select(Project)) is None

    def test_cli_sets_adaptive_overlap(self, db):
        args = ("project", "create", "cli adaptive", "--overlap", "2")
        assert "created" in preflab(*args, "--adaptive-threshold", "0.6", "--max-overlap", "5").stdout
        db.rollback()
        project = db.scalar(select(Project))
        assert (project.overlap, project.adaptive_threshold, project.max_overlap) == (2, 0.6, 5)

    def test_cli_rejects_half_adaptive_overlap(self, db):
        result = preflab("project", "create", "cli half", "--adaptive-threshold", "0.6", check=False)
        assert result.returncode != 0 and "needs both adaptive_threshold and max_overlap" in result.stderr
        db.rollback()
        assert db.scalar(select(Project)) is None


def test_migration_gives_gold_prompts_their_target_back(tmp_path):
    """0006: gold prompts stored with the old 1_000_000 target get their project's overlap (and back on downgrade)."""
    path = tmp_path / "m.db"
    engine = build_engine(get_settings().model_copy(update={"DATABASE_URL": f"sqlite:///{path}"}))
    config = migrate.alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005_open_prompts_index")
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO projects (id, name, kind, overlap, allow_ties, guidelines, created_at) "
            "VALUES (1, 'p', 'ranking', 2, 0, '', '2026-01-01')"
        )
        for pid, gold, target in ((1, 1, 1_000_000), (2, 0, 3)):
            raw.execute(
                "INSERT INTO prompts (id, project_id, external_id, messages, is_chat, completed_count, active_count, "
                "target_overlap, is_gold, boosted) VALUES (?, 1, ?, '[]', 0, 0, 0, ?, ?, 0)",
                (pid, f"e{pid}", target, gold),
            )
    migrate.upgrade(engine)
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT id, target_overlap FROM prompts ORDER BY id").fetchall() == [(1, 2), (2, 3)]
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005_open_prompts_index")
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT id, target_overlap FROM prompts ORDER BY id").fetchall() == [(1, 1_000_000), (2, 3)]
    engine.dispose()
