"""Issue #11, item 7: membership is checked on every task action. Removing an annotator from a project releases the
tasks they hold there, and every later call on those tasks is a 404, as for someone else's task."""

import pytest
from sqlalchemy import func, select

from app.models import Annotation, Assignment, Prompt, Role
from tests.annotation import test_queue
from tests.annotation.test_queue import next_task, rank_as_shown

add_prompts = test_queue.add_prompts  # the queue tests' fixture


@pytest.fixture
def removed(client, db, make_user, make_project, bearer, login_as, add_prompts):
    """An annotator holding a task and a prefetched one in a project (overlap 1), then removed from it by an admin
    through the API (`api`) or the project page's form (`form`); and a colleague who stays."""

    def make(how: str = "api"):
        annotator, colleague, admin = make_user(Role.annotator), make_user(Role.annotator), make_user(Role.admin)
        project = make_project(members=[annotator, colleague], overlap=1)
        add_prompts(project, 2, 2)
        headers = bearer(annotator)
        task = next_task(client, project, headers).json()
        prefetched = client.get(f"/projects/{project.id}/annotate/prefetch?after={task['task_id']}", headers=headers)
        assert prefetched.status_code == 200
        assert next_task(client, project, bearer(colleague)).status_code == 204  # overlap 1: both prompts are held
        if how == "api":
            assert client.delete(f"/api/projects/{project.id}/members/{annotator.id}", headers=bearer(admin)).status_code == 204
        else:
            page = login_as(admin).post(f"/projects/{project.id}/members/{annotator.id}/remove", follow_redirects=False)
            assert page.status_code == 303
        return project, headers, task, bearer(colleague)

    return make


@pytest.mark.parametrize("how", ["api", "form"])
def test_removal_releases_the_leases(client, db, removed, how):
    project, _, _task, colleague = removed(how)
    db.rollback()
    leases = db.scalars(select(Assignment).where(Assignment.project_id == project.id)).all()
    assert len(leases) == 2 and {a.status for a in leases} == {"expired"}
    assert db.scalars(select(Prompt.active_count).where(Prompt.project_id == project.id)).all() == [0, 0]
    # The colleague gets both prompts now, not when the leases run out.
    got = set()
    while (t := next_task(client, project, colleague)).status_code == 200:
        got.add(t.json()["prompt_id"])
        assert (
            client.post(
                f"/api/tasks/{t.json()['task_id']}/annotations", json=rank_as_shown(t.json()), headers=colleague
            ).status_code
            == 201
        )
    assert got == {l.prompt_id for l in leases}


def test_every_task_action_of_a_removed_annotator_is_a_404(client, db, removed, login_as):
    project, headers, task, _ = removed()
    task_id = task["task_id"]
    assert client.get(f"/api/tasks/{task_id}", headers=headers).status_code == 404
    submit = client.post(f"/api/tasks/{task_id}/annotations", json=rank_as_shown(task), headers=headers)
    assert submit.status_code == 404 and submit.json()["detail"] == "Task not found"
    flag = {"flag": "harmful", "flag_reason": "broken"}
    assert client.post(f"/api/tasks/{task_id}/annotations", json=flag, headers=headers).status_code == 404
    assert client.post(f"/api/tasks/{task_id}/skip", headers=headers).status_code == 404
    assert next_task(client, project, headers).status_code == 404
    assert client.get(f"/projects/{project.id}/annotate/prefetch?after={task_id}", headers=headers).status_code == 404
    assert client.get(f"/projects/{project.id}/annotate", headers=headers).status_code == 404
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Annotation).where(Annotation.project_id == project.id)) == 0
    assert db.scalar(select(func.count()).where(Assignment.project_id == project.id, Assignment.status == "skipped")) == 0


def test_added_back_the_annotator_works_again(client, db, removed, make_user, bearer):
    project, headers, task, _ = removed()
    annotator_id = db.scalar(select(Assignment.annotator_id).where(Assignment.id == task["task_id"]))
    admin = bearer(make_user(Role.admin))
    assert client.put(f"/api/projects/{project.id}/members/{annotator_id}", headers=admin).status_code == 204
    again = next_task(client, project, headers)
    assert again.status_code == 200
    assert (
        client.post(
            f"/api/tasks/{again.json()['task_id']}/annotations", json=rank_as_shown(again.json()), headers=headers
        ).status_code
        == 201
    )
