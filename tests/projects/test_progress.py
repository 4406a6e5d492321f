"""Who is doing what: per-annotator progress on the project page and GET /api/projects/{id}/progress."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, select, update

from app.models import Annotation, Assignment, Role, User
from app.models.base import as_utc, utcnow
from app.projects import service


def _upload(client, project, headers, n=6):
    import json

    rows = [{"id": f"q{i}", "prompt": f"question {i}", "responses": [f"a{i}", f"b{i}"]} for i in range(n)]
    content = "\n".join(json.dumps(r) for r in rows).encode()
    response = client.post(f"/api/projects/{project.id}/imports", files={"file": ("b.jsonl", content)}, headers=headers)
    assert response.status_code == 200, response.text


def _label(client, project, headers, ms):
    task = client.get(f"/api/projects/{project.id}/next", headers=headers).json()
    ids = [r["id"] for r in task["responses"]]
    body = {"ranking": [[ids[0]], [ids[1]]], "time_spent_ms": ms}
    assert client.post(f"/api/tasks/{task['task_id']}/annotations", json=body, headers=headers).status_code == 201
    return task


@pytest.fixture
def campaign(client, make_user, make_project, bearer):
    """Ann labels 3 tasks (2, 4 and 9 s), skips one and holds one on screen plus one prefetched;
    Bo labels one and holds nothing; Cy is a member who never started; Dee labelled one and was removed."""
    ann, bo, cy, dee = (make_user(Role.annotator, email=f"{n}@example.org") for n in ("ann", "bo", "cy", "dee"))
    project = make_project(members=[ann, bo, cy, dee], overlap=4)
    staff = bearer(make_user(Role.admin))
    _upload(client, project, staff)
    h = {u.email: bearer(u) for u in (ann, bo, dee)}
    for ms in (2000, 9000, 4000):
        _label(client, project, h["ann@example.org"], ms)
    task = client.get(f"/api/projects/{project.id}/next", headers=h["ann@example.org"]).json()
    skip = client.post(f"/api/tasks/{task['task_id']}/skip", json={"reason": "unclear"}, headers=h["ann@example.org"])
    assert skip.status_code in (200, 204), skip.text
    on_screen = client.get(f"/api/projects/{project.id}/next", headers=h["ann@example.org"]).json()
    prefetched = client.get(
        f"/projects/{project.id}/annotate/prefetch", params={"after": on_screen["task_id"]}, headers=h["ann@example.org"]
    )
    assert prefetched.status_code == 200, prefetched.text
    _label(client, project, h["bo@example.org"], 7000)
    _label(client, project, h["dee@example.org"], 1000)
    assert client.delete(f"/api/projects/{project.id}/members/{dee.id}", headers=staff).status_code == 204
    return project, staff


def test_counts_per_annotator(client, db, campaign):
    project, staff = campaign
    rows = {r["email"]: r for r in client.get(f"/api/projects/{project.id}/progress", headers=staff).json()}
    assert set(rows) == {"ann@example.org", "bo@example.org", "cy@example.org", "dee@example.org"}
    ann, bo, cy, dee = (rows[f"{n}@example.org"] for n in ("ann", "bo", "cy", "dee"))
    assert (ann["done"], ann["skipped"], ann["holding"], ann["prefetched"]) == (3, 1, 1, 1)
    assert ann["median_seconds"] == 4.0  # of 2, 9 and 4 s
    assert (bo["done"], bo["skipped"], bo["holding"], bo["prefetched"], bo["median_seconds"]) == (1, 0, 0, 0, 7.0)
    assert (cy["done"], cy["holding"], cy["median_seconds"], cy["last_active"], cy["member"]) == (0, 0, None, None, True)
    assert dee["member"] is False and dee["done"] == 1 and dee["holding"] == 0  # removal released the lease
    db.rollback()
    last_label = db.scalar(
        select(Annotation.created_at).where(Annotation.annotator_id == bo["annotator_id"]).order_by(Annotation.id.desc())
    )
    assert datetime.fromisoformat(bo["last_active"]) == as_utc(last_label)


def test_an_expired_lease_is_not_held(client, db, campaign):
    project, staff = campaign
    db.rollback()
    ann_id = next(
        r["annotator_id"]
        for r in client.get(f"/api/projects/{project.id}/progress", headers=staff).json()
        if r["email"] == "ann@example.org"
    )
    db.execute(
        update(Assignment)
        .where(Assignment.annotator_id == ann_id, Assignment.status == "leased")
        .values(lease_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.commit()
    row = next(
        r for r in client.get(f"/api/projects/{project.id}/progress", headers=staff).json() if r["email"] == "ann@example.org"
    )
    assert (row["holding"], row["prefetched"]) == (0, 0)


def test_a_few_grouped_queries_whatever_the_number_of_annotators(client, db, database, campaign):
    project, _ = campaign
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    event.listen(database.read_engine, "before_cursor_execute", count)
    try:
        with database.read_sessionmaker() as session:
            rows = service.progress_by_annotator(session=session, project=project)
    finally:
        event.remove(database.read_engine, "before_cursor_execute", count)
    assert len(rows) == 4
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 4


def test_project_page_shows_the_table_to_staff_only(client, make_user, campaign, login_as, db):
    project, _ = campaign
    researcher = login_as(make_user(Role.researcher))
    page = researcher.get(f"/projects/{project.id}")
    assert page.status_code == 200
    row = page.text.split('data-annotator="ann@example.org"')[1].split("</tr>")[0]
    assert '<td data-col="done">3</td>' in row and '<td data-col="skipped">1</td>' in row
    assert "yes" in row and "+1 ahead" in row and "4.0 s" in row
    annotator_page = login_as(make_user(Role.annotator)).get(f"/projects/{project.id}")
    assert annotator_page.status_code == 404  # not a member


class TestPermissions:
    def test_anonymous_is_401(self, client, campaign):
        project, _ = campaign
        assert client.get(f"/api/projects/{project.id}/progress").status_code == 401

    def test_annotator_member_is_403_and_sees_no_table(self, client, db, campaign, login_as):
        project, _ = campaign
        db.rollback()
        ann = db.scalar(select(User).where(User.email == "ann@example.org"))
        browser = login_as(ann)
        assert browser.get(f"/api/projects/{project.id}/progress").status_code == 403
        page = browser.get(f"/projects/{project.id}")
        assert page.status_code == 200 and 'id="progress-table"' not in page.text

    def test_non_member_annotator_is_404(self, client, make_user, bearer, campaign):
        project, _ = campaign
        assert client.get(f"/api/projects/{project.id}/progress", headers=bearer(make_user(Role.annotator))).status_code == 404

    def test_removed_member_is_404(self, client, db, bearer, campaign):
        project, _ = campaign
        db.rollback()
        dee = db.scalar(select(User).where(User.email == "dee@example.org"))
        assert client.get(f"/api/projects/{project.id}/progress", headers=bearer(dee)).status_code == 404

    @pytest.mark.parametrize("role", [Role.researcher, Role.admin])
    def test_staff_read_it(self, client, make_user, bearer, campaign, role):
        project, _ = campaign
        response = client.get(f"/api/projects/{project.id}/progress", headers=bearer(make_user(role)))
        assert response.status_code == 200 and len(response.json()) == 4

    def test_unknown_project_is_404(self, client, make_user, bearer):
        assert client.get("/api/projects/999999/progress", headers=bearer(make_user(Role.admin))).status_code == 404
