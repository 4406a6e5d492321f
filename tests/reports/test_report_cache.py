"""Reports off the request path (app/reports/): a report is computed once per change of the data it reads, by one
caller at a time; others get the last one with its age. Figures are checked against a fresh, uncached report."""

import re
import threading

import pytest
from sqlalchemy import delete, select, text

from app.agreement import service as agreement_service
from app.agreement.schemas import AgreementReport
from app.models import Annotation, Project, ReportCache, Role
from app.reports import cache
from tests.agreement.test_agreement_app import upload

uncached = agreement_service.project_report  # taken before `counted` wraps it


@pytest.fixture
def counted(monkeypatch):
    """Counts the agreement report's computations (the cache calls service.project_report)."""
    calls = []
    original = agreement_service.project_report

    def project_report(**kwargs):
        calls.append(kwargs["project"].id)
        return original(**kwargs)

    monkeypatch.setattr(agreement_service, "project_report", project_report)
    return calls


@pytest.fixture
def setup(client, make_user, make_project, bearer):
    annotators = [make_user(Role.annotator) for _ in range(3)]
    project = make_project(members=annotators, overlap=3)
    staff = bearer(make_user(Role.researcher))
    upload(client, project, staff, n=4, k=3)
    return project, staff, [bearer(a) for a in annotators]


def submit(client, project, headers, order=None):
    task = client.get(f"/api/projects/{project.id}/next", headers=headers).json()
    ids = [r["id"] for r in task["responses"]]
    ranking = [[i] for i in (order(ids) if order else ids)]
    response = client.post(f"/api/tasks/{task['task_id']}/annotations", json={"ranking": ranking}, headers=headers)
    assert response.status_code == 201, response.text
    return task


def fresh(db, project_id) -> dict:
    """The report computed now, without the cache."""
    db.rollback()
    db.expire_all()  # objects kept from earlier commits (expire_on_commit is off)
    report = uncached(session=db, project=db.get_one(Project, project_id))
    db.rollback()
    return report.model_dump(mode="json", exclude={"computed_at", "stale"})


def report(client, project, staff) -> dict:
    response = client.get(f"/api/projects/{project.id}/agreement", headers=staff)
    assert response.status_code == 200, response.text
    return response.json()


def same(served: dict, want: dict) -> bool:
    return {k: v for k, v in served.items() if k not in ("computed_at", "stale")} == want


def test_second_request_is_served_from_the_cache(client, db, setup, counted):
    project, staff, annotators = setup
    for headers in annotators:
        submit(client, project, headers)
    first = report(client, project, staff)
    second = report(client, project, staff)
    assert counted == [project.id]
    assert second == first and first["stale"] is False and first["computed_at"]
    assert same(first, fresh(db, project.id)) and first["summary"]["labels"] == 3


def test_every_change_the_report_reads_recomputes_it(client, db, setup, counted, make_user, bearer):
    project, staff, annotators = setup
    task = submit(client, project, annotators[0])
    report(client, project, staff)

    def changed(expect):
        before = len(counted)
        served = report(client, project, staff)
        assert len(counted) == before + 1, "not recomputed"
        want = fresh(db, project.id)
        assert same(served, want), [k for k in want if served[k] != want[k]]
        assert expect(served), served
        assert report(client, project, staff) == served and len(counted) == before + 1  # and cached again

    submit(client, project, annotators[1])  # a label
    changed(lambda r: r["summary"]["labels"] == 2)
    revised = client.put(
        f"/api/tasks/{task['task_id']}/annotations",
        json={"ranking": [[r["id"]] for r in reversed(task["responses"])]},
        headers=annotators[0],
    )  # a revision
    assert revised.status_code == 200, revised.text
    changed(lambda r: r["summary"]["untouched_labels"] == 1)
    skip_task = client.get(f"/api/projects/{project.id}/next", headers=annotators[2]).json()
    skipped = client.post(f"/api/tasks/{skip_task['task_id']}/skip", json={"reason": "unclear"}, headers=annotators[2])
    assert skipped.status_code == 204
    changed(lambda r: r["skip_reasons"] == [{"reason": "unclear", "skips": 1}])
    gold = client.put(
        f"/api/projects/{project.id}/prompts/{task['prompt_id']}/gold",
        json={"ranking": [[r["id"]] for r in task["responses"]]},
        headers=staff,
    )  # a gold mark: annotator 0's revised (reversed) label scores 0 against it
    assert gold.status_code == 200, gold.text
    changed(lambda r: [a["gold_accuracy"] for a in r["annotators"] if a["gold_labels"]] == [0.0])
    upload(client, project, staff, n=2, k=3)  # an import (new prompts; reference labels come the same way)
    changed(lambda r: r["summary"]["labels"] == 2)
    admin = bearer(make_user(Role.admin))
    edited = client.patch(f"/api/projects/{project.id}", json={"name": "renamed"}, headers=admin)  # a project edit
    assert edited.status_code == 200, edited.text
    changed(lambda r: r["project_name"] == "renamed")
    db.rollback()
    newest = db.scalar(select(Annotation.id).where(Annotation.project_id == project.id).order_by(Annotation.id.desc()))
    db.execute(delete(Annotation).where(Annotation.id == newest))
    db.commit()  # a member's label removed (no route deletes labels yet; the stamp counts them)
    changed(lambda r: r["summary"]["labels"] == 1)
    submit(client, project, annotators[2], order=lambda ids: ids[::-1])  # count back where it was, max id new
    changed(lambda r: r["summary"]["labels"] == 2)


