"""Editing a project (PATCH /api/projects/{id}, the edit form, the CLI): every field, checked with the rules of
creation and logged in the audit table; overlap changes through app/annotation/overlap.py; the per-project lease
length; rating criteria that stored labels use; archiving; deleting with a confirmation; who may do each."""

import json
import sqlite3
from datetime import timedelta
from typing import ClassVar

import pytest
from alembic import command
from sqlalchemy import func, select, update

from app import migrate
from app.config import get_settings
from app.db import build_engine
from app.models import (
    Annotation,
    Assignment,
    ImportBatch,
    Project,
    ProjectAudit,
    ProjectMember,
    Prompt,
    Response,
    Role,
)
from app.models.base import as_utc
from tests.cli.test_cli import preflab
from tests.conftest import login


def upload(client, project, headers, rows):
    content = "\n".join(json.dumps(r) for r in rows).encode()
    return client.post(f"/api/projects/{project.id}/imports", files={"file": ("b.jsonl", content)}, headers=headers)


def prompts_with(n: int, k: int = 3, prefix: str = "q"):
    return [{"id": f"{prefix}{i}", "prompt": f"question {i}", "responses": [f"r{j} of {i}" for j in range(k)]} for i in range(n)]


def label(client, project, headers, **extra) -> dict:
    task = client.get(f"/api/projects/{project.id}/next", headers=headers)
    assert task.status_code == 200, task.text
    task = task.json()
    body = {"ranking": [[r["id"]] for r in task["responses"]]} | extra
    response = client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return task


def audit_rows(db, project) -> list[tuple]:
    db.rollback()
    return list(
        db.execute(
            select(ProjectAudit.field, ProjectAudit.before, ProjectAudit.after, ProjectAudit.actor)
            .where(ProjectAudit.project_id == project.id)
            .order_by(ProjectAudit.id)
        )
    )


