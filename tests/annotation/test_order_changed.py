"""Issue #13, "no accidental labels": every label carries order_changed, derived by the server from the label and
the order the responses were shown in (README "My labels"): false only for a ranking exactly as shown with no ties,
or a pairwise choice of the response shown first. It is in the submit's answer, the raw export and the report."""

import json
import sqlite3

import pytest
from alembic import command

from app import migrate
from app.config import get_settings
from app.db import build_engine
from app.models import Annotation, Role
from app.rankings import order_changed
from tests.annotation import test_queue
from tests.annotation.test_queue import next_task

add_prompts = test_queue.add_prompts  # the queue tests' fixture


@pytest.fixture
def task_of(client, make_user, make_project, bearer, add_prompts):
    """A fresh annotator's first task in a new project with n-response prompts: (project, headers, task)."""

    def make(k: int = 4, **project_fields):
        annotator = make_user(Role.annotator)
        project = make_project(members=[annotator], **project_fields)
        add_prompts(project, 1, k)
        headers = bearer(annotator)
        return project, headers, next_task(client, project, headers).json()

    return make


def submit(client, task, headers, body) -> dict:
    response = client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def stored_flag(db, annotation_id: int) -> bool:
    db.rollback()
    return db.get(Annotation, annotation_id).order_changed


class TestRanking:
    def test_the_order_shown_untouched(self, client, db, task_of):
        _, h, task = task_of()
        shown = [r["id"] for r in task["responses"]]
        label = submit(client, task, h, {"ranking": [[rid] for rid in shown]})
        assert label["order_changed"] is False and stored_flag(db, label["id"]) is False

    @pytest.mark.parametrize(
        "reorder",
        [
            lambda s: [s[1], s[0], s[2], s[3]],  # two swapped
            lambda s: s[::-1],
            lambda s: [s[0], s[1], s[3], s[2]],  # only the last two
        ],
    )
    def test_any_other_order(self, client, db, task_of, reorder):
        _, h, task = task_of()
        shown = [r["id"] for r in task["responses"]]
        label = submit(client, task, h, {"ranking": [[rid] for rid in reorder(shown)]})
        assert label["order_changed"] is True and stored_flag(db, label["id"]) is True

    def test_a_tie_in_the_shown_order_is_a_change(self, client, db, task_of):
        _, h, task = task_of(allow_ties=True)
        a, b, c, d = [r["id"] for r in task["responses"]]
        label = submit(client, task, h, {"ranking": [[a], [b, c], [d]]})
        assert label["order_changed"] is True and stored_flag(db, label["id"]) is True

    def test_a_label_without_a_ranking_changed_no_order(self, client, db, task_of):
        _, h, task = task_of()
        label = submit(client, task, h, {"none_acceptable": True})
        assert label["order_changed"] is False and stored_flag(db, label["id"]) is False


class TestPairwise:
    """A choice has no order to leave untouched: "first shown is better" is the untouched label."""

    @pytest.mark.parametrize("pick, changed", [(0, False), (1, True)])
    def test_choosing_the_first_or_second_shown(self, client, db, task_of, pick, changed):
        _, h, task = task_of(k=2, kind="pairwise")
        shown = [r["id"] for r in task["responses"]]
        label = submit(client, task, h, {"chosen": shown[pick], "rejected": shown[1 - pick]})
        assert label["order_changed"] is changed and stored_flag(db, label["id"]) is changed

    def test_a_tie_is_a_change(self, client, db, task_of):
        _, h, task = task_of(k=2, kind="pairwise", allow_ties=True)
        label = submit(client, task, h, {"tie": True})
        assert label["order_changed"] is True and stored_flag(db, label["id"]) is True


def test_the_rule_itself():
    assert order_changed([[3], [1], [2]], [3, 1, 2]) is False
    assert order_changed([[1], [3], [2]], [3, 1, 2]) is True
    assert order_changed([[3, 1], [2]], [3, 1, 2]) is True
    assert order_changed(None, [3, 1, 2]) is False