def _compute_blocking(started: threading.Event, release: threading.Event, calls: list):
    def compute(session, project):
        calls.append(threading.current_thread().name)
        started.set()
        assert release.wait(30)
        return agreement_service.project_report(session=session, project=project)

    return compute


def _get(database, project_id, compute):
    return cache.get_or_compute(
        database, kind="agreement", project_id=project_id, params=None, model=AgreementReport, compute=compute
    )


def test_concurrent_requests_compute_once(app, client, setup, monkeypatch):
    monkeypatch.setattr(cache, "POLL_SECONDS", 0.01)
    project, _, _ = setup
    database = app.state.database
    started, release, calls = threading.Event(), threading.Event(), []
    compute = _compute_blocking(started, release, calls)
    results: dict[str, AgreementReport] = {}
    first = threading.Thread(target=lambda: results.setdefault("first", _get(database, project.id, compute)), name="first")
    first.start()
    assert started.wait(30)  # the first holds the lease and computes
    second = threading.Thread(target=lambda: results.setdefault("second", _get(database, project.id, compute)), name="second")
    second.start()
    release.set()
    first.join(30)
    second.join(30)
    assert calls == ["first"]
    assert results["first"].model_dump() == results["second"].model_dump()
    assert results["second"].stale is False


def test_while_one_computes_others_get_the_last_report_with_its_age(app, client, db, setup):
    project, staff, annotators = setup
    submit(client, project, annotators[0])
    old = report(client, project, staff)
    submit(client, project, annotators[1])  # the stamp moves on
    started, release, calls = threading.Event(), threading.Event(), []
    database = app.state.database
    results = {}
    computing = threading.Thread(
        target=lambda: results.setdefault("new", _get(database, project.id, _compute_blocking(started, release, calls)))
    )
    computing.start()
    try:
        assert started.wait(30)
        served = report(client, project, staff)  # through the app, while the other computes
        assert served["stale"] is True and served["computed_at"] == old["computed_at"]
        assert served["summary"] == old["summary"]
        page = client.get(f"/projects/{project.id}/agreement", headers=staff)
        assert "a newer report is being computed" in page.text
    finally:
        release.set()
        computing.join(30)
    assert results["new"].summary.labels == 2
    now = report(client, project, staff)
    assert now["stale"] is False and now["summary"]["labels"] == 2 and same(now, fresh(db, project.id))


def test_a_failed_computation_frees_the_lease(app, client, db, setup):
    project, _, _ = setup

    def broken(session, project):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _get(app.state.database, project.id, broken)
    db.rollback()
    row = db.scalars(select(ReportCache).where(ReportCache.project_id == project.id)).one()
    assert row.lease_token is None and row.payload is None
    computed = _get(app.state.database, project.id, lambda s, p: agreement_service.project_report(session=s, project=p))
    assert computed.stale is False


def test_leaderboard_is_cached_per_options(client, setup, monkeypatch):
    from app.leaderboard import service as leaderboard_service

    project, staff, annotators = setup
    for headers in annotators:
        submit(client, project, headers)
    calls = []
    original = leaderboard_service.leaderboard
    monkeypatch.setattr(leaderboard_service, "leaderboard", lambda **kw: calls.append(kw["options"].seed) or original(**kw))
    url = f"/api/projects/{project.id}/leaderboard"
    first = client.get(url, headers=staff)
    assert first.status_code == 200, first.text
    assert client.get(url, headers=staff).json() == first.json()
    assert client.get(url + "?seed=3", headers=staff).status_code == 200
    assert calls == [0, 3]
    assert client.get(url + "?criterion=nope", headers=staff).status_code == 422  # checked before any work
    assert client.get(f"/projects/{project.id}/leaderboard", headers=staff).status_code == 200
    assert calls == [0, 3]


def test_annotators_and_strangers_get_no_report(client, setup):
    project, _, annotators = setup
    for path in ("agreement", "leaderboard"):
        assert client.get(f"/api/projects/{project.id}/{path}").status_code == 401
        assert client.get(f"/api/projects/{project.id}/{path}", headers=annotators[0]).status_code == 403


def test_the_stamp_reads_indexes_only(db):
    """EXPLAIN on SQLite: no part of the stamp scans a table (PostgreSQL: see BENCHMARKS.md)."""
    if db.get_bind().dialect.name != "sqlite":
        pytest.skip("the planner's choice on a near-empty PostgreSQL table says nothing")
    from app.reports.stamp import _parts

    for part in _parts(1):
        compiled = part.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
        plan = " ".join(str(row[-1]) for row in db.execute(text(f"EXPLAIN QUERY PLAN SELECT {compiled}")))
        assert re.search(r"SEARCH \w+ USING (COVERING INDEX|INDEX|INTEGER PRIMARY KEY)", plan) and not re.search(
            r"SCAN (?!CONSTANT)", plan
        ), plan