class TestEditFields:
    @pytest.mark.parametrize(
        ("fields", "change"),
        [
            ({}, {"name": "renamed"}),
            ({}, {"guidelines": "# New rules"}),
            ({}, {"overlap": 5}),
            ({"adaptive_threshold": 0.5, "max_overlap": 4}, {"max_overlap": 6}),
            ({"adaptive_threshold": 0.5, "max_overlap": 4}, {"adaptive_threshold": 0.7}),
            ({}, {"lease_minutes": 7}),
            ({"lease_minutes": 7}, {"lease_minutes": None}),
            ({}, {"allow_ties": True}),
            ({"kind": "pairwise"}, {"strength_scale": ["much better", "better"]}),
            ({}, {"rating_criteria": [{"name": "honesty", "min": 1, "max": 5, "description": ""}]}),
            ({}, {"min_responses": 4}),
            ({}, {"max_responses": 4}),
        ],
    )
    def test_each_field_changes_and_is_logged(self, client, db, make_user, make_project, bearer, fields, change):
        admin = make_user(Role.admin)
        project = make_project(**fields)
        before = client.get(f"/api/projects/{project.id}", headers=bearer(admin)).json()
        response = client.patch(f"/api/projects/{project.id}", json=change, headers=bearer(admin))
        assert response.status_code == 200, response.text
        after = response.json()
        ((field, value),) = change.items()
        assert after[field] == value
        assert {k: v for k, v in after.items() if k != field} == {k: v for k, v in before.items() if k != field}
        assert client.get(f"/api/projects/{project.id}", headers=bearer(admin)).json()[field] == value  # stored
        assert audit_rows(db, project) == [(field, before[field], value, admin.email)]

    def test_unchanged_values_log_nothing_and_several_fields_log_one_row_each(self, client, db, make_user, make_project, bearer):
        admin = bearer(make_user(Role.admin))
        project = make_project(overlap=2)
        assert (
            client.patch(f"/api/projects/{project.id}", json={"overlap": 2, "name": project.name}, headers=admin).status_code
            == 200
        )
        assert audit_rows(db, project) == []
        client.patch(f"/api/projects/{project.id}", json={"overlap": 3, "allow_ties": True}, headers=admin)
        assert [row[0] for row in audit_rows(db, project)] == ["overlap", "allow_ties"]
        log = client.get(f"/api/projects/{project.id}/audit", headers=admin).json()
        assert [entry["field"] for entry in log] == ["allow_ties", "overlap"]  # newest first

    @pytest.mark.parametrize(
        ("fields", "change", "field", "message"),
        [
            ({}, {"overlap": 0}, "overlap", "greater than or equal to 1"),
            (
                {"adaptive_threshold": 0.5, "max_overlap": 4},
                {"overlap": 4},
                "",
                "max_overlap (4) must be greater than overlap (4)",
            ),
            ({}, {"adaptive_threshold": 0.5}, "", "adaptive overlap needs both"),
            ({}, {"strength_scale": ["a", "b"]}, "", "only for pairwise"),
            ({}, {"name": "   "}, "", "blank"),
            ({}, {"rating_criteria": [{"name": "x", "min": 5, "max": 1}]}, "rating_criteria", "greater than min"),
            ({}, {"min_responses": 1}, "", "within the ranking range: 2 to 9"),
            ({}, {"min_responses": 5, "max_responses": 4}, "", "max_responses (4) must be at least min_responses (5)"),
            ({"kind": "pairwise"}, {"max_responses": 3}, "", "pairwise range: exactly 2"),
            ({}, {"lease_minutes": 0}, "lease_minutes", "greater than or equal to 1"),
            ({}, {"kind": "pairwise"}, "", "kind cannot change"),
            ({}, {"colour": "red"}, "colour", "Extra inputs are not permitted"),
        ],
    )
    def test_bad_edits_name_the_problem_and_change_nothing(
        self, client, db, make_user, make_project, bearer, fields, change, field, message
    ):
        admin = bearer(make_user(Role.admin))
        project = make_project(**fields)
        before = client.get(f"/api/projects/{project.id}", headers=admin).json()
        response = client.patch(f"/api/projects/{project.id}", json=change, headers=admin)
        assert response.status_code == 422
        assert message in response.json()["detail"]
        assert all(set(error) == {"field", "message"} for error in response.json()["errors"])
        assert client.get(f"/api/projects/{project.id}", headers=admin).json() == before
        assert audit_rows(db, project) == []

    def test_a_name_in_use_is_409_and_nothing_changes(self, client, db, make_user, make_project, bearer):
        admin = bearer(make_user(Role.admin))
        taken, project = make_project(name="taken"), make_project(name="mine")
        response = client.patch(f"/api/projects/{project.id}", json={"name": "taken", "overlap": 4}, headers=admin)
        assert response.status_code == 409 and "'taken' already exists" in response.json()["detail"]
        assert client.get(f"/api/projects/{project.id}", headers=admin).json()["name"] == "mine"
        assert client.get(f"/api/projects/{project.id}", headers=admin).json()["overlap"] == 3
        assert audit_rows(db, project) == [] and taken.id != project.id