def test_raw_export_and_report_carry_it(client, db, make_user, make_project, bearer, add_prompts):
    annotators = [make_user(Role.annotator) for _ in range(2)]
    project = make_project(members=annotators, overlap=2)
    add_prompts(project, 3, 3)
    untouched_by: dict[int, int] = {}
    for i, annotator in enumerate(annotators):
        h = bearer(annotator)
        for n in range(3):
            task = next_task(client, project, h).json()
            shown = [r["id"] for r in task["responses"]]
            keep = n < i + 1  # annotator 0 keeps one task as shown, annotator 1 two
            submit(client, task, h, {"ranking": [[rid] for rid in (shown if keep else shown[::-1])]})
            untouched_by[annotator.id] = untouched_by.get(annotator.id, 0) + keep
    staff = bearer(make_user(Role.researcher))
    raw = client.get(f"/api/projects/{project.id}/export", params={"format": "raw", "file_type": "jsonl"}, headers=staff)
    rows = [json.loads(line) for line in raw.text.splitlines()]
    assert len(rows) == 6
    for row in rows:
        assert row["order_changed"] is (row["ranking"] != [[rid] for rid in row["shown_order"]])
    report = client.get(f"/api/projects/{project.id}/agreement", headers=staff).json()
    assert {a["annotator_id"]: (a["untouched_labels"], a["ranked_labels"]) for a in report["annotators"]} == {
        annotators[0].id: (1, 3),
        annotators[1].id: (2, 3),
    }
    assert (report["summary"]["untouched_labels"], report["summary"]["untouched_rate"]) == (3, 0.5)


def test_migration_computes_it_for_stored_labels(tmp_path):
    """0007: labels stored before get order_changed from their ranking and shown order (and lose it on downgrade)."""
    path = tmp_path / "m.db"
    engine = build_engine(get_settings().model_copy(update={"DATABASE_URL": f"sqlite:///{path}"}))
    config = migrate.alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006_sessions_and_limits")
    labels = {
        1: ([[12], [11], [13]], [12, 11, 13]),
        2: ([[11], [12], [13]], [12, 11, 13]),
        3: ([[12, 11], [13]], [12, 11, 13]),
        4: (None, [12, 11, 13]),
    }
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO projects (id, name, kind, overlap, allow_ties, guidelines, created_at) "
            "VALUES (1, 'p', 'ranking', 2, 1, '', '2026-01-01')"
        )
        raw.execute(
            "INSERT INTO prompts (id, project_id, external_id, messages, is_chat, completed_count, active_count, "
            "target_overlap, is_gold, boosted) VALUES (1, 1, 'e', '[]', 0, 0, 0, 2, 0, 0)"
        )
        for aid, (ranking, shown) in labels.items():
            raw.execute(
                "INSERT INTO annotations (id, assignment_id, project_id, prompt_id, annotator_id, kind, ranking, "
                "none_acceptable, shown_order, created_at) VALUES (?, ?, 1, 1, ?, 'ranking', ?, 0, ?, '2026-01-01')",
                (aid, aid, aid, json.dumps(ranking) if ranking else None, json.dumps(shown)),
            )
    migrate.upgrade(engine)
    with sqlite3.connect(path) as raw:
        got = raw.execute("SELECT id, order_changed, revision, revised_at FROM annotations ORDER BY id").fetchall()
        assert got == [(1, 0, 0, None), (2, 1, 0, None), (3, 1, 0, None), (4, 0, 0, None)]
        assert raw.execute("SELECT revisions_open FROM projects").fetchall() == [(1,)]
        assert raw.execute("SELECT count(*) FROM prompts").fetchall() == [(1,)]  # no table copy cascaded
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006_sessions_and_limits")
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM prompts").fetchall() == [(1,)]
        assert raw.execute("SELECT count(*) FROM annotations").fetchall() == [(4,)]
        assert "order_changed" not in [c[1] for c in raw.execute("PRAGMA table_info(annotations)")]
    engine.dispose()
