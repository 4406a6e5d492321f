"""The annotator's hot path, GET next and POST annotations (BENCHMARKS.md "Annotate against the stack's floor"): one
trip to the thread pool per call, the route's, which authenticates the caller (app.users.dependencies `Caller`), does
its work, commits its session, gives its database slot back and serialises its answer (app.web.sessions.end_request_session, app.web.templating
json_after_session). A commit that fails there is still an error answer, never a 2xx for work that was lost."""

from datetime import timedelta

import anyio.to_thread
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.models import Annotation, ApiToken, Assignment, Role, User, UserSession
from app.models.base import as_utc, utcnow
from app.users.security import hash_api_token
from tests.annotation import test_queue
from tests.annotation.test_queue import next_task, rank_as_shown
from tests.conftest import login

add_prompts, setup = test_queue.add_prompts, test_queue.setup  # the queue tests' fixtures


def submit(client, task, headers):
    return client.post(f"/api/tasks/{task['task_id']}/annotations", json=rank_as_shown(task), headers=headers)


def test_next_and_submit_take_one_trip_to_the_thread_pool_each(client, db, setup, monkeypatch):
    project, (h,), _ = setup(n_annotators=1, n_prompts=2)
    trips: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func, *args, **kwargs):
        trips.append(getattr(func, "__name__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    task = next_task(client, project, h)
    assert task.status_code == 200 and len(trips) == 1, trips
    trips.clear()
    stored = submit(client, task.json(), h)
    assert stored.status_code == 201 and len(trips) == 1, trips
    trips.clear()
    again = submit(client, task.json(), h)  # a repeat: the stored label, 200
    assert again.status_code == 200 and again.json()["id"] == stored.json()["id"] and len(trips) == 1, trips
    assert all("api_" in trip for trip in trips), trips  # the route's own trip, authentication included
    db.rollback()  # both calls' work was committed before they answered
    assert db.scalar(select(Assignment.status).where(Assignment.id == task.json()["task_id"])) == "done"
    assert db.scalar(select(func.count()).select_from(Annotation)) == 1


def test_a_commit_failing_at_the_end_of_a_submit_is_an_error_and_stores_nothing(client, db, setup, monkeypatch):
    project, (h,), _ = setup(n_annotators=1, n_prompts=2)
    task = next_task(client, project, h).json()

    def commit_fails(session):
        raise OperationalError("COMMIT", {}, Exception("disk full"))

    with monkeypatch.context() as patched:
        patched.setattr(Session, "commit", commit_fails)
        assert submit(client, task, h).status_code == 503  # the database-unavailable answer
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Annotation)) == 0
    # The slot came back and the transaction was rolled back: the task is still the annotator's to label.
    assert next_task(client, project, h).json()["task_id"] == task["task_id"]
    assert submit(client, task, h).status_code == 201


def test_a_caller_presenting_nothing_is_refused_before_the_path_or_body_is_read(client, setup):
    """`Caller` checks the credentials in the route's trip; one who presents none is a 401 at once, as with CurrentUser,
    whatever the path or body (a malformed one would otherwise answer 422 first)."""
    project, _, _ = setup(n_annotators=1, n_prompts=2)
    assert client.get("/api/projects/abc/next").status_code == 401
    assert client.post("/api/tasks/x/annotations", content=b"{{{").status_code == 401
    assert client.post("/api/tasks/1/annotations", json={"ranking": "not tiers"}).status_code == 401
    revoked = {"Authorization": "Bearer not-a-token"}
    assert client.get(f"/api/projects/{project.id}/next", headers=revoked).status_code == 401
    assert client.post("/api/tasks/1/annotations", json={"ranking": [[1]]}, headers=revoked).status_code == 401


class TestTheCallerAsAPlainRow:
    """next and submit authenticate to a plain row (app.users.service `signed_in_for_token` / `_for_session`), not
    through CurrentUser: the same rules hold there (tests/users holds them for the User entity)."""

    def test_a_token_expired_revoked_or_of_a_deactivated_user_is_401_and_a_stale_one_is_touched(self, client, db, setup):
        project, (h,), _ = setup(n_annotators=1, n_prompts=3)
        token = db.scalar(select(ApiToken).where(ApiToken.token_hash == hash_api_token(h["Authorization"].split()[1])))
        task = next_task(client, project, h)
        assert task.status_code == 200
        db.rollback()  # end the read snapshot: on SQLite a stale one cannot be upgraded to a write
        db.execute(update(ApiToken).values(last_used_at=utcnow() - timedelta(minutes=2)))
        db.commit()
        assert submit(client, task.json(), h).status_code == 201
        db.expire_all()
        assert as_utc(token.last_used_at) > utcnow() - timedelta(minutes=1)  # written, as by CurrentUser
        for change in (
            {"expires_at": utcnow() - timedelta(seconds=1)},
            {"revoked_at": utcnow()},
        ):
            db.rollback()
            db.execute(update(ApiToken).where(ApiToken.id == token.id).values(**change))
            db.commit()
            refused = next_task(client, project, h)
            assert refused.status_code == 401, refused.text
            assert ("expired" in refused.json()["detail"]) == ("expires_at" in change)
            db.rollback()
            db.execute(update(ApiToken).where(ApiToken.id == token.id).values(expires_at=None, revoked_at=None))
            db.commit()
        assert next_task(client, project, h).status_code == 200
        db.rollback()
        db.execute(update(User).where(User.id == token.user_id).values(is_active=False))
        db.commit()
        assert next_task(client, project, h).status_code == 401
        assert submit(client, task.json(), h).status_code == 401

    def test_a_login_cookie_works_until_its_session_ends(self, client, db, make_user, make_project, add_prompts):
        annotator = make_user(Role.annotator)
        project = make_project(members=[annotator])
        add_prompts(project, 2)
        login(client, annotator)
        task = next_task(client, project, {})
        assert task.status_code == 200 and submit(client, task.json(), {}).status_code == 201
        db.rollback()
        db.execute(update(UserSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
        assert next_task(client, project, {}).status_code == 401
        assert "preflab_session" not in client.cookies  # the dead cookie is cleared, as by CurrentUser

    def test_the_role_comes_with_the_row(self, client, db, make_user, make_project, add_prompts, bearer):
        """An admin who is not a member may not label (403; an annotator would get 404): the row carries the role."""
        admin = make_user(Role.admin)
        project = make_project(members=[])
        add_prompts(project, 1)
        assert next_task(client, project, bearer(admin)).status_code == 403
        outsider = make_user(Role.annotator)
        assert next_task(client, project, bearer(outsider)).status_code == 404