class TestOverlap:
    def test_raising_overlap_reopens_a_complete_prompt(self, client, db, make_user, make_project, bearer):
        first, second = make_user(Role.annotator), make_user(Role.annotator)
        admin = bearer(make_user(Role.admin))
        project = make_project(members=[first, second], overlap=1)
        assert upload(client, project, admin, prompts_with(1)).status_code == 200
        done = label(client, project, bearer(first))
        assert client.get(f"/api/projects/{project.id}/next", headers=bearer(second)).status_code == 204
        assert client.get(f"/api/projects/{project.id}/stats", headers=admin).json()["complete"] == 1

        assert client.patch(f"/api/projects/{project.id}", json={"overlap": 2}, headers=admin).status_code == 200
        assert client.get(f"/api/projects/{project.id}/stats", headers=admin).json()["complete"] == 0
        task = client.get(f"/api/projects/{project.id}/next", headers=bearer(second))
        assert task.status_code == 200 and task.json()["prompt_id"] == done["prompt_id"]

    def test_lowering_overlap_stops_new_leases_but_leases_out_may_be_labelled(self, client, db, make_user, make_project, bearer):
        a, b, c = (make_user(Role.annotator) for _ in range(3))
        admin = bearer(make_user(Role.admin))
        project = make_project(members=[a, b, c], overlap=3)
        upload(client, project, admin, prompts_with(1))
        label(client, project, bearer(a))
        held = client.get(f"/api/projects/{project.id}/next", headers=bearer(b)).json()

        assert client.patch(f"/api/projects/{project.id}", json={"overlap": 1}, headers=admin).status_code == 200
        assert client.get(f"/api/projects/{project.id}/next", headers=bearer(c)).status_code == 204
        body = {"ranking": [[r["id"]] for r in held["responses"]]}
        assert client.post(f"/api/tasks/{held['task_id']}/annotations", json=body, headers=bearer(b)).status_code == 201
        assert client.get(f"/api/projects/{project.id}/stats", headers=admin).json()["complete"] == 1

    def test_gold_and_boosted_prompts_keep_their_targets(self, client, db, make_user, make_project, bearer):
        admin = bearer(make_user(Role.admin))
        project = make_project(overlap=2)
        upload(client, project, admin, prompts_with(4))
        db.rollback()
        plain, boosted, raised, gold = db.scalars(select(Prompt.id).where(Prompt.project_id == project.id).order_by(Prompt.id))
        db.execute(update(Prompt).where(Prompt.id == boosted).values(target_overlap=3, boosted=True))
        db.execute(update(Prompt).where(Prompt.id == raised).values(target_overlap=4))  # boosted earlier, labels in
        db.execute(update(Prompt).where(Prompt.id == gold).values(is_gold=True, gold_ranking=[[1], [2], [3]]))
        db.commit()

        def targets():
            db.rollback()
            rows = dict(db.execute(select(Prompt.id, Prompt.target_overlap).where(Prompt.project_id == project.id)).all())
            return [rows[i] for i in (plain, boosted, raised, gold)]

        client.patch(f"/api/projects/{project.id}", json={"overlap": 1}, headers=admin)
        assert targets() == [1, 3, 4, 2]
        client.patch(f"/api/projects/{project.id}", json={"overlap": 3}, headers=admin)
        assert targets() == [3, 3, 4, 2]  # a boost above the new overlap stays
        client.patch(f"/api/projects/{project.id}", json={"overlap": 5}, headers=admin)
        assert targets() == [5, 5, 5, 2]  # ... and never leaves a prompt below it
        assert db.scalar(select(Prompt.boosted).where(Prompt.id == boosted)) is True


class TestLeaseMinutes:
    def lease_length(self, db, task_id: int) -> timedelta:
        db.rollback()
        assignment = db.get(Assignment, task_id)
        return as_utc(assignment.lease_expires_at) - as_utc(assignment.leased_at)

    def test_the_projects_lease_length_is_used_for_new_leases(self, client, db, make_user, make_project, bearer, login_as):
        annotator = make_user(Role.annotator)
        admin = bearer(make_user(Role.admin))
        project = make_project(members=[annotator])
        upload(client, project, admin, prompts_with(4))
        first = client.get(f"/api/projects/{project.id}/next", headers=bearer(annotator)).json()
        assert self.lease_length(db, first["task_id"]) == timedelta(minutes=30)  # the LEASE_MINUTES setting

        client.patch(f"/api/projects/{project.id}", json={"lease_minutes": 7}, headers=admin)
        browser = login_as(annotator)
        prefetched = browser.get(f"/projects/{project.id}/annotate/prefetch", params={"after": first["task_id"]})
        assert prefetched.status_code == 200
        db.rollback()
        second = db.scalar(select(Assignment.id).where(Assignment.id != first["task_id"], Assignment.project_id == project.id))
        assert self.lease_length(db, second) == timedelta(minutes=7)
        body = {"ranking": [[r["id"]] for r in first["responses"]]}
        client.post(f"/api/tasks/{first['task_id']}/annotations", json=body, headers=bearer(annotator))
        client.post(f"/api/tasks/{second}/skip", headers=bearer(annotator))
        third = client.get(f"/api/projects/{project.id}/next", headers=bearer(annotator)).json()
        assert self.lease_length(db, third["task_id"]) == timedelta(minutes=7)
        page = browser.get(f"/projects/{project.id}/annotate")  # the page leases the fourth
        assert page.status_code == 200
        client.post(f"/api/tasks/{third['task_id']}/skip", headers=bearer(annotator))
        fourth = client.get(f"/api/projects/{project.id}/next", headers=bearer(annotator)).json()
        assert self.lease_length(db, fourth["task_id"]) == timedelta(minutes=7)


