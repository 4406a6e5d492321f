"""bench/stack_floor.py's stand-ins of next and submit: they must keep answering as the real routes do (the same
body shapes, the body validated, the caller checked when they authenticate), or its layers compare unlike work."""

import pytest
from fastapi.testclient import TestClient

from bench.stack_floor import _stand_ins


@pytest.fixture
def stand_in(app):
    def make(*, authenticate: bool) -> TestClient:
        app.include_router(_stand_ins(authenticate=authenticate))
        return TestClient(app)

    return make


def test_the_authenticating_stand_ins_check_the_caller_and_echo_the_label(stand_in, make_user, bearer):
    headers = bearer(make_user())
    with stand_in(authenticate=True) as client:
        assert client.get("/bench/projects/7/next").status_code == 401
        task = client.get("/bench/projects/7/next", headers=headers)
        assert task.status_code == 200, task.text
        body = task.json()
        assert body["project_id"] == 7 and len(body["responses"]) == 4
        assert all(480 <= len(r["text"]) <= 500 for r in body["responses"])  # the benchmark's sizes
        ranking = [[r["id"]] for r in reversed(body["responses"])]
        stored = client.post(f"/bench/tasks/{body['task_id']}/annotations", json={"ranking": ranking}, headers=headers)
        assert stored.status_code == 201 and stored.json()["ranking"] == ranking
        assert client.post("/bench/tasks/1/annotations", json={"ranking": "best"}, headers=headers).status_code == 422
        assert client.post("/bench/tasks/1/annotations", json={"ranking": ranking}).status_code == 401


def test_the_plumbing_stand_ins_read_the_credentials_but_check_nothing_and_still_validate_the_body(stand_in):
    unchecked = {"Authorization": "Bearer no-such-token"}  # `Caller` reads it without I/O; nothing looks it up
    with stand_in(authenticate=False) as client:
        assert client.get("/bench/projects/3/next").status_code == 401  # presenting nothing: refused before the route
        assert client.get("/bench/projects/3/next", headers=unchecked).json()["project_id"] == 3
        assert client.post("/bench/tasks/1/annotations", json={"ranking": [[0], [1]]}, headers=unchecked).status_code == 201
        assert client.post("/bench/tasks/1/annotations", content=b"{", headers=unchecked).status_code == 422
