"""The annotation page's prefetch: the next task, leased while the current one is shown, at most two leases."""

import re

from sqlalchemy import select

from app.models import Annotation, Assignment, Prompt
from tests.annotation import test_queue
from tests.annotation.test_queue import next_task, rank_as_shown

add_prompts, setup = test_queue.add_prompts, test_queue.setup  # the queue tests' fixtures


def prefetch(client, project, headers, after=None):
    query = "" if after is None else f"?after={after}"
    return client.get(f"/projects/{project.id}/annotate/prefetch{query}", headers=headers)


def task_of(html: str) -> int:
    return int(re.search(r'data-submit-url="/api/tasks/(\d+)/annotations"', html).group(1))


def live_leases(db, project) -> list[int]:
    db.rollback()
    return list(
        db.scalars(
            select(Assignment.id)
            .where(Assignment.project_id == project.id, Assignment.status == "leased")
            .order_by(Assignment.id)
        )
    )


def test_leases_a_second_task_and_returns_it_again(client, db, setup):
    project, (h,), _ = setup(n_annotators=1, n_prompts=4)
    current = next_task(client, project, h).json()
    first = prefetch(client, project, h, after=current["task_id"])
    assert first.status_code == 200 and first.template.name == "annotation/_task.html"
    upcoming = task_of(first.text)
    assert upcoming != current["task_id"]
    assert 'id="annotate"' in first.text and "<html" not in first.text  # the block only, not a page
    assert prefetch(client, project, h, after=current["task_id"]).text == first.text  # no third lease
    assert live_leases(db, project) == [current["task_id"], upcoming]
    db.rollback()
    prompts = {a.prompt_id for a in db.scalars(select(Assignment).where(Assignment.project_id == project.id))}
    assert len(prompts) == 2  # two different prompts
    assert next_task(client, project, h).json()["task_id"] == current["task_id"]  # "next" still means the current one


def test_after_the_current_task_is_done_the_prefetched_one_is_next(client, db, setup):
    project, (h,), _ = setup(n_annotators=1, n_prompts=3)
    current = next_task(client, project, h).json()
    upcoming = task_of(prefetch(client, project, h, after=current["task_id"]).text)
    assert client.post(f"/api/tasks/{current['task_id']}/annotations", headers=h, json=rank_as_shown(current)).status_code == 201
    assert next_task(client, project, h).json()["task_id"] == upcoming
    third = task_of(prefetch(client, project, h, after=upcoming).text)
    assert live_leases(db, project) == [upcoming, third]
    # the prefetched task is a normal task: labelled once, counted once
    task = client.get(f"/api/tasks/{upcoming}", headers=h).json()
    assert client.post(f"/api/tasks/{upcoming}/annotations", headers=h, json=rank_as_shown(task)).status_code == 201
    db.rollback()
    assert db.scalar(select(Annotation.assignment_id).where(Annotation.assignment_id == upcoming)) == upcoming
    assert sum(db.scalars(select(Prompt.active_count).where(Prompt.project_id == project.id))) == 3  # 2 done + 1 leased


def test_204_when_nothing_else_is_left(client, db, setup):
    project, (h,), _ = setup(n_annotators=1, n_prompts=1)
    current = next_task(client, project, h).json()
    assert prefetch(client, project, h, after=current["task_id"]).status_code == 204
    assert live_leases(db, project) == [current["task_id"]]


def test_respects_the_overlap(client, db, setup):
    project, (h1, h2), _ = setup(n_annotators=2, n_prompts=2, overlap=1)
    one = next_task(client, project, h1).json()
    assert prefetch(client, project, h1, after=one["task_id"]).status_code == 200  # takes the other prompt
    assert next_task(client, project, h2).status_code == 204  # both prompts are leased, overlap 1


def test_skipping_moves_on_to_the_prefetched_task(client, db, setup):
    project, (h,), _ = setup(n_annotators=1, n_prompts=3)
    current = next_task(client, project, h).json()
    upcoming = task_of(prefetch(client, project, h, after=current["task_id"]).text)
    assert client.post(f"/api/tasks/{current['task_id']}/skip", headers=h, json={"reason": "unsure"}).status_code == 204
    assert next_task(client, project, h).json()["task_id"] == upcoming


def test_asking_again_for_a_held_task_writes_and_locks_nothing(client, app, setup):
    """A page reload, a repeated "next" or prefetch only reads: no row lock (on PostgreSQL a lock is a write and
    makes the commit wait for the WAL flush), no UPDATE, no INSERT."""
    from sqlalchemy import event

    project, (h,), _ = setup(n_annotators=1, n_prompts=3)
    current = next_task(client, project, h).json()
    prefetch(client, project, h, after=current["task_id"])
    statements: list[str] = []
    engine = app.state.database.engine
    record = lambda conn, cursor, sql, params, context, many: statements.append(sql.upper())  # noqa: E731
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert next_task(client, project, h).json()["task_id"] == current["task_id"]
        assert prefetch(client, project, h, after=current["task_id"]).status_code == 200
        assert client.get(f"/projects/{project.id}/annotate", headers=h).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
    statements = [s for s in statements if not s.startswith("BEGIN")]  # SQLite's BEGIN IMMEDIATE (app.db)
    assert statements and all(s.lstrip().startswith("SELECT") and "FOR UPDATE" not in s for s in statements), statements