class TestRatingCriteria:
    CRITERIA: ClassVar = [{"name": "helpful ness", "min": 1, "max": 7, "description": ""}, {"name": "tone", "min": 1, "max": 5}]

    def test_a_criterion_in_use_cannot_be_removed_or_reranged(self, client, db, make_user, make_project, bearer):
        annotator = make_user(Role.annotator)
        admin = bearer(make_user(Role.admin))
        project = make_project(members=[annotator], overlap=1, rating_criteria=self.CRITERIA)
        upload(client, project, admin, prompts_with(1))
        task = client.get(f"/api/projects/{project.id}/next", headers=bearer(annotator)).json()
        ratings = {"helpful ness": {str(r["id"]): 3 for r in task["responses"]}}
        body = {"ranking": [[r["id"]] for r in task["responses"]], "ratings": ratings}
        assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=bearer(annotator)).status_code == 201

        url = f"/api/projects/{project.id}"
        removed = client.patch(url, json={"rating_criteria": [self.CRITERIA[1]]}, headers=admin)
        assert removed.status_code == 409 and "'helpful ness' is used by 1 stored label" in removed.json()["detail"]
        reranged = [{"name": "helpful ness", "min": 1, "max": 5}, self.CRITERIA[1]]
        assert client.patch(url, json={"rating_criteria": reranged}, headers=admin).status_code == 409
        described = [self.CRITERIA[0] | {"description": "How useful"}, self.CRITERIA[1]]
        assert client.patch(url, json={"rating_criteria": described}, headers=admin).status_code == 200
        unused_removed = client.patch(url, json={"rating_criteria": described[:1]}, headers=admin)
        assert unused_removed.status_code == 200
        added = [*described[:1], {"name": "safety", "min": 0, "max": 1}]
        assert [
            c["name"] for c in client.patch(url, json={"rating_criteria": added}, headers=admin).json()["rating_criteria"]
        ] == [
            "helpful ness",
            "safety",
        ]


class TestArchive:
    def test_archive_hides_from_annotators_blocks_work_and_keeps_export(
        self, client, db, make_user, make_project, bearer, login_as
    ):
        annotator = make_user(Role.annotator)
        admin, researcher = bearer(make_user(Role.admin)), bearer(make_user(Role.researcher))
        project = make_project(members=[annotator], overlap=2)
        upload(client, project, admin, prompts_with(2))
        label(client, project, bearer(annotator))
        held = client.get(f"/api/projects/{project.id}/next", headers=bearer(annotator)).json()

        archived = client.post(f"/api/projects/{project.id}/archive", headers=admin)
        assert archived.status_code == 200 and archived.json()["archived_at"] is not None
        mine = bearer(annotator)
        assert client.get("/api/projects", headers=mine).json() == []
        assert client.get(f"/api/projects/{project.id}", headers=mine).status_code == 404
        assert client.get(f"/api/projects/{project.id}/next", headers=mine).status_code == 404
        browser = login_as(annotator)
        assert browser.get(f"/projects/{project.id}/annotate").status_code == 404
        assert project.name not in browser.get("/").text
        body = {"ranking": [[r["id"]] for r in held["responses"]]}
        submit = client.post(f"/api/tasks/{held['task_id']}/annotations", json=body, headers=mine)
        assert submit.status_code == 409 and "archived" in submit.json()["detail"]
        assert client.post(f"/api/tasks/{held['task_id']}/skip", headers=mine).status_code == 409
        imported = upload(client, project, admin, prompts_with(1, prefix="new"))
        assert imported.status_code == 409 and "archived" in imported.json()["detail"]
        assert client.patch(f"/api/projects/{project.id}", json={"overlap": 3}, headers=admin).status_code == 409

        assert [p["id"] for p in client.get("/api/projects", headers=researcher).json()] == [project.id]
        export = client.get(f"/api/projects/{project.id}/export", params={"format": "trl"}, headers=researcher)
        assert export.status_code == 200 and len(export.text.splitlines()) == 3  # one ranking of 3: 3 pairs

        assert client.post(f"/api/projects/{project.id}/unarchive", headers=admin).json()["archived_at"] is None
        assert [p["id"] for p in client.get("/api/projects", headers=mine).json()] == [project.id]
        assert client.get(f"/api/projects/{project.id}/next", headers=mine).status_code == 200
        assert [row[:3] for row in audit_rows(db, project)] == [("archived", False, True), ("archived", True, False)]

    def test_archiving_releases_leases(self, client, db, make_user, make_project, bearer):
        annotator = make_user(Role.annotator)
        admin = bearer(make_user(Role.admin))
        project = make_project(members=[annotator])
        upload(client, project, admin, prompts_with(1))
        client.get(f"/api/projects/{project.id}/next", headers=bearer(annotator))
        client.post(f"/api/projects/{project.id}/archive", headers=admin)
        db.rollback()
        assert db.scalar(select(Prompt.active_count).where(Prompt.project_id == project.id)) == 0

    def test_staff_member_gets_a_clear_409_on_the_annotate_page(self, client, make_user, make_project, bearer, login_as):
        admin = make_user(Role.admin)
        project = make_project(members=[admin])
        client.post(f"/api/projects/{project.id}/archive", headers=bearer(admin))
        page = login_as(admin).get(f"/projects/{project.id}/annotate")
        assert page.status_code == 409 and "is archived" in page.text


def project_rows(db, project_id: int) -> dict[str, int]:
    db.rollback()
    prompt_ids = select(Prompt.id).where(Prompt.project_id == project_id)
    counts = {
        "projects": select(func.count()).select_from(Project).where(Project.id == project_id),
        "prompts": select(func.count()).select_from(Prompt).where(Prompt.project_id == project_id),
        "responses": select(func.count()).select_from(Response).where(Response.prompt_id.in_(prompt_ids)),
        "assignments": select(func.count()).select_from(Assignment).where(Assignment.project_id == project_id),
        "annotations": select(func.count()).select_from(Annotation).where(Annotation.project_id == project_id),
        "import_batches": select(func.count()).select_from(ImportBatch).where(ImportBatch.project_id == project_id),
        "project_members": select(func.count()).select_from(ProjectMember).where(ProjectMember.project_id == project_id),
        "project_audit": select(func.count()).select_from(ProjectAudit).where(ProjectAudit.project_id == project_id),
    }
    return {table: db.scalar(query) for table, query in counts.items()}


class TestDelete:
    def test_confirm_must_be_the_exact_name(self, client, db, make_user, make_project, bearer):
        admin = bearer(make_user(Role.admin))
        project = make_project(name="Helpfulness v1")
        for params in ({}, {"confirm": "helpfulness v1"}, {"confirm": "Helpfulness v1 "}):
            response = client.delete(f"/api/projects/{project.id}", params=params, headers=admin)
            assert response.status_code == 422 and "'Helpfulness v1'" in response.json()["detail"]
        assert project_rows(db, project.id)["projects"] == 1

    def test_delete_removes_everything_under_the_project_and_nothing_else(self, client, db, make_user, make_project, bearer):
        annotator = make_user(Role.annotator)
        admin_user = make_user(Role.admin)
        admin = bearer(admin_user)
        doomed = make_project(members=[annotator], overlap=1)
        kept = make_project(members=[annotator], overlap=1)
        for project in (doomed, kept):
            upload(client, project, admin, prompts_with(3))
            label(client, project, bearer(annotator))
            client.get(f"/api/projects/{project.id}/next", headers=bearer(annotator))  # a lease
            client.post(f"/api/tasks/{label(client, project, bearer(annotator))['task_id']}/skip", headers=bearer(annotator))
            client.patch(f"/api/projects/{project.id}", json={"guidelines": "edited"}, headers=admin)
        before = project_rows(db, doomed.id)
        assert all(before.values()), before
        kept_before = project_rows(db, kept.id)
        doomed_id, doomed_name = doomed.id, doomed.name

        assert client.delete(f"/api/projects/{doomed_id}", params={"confirm": doomed_name}, headers=admin).status_code == 204
        assert project_rows(db, doomed_id) == dict.fromkeys(before, 0)
        assert project_rows(db, kept.id) == kept_before
        assert client.get(f"/api/projects/{doomed_id}", headers=admin).status_code == 404
        trace = db.execute(select(ProjectAudit).where(ProjectAudit.field == "deleted")).scalar_one()
        assert (trace.project_id, trace.project_name, trace.actor) == (None, doomed_name, admin_user.email)
        assert trace.before["prompts"] == 3 and trace.before["annotations"] == 2


class TestPermissions:
    CALLS: ClassVar = [
        ("patch", "", {"json": {"overlap": 4}}),
        ("post", "/archive", {}),
        ("post", "/unarchive", {}),
        ("delete", "", {"params": {"confirm": "guarded"}}),
    ]

    @pytest.mark.parametrize(("method", "suffix", "kwargs"), CALLS)
    def test_only_admins(self, client, make_user, make_project, bearer, method, suffix, kwargs):
        member = make_user(Role.annotator)
        removed = make_user(Role.annotator)
        project = make_project(name="guarded", members=[member, removed])
        client.delete(f"/api/projects/{project.id}/members/{removed.id}", headers=bearer(make_user(Role.admin)))
        url = f"/api/projects/{project.id}{suffix}"
        assert getattr(client, method)(url, **kwargs).status_code == 401
        assert getattr(client, method)(url, headers=bearer(make_user(Role.annotator)), **kwargs).status_code == 404
        assert getattr(client, method)(url, headers=bearer(removed), **kwargs).status_code == 404
        assert getattr(client, method)(url, headers=bearer(member), **kwargs).status_code == 403
        assert getattr(client, method)(url, headers=bearer(make_user(Role.researcher)), **kwargs).status_code == 403
        assert getattr(client, method)(url, headers=bearer(make_user(Role.admin)), **kwargs).status_code in (200, 204)

    def test_edit_page_and_audit_log(self, client, make_user, make_project, bearer, login_as):
        member = make_user(Role.annotator)
        project = make_project(members=[member])
        anonymous = client.get(f"/projects/{project.id}/edit", headers={"accept": "text/html"}, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
        assert login_as(member).get(f"/projects/{project.id}/edit").status_code == 403
        assert login_as(make_user(Role.annotator)).get(f"/projects/{project.id}/edit").status_code == 404
        researcher = login_as(make_user(Role.researcher))
        assert researcher.get(f"/projects/{project.id}/edit").status_code == 403
        assert researcher.post(f"/projects/{project.id}/edit", data={"name": "x", "overlap": "1"}).status_code == 403
        assert researcher.get(f"/api/projects/{project.id}/audit").status_code == 200
        assert client.get(f"/api/projects/{project.id}/audit", headers=bearer(member)).status_code == 403
        assert 'id="audit"' not in login_as(member).get(f"/projects/{project.id}").text
        assert 'id="edit-link"' not in researcher.get(f"/projects/{project.id}").text


class TestResponsesPerPrompt:
    def test_imports_outside_the_bounds_fail_naming_the_line(self, client, db, make_user, make_project, bearer):
        admin = bearer(make_user(Role.admin))
        project = make_project(min_responses=4, max_responses=4)
        rows = prompts_with(1, k=4) + prompts_with(1, k=5, prefix="five") + prompts_with(1, k=3, prefix="three")
        response = upload(client, project, admin, rows)
        assert response.status_code == 422
        assert response.json()["errors"] == [
            'line 2, field "responses": expected exactly 4 responses, got 5',
            'line 3, field "responses": expected exactly 4 responses, got 3',
        ]
        db.rollback()
        assert db.scalar(select(func.count()).select_from(Prompt).where(Prompt.project_id == project.id)) == 0
        assert upload(client, project, admin, prompts_with(2, k=4)).json()["imported"] == 2

    def test_csv_outside_the_bounds_names_the_row(self, client, make_user, make_project, bearer):
        admin = bearer(make_user(Role.admin))
        project = make_project(min_responses=3, max_responses=4)
        csv = b"prompt,response_1,response_2,response_3,response_4\nq,a,b,c,\nq2,a,b,,\n"
        response = client.post(f"/api/projects/{project.id}/imports", files={"file": ("b.csv", csv)}, headers=admin)
        assert response.status_code == 422
        assert response.json()["errors"] == ["row 3: expected 3 to 4 responses, got 2"]

    def test_defaults_are_the_kinds_range(self, client, make_user, bearer):
        admin = bearer(make_user(Role.admin))
        ranking = client.post("/api/projects", json={"name": "r"}, headers=admin).json()
        pairwise = client.post("/api/projects", json={"name": "p", "kind": "pairwise"}, headers=admin).json()
        assert (ranking["min_responses"], ranking["max_responses"]) == (2, 9)
        assert (pairwise["min_responses"], pairwise["max_responses"]) == (2, 2)
        seven = client.post("/api/projects", json={"name": "s", "min_responses": 7, "max_responses": 7}, headers=admin)
        assert (seven.json()["min_responses"], seven.json()["max_responses"]) == (7, 7)

    def test_preference_records_follow_the_kind_not_the_bounds(self, client, make_user, make_project, bearer):
        admin = bearer(make_user(Role.admin))
        two = make_project(min_responses=2, max_responses=2)  # a ranking project of exactly two responses
        pair = b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n'
        response = client.post(f"/api/projects/{two.id}/imports", files={"file": ("b.jsonl", pair)}, headers=admin)
        assert response.status_code == 422 and "into a pairwise project; this is a ranking project" in response.text
        pairwise = make_project(kind="pairwise")
        response = client.post(f"/api/projects/{pairwise.id}/imports", files={"file": ("b.jsonl", pair)}, headers=admin)
        assert response.status_code == 200 and response.json()["imported"] == 1

    def test_bounds_that_existing_prompts_break_are_refused(self, client, make_user, make_project, bearer):
        admin = bearer(make_user(Role.admin))
        project = make_project()
        upload(client, project, admin, prompts_with(2, k=5) + prompts_with(1, k=3, prefix="three"))
        url = f"/api/projects/{project.id}"
        lowered = client.patch(url, json={"max_responses": 4}, headers=admin)
        assert lowered.status_code == 409 and lowered.json()["detail"].startswith("2 prompt(s) of this project")
        raised = client.patch(url, json={"min_responses": 4}, headers=admin)
        assert raised.status_code == 409 and raised.json()["detail"].startswith("1 prompt(s)")
        assert client.patch(url, json={"min_responses": 3, "max_responses": 5}, headers=admin).status_code == 200


class TestEditForm:
    def test_errors_next_to_the_field_then_saved_and_logged(self, client, db, make_user, make_project):
        admin = make_user(Role.admin)
        project = make_project(name="form project")
        login(client, admin)
        page = client.get(f"/projects/{project.id}/edit")
        assert page.status_code == 200 and 'value="form project"' in page.text
        form = {
            "name": "form project",
            "overlap": "0",
            "guidelines": "new",
            "rating_criteria": "",
            "strength_scale": "",
            "min_responses": "2",
            "max_responses": "12",
            "lease_minutes": "",
            "revisions_open": "true",  # the ticked checkbox, as the page shows it
        }
        bad = client.post(f"/projects/{project.id}/edit", data=form)
        assert bad.status_code == 400
        assert '<p class="field-error" id="overlap-error">Input should be greater than or equal to 1</p>' in bad.text
        assert 'value="0"' in bad.text  # the form comes back as typed
        assert audit_rows(db, project) == []
        good = client.post(f"/projects/{project.id}/edit", data=form | {"overlap": "4", "max_responses": "6"})
        assert good.status_code == 200 and str(good.url).endswith(f"/projects/{project.id}")
        assert [row[:3] for row in audit_rows(db, project)] == [
            ("guidelines", "", "new"),
            ("overlap", 3, 4),
            ("max_responses", 9, 6),
        ]
        assert 'id="audit"' in good.text and "max responses" in good.text and admin.email in good.text
        unticked = {k: v for k, v in form.items() if k != "revisions_open"} | {"overlap": "4", "max_responses": "6"}
        assert client.post(f"/projects/{project.id}/edit", data=unticked).status_code == 200
        assert audit_rows(db, project)[-1][:3] == ("revisions_open", True, False)  # an unticked box closes revisions

    def test_rule_errors_land_next_to_their_field(self, client, make_user, make_project):
        login(client, make_user(Role.admin))
        project = make_project()
        form = {
            "name": "x",
            "overlap": "3",
            "min_responses": "6",
            "max_responses": "4",
            "rating_criteria": "",
            "strength_scale": "",
        }
        bad = client.post(f"/projects/{project.id}/edit", data=form | {"guidelines": ""})
        assert 'id="max_responses-error">max_responses (4) must be at least min_responses (6)' in bad.text
        criteria = client.post(f"/projects/{project.id}/edit", data=form | {"max_responses": "9", "rating_criteria": "x seven"})
        assert 'id="rating_criteria-error">rating criteria, line 1' in criteria.text

    def test_criteria_round_trip_through_the_form(self, client, db, make_user, make_project):
        login(client, make_user(Role.admin))
        criteria = [{"name": "helpful ness", "min": 1, "max": 7, "description": "How useful 1-2 words"}]
        project = make_project(rating_criteria=criteria, guidelines="g")
        page = client.get(f"/projects/{project.id}/edit").text
        assert "helpful ness 1-7 How useful 1-2 words</textarea>" in page
        form = {
            "name": project.name,
            "overlap": "3",
            "guidelines": "g",
            "rating_criteria": "helpful ness 1-7 How useful 1-2 words",
            "revisions_open": "true",
        }
        assert client.post(f"/projects/{project.id}/edit", data=form).status_code == 200
        assert audit_rows(db, project) == []  # the criteria read back as they were: nothing changed
        added = form | {"rating_criteria": form["rating_criteria"] + "\nsafety 0-1"}
        client.post(f"/projects/{project.id}/edit", data=added)
        assert audit_rows(db, project)[0][2] == [*criteria, {"name": "safety", "min": 0, "max": 1, "description": ""}]

    def test_delete_form_wants_the_name(self, client, db, make_user, make_project):
        login(client, make_user(Role.admin))
        project = make_project(name="to go")
        project_id = project.id
        wrong = client.post(f"/projects/{project.id}/delete", data={"confirm": "to  go"})
        assert wrong.status_code == 422 and 'id="confirm-error"' in wrong.text
        right = client.post(f"/projects/{project.id}/delete", data={"confirm": "to go"})
        assert right.status_code == 200 and "to go" not in right.text
        assert project_rows(db, project_id)["projects"] == 0


class TestCli:
    def test_edit_archive_delete(self, client, db, make_project):
        project = make_project(name="cli edit")
        project_id = project.id
        out = preflab("project", "edit", "cli edit", "--overlap", "5", "--lease-minutes", "9", "--max-responses", "4")
        assert "changed overlap, lease_minutes, max_responses" in out.stdout
        db.rollback()
        db.expire_all()  # no transaction was open: rollback alone expires nothing
        edited = db.get(Project, project_id)
        assert (edited.overlap, edited.lease_minutes, edited.max_responses) == (5, 9, 4)
        assert {row[3] for row in audit_rows(db, project)} == {"command line"}
        bad = preflab("project", "edit", "cli edit", "--overlap", "0", check=False)
        assert bad.returncode == 1 and "overlap: Input should be greater than or equal to 1" in bad.stderr
        bad = preflab("project", "edit", "cli edit", "--min-responses", "5", check=False)
        assert bad.returncode == 1 and "max_responses (4) must be at least min_responses (5)" in bad.stderr
        assert "'cli edit' is archived" in preflab("project", "archive", "cli edit").stdout
        assert preflab("project", "edit", "cli edit", "--overlap", "2", check=False).returncode == 1
        assert "'cli edit' is open" in preflab("project", "archive", "cli edit", "--undo").stdout
        wrong = preflab("project", "delete", "cli edit", "--confirm", "cli", check=False)
        assert wrong.returncode == 1 and "confirm with the exact name 'cli edit'" in wrong.stderr
        assert "deleted project 'cli edit'" in preflab("project", "delete", "cli edit", "--confirm", "cli edit").stdout
        assert project_rows(db, project_id)["projects"] == 0


def test_migration_keeps_every_row_and_gives_projects_their_kinds_range(tmp_path):
    """0008 on SQLite adds columns in place: a table copy would DROP `projects`, which (foreign keys on) deletes
    every prompt through ON DELETE CASCADE. Up and down again, the prompts stay."""
    path = tmp_path / "m.db"
    engine = build_engine(get_settings().model_copy(update={"DATABASE_URL": f"sqlite:///{path}"}))
    config = migrate.alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0006_sessions_and_limits")
    with sqlite3.connect(path) as raw:
        for pid, kind in ((1, "ranking"), (2, "pairwise")):
            raw.execute(
                "INSERT INTO projects (id, name, kind, overlap, allow_ties, guidelines, created_at) "
                "VALUES (?, ?, ?, 2, 0, '', '2026-01-01')",
                (pid, f"p{pid}", kind),
            )
            raw.execute(
                "INSERT INTO prompts (id, project_id, external_id, messages, is_chat, completed_count, active_count, "
                "target_overlap, is_gold, boosted) VALUES (?, ?, 'e', '[]', 0, 0, 0, 2, 0, 0)",
                (pid, pid),
            )
    migrate.upgrade(engine)
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT id, min_responses, max_responses FROM projects ORDER BY id").fetchall() == [
            (1, 2, 9),
            (2, 2, 2),
        ]
        assert raw.execute("SELECT count(*) FROM prompts").fetchone() == (2,)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006_sessions_and_limits")
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT count(*) FROM prompts").fetchone() == (2,)
    engine.dispose()
