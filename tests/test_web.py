"""The HTTP plumbing of app/web: the 405's Allow header, and routes reading the settings of their own app."""

import io
from datetime import datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from app.config import get_settings
from app.main import create_app
from app.models import Role


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        # Two routes, in two different included routers' order: the Allow header names both.
        ("PATCH", "/api/projects/1/members/2", "DELETE, PUT"),
        ("DELETE", "/api/projects", "GET, POST"),
        ("PUT", "/login", "GET, POST"),
        ("POST", "/api/tasks/7", "GET"),
    ],
)
def test_a_wrong_method_is_a_405_naming_every_allowed_method(client, method, path, allowed):
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == {"detail": "Method Not Allowed"}


def test_a_405_page_for_a_browser(client):
    response = client.put("/login", headers={"Accept": "text/html"})
    assert response.status_code == 405 and response.headers["allow"] == "GET, POST"
    assert "Method Not Allowed" in response.text and response.template.name == "errors/page.html"


@pytest.fixture
def app_leasing_5_minutes(database):
    app = create_app(get_settings().model_copy(update={"LEASE_MINUTES": 5}))
    app.state.database.dispose()
    app.state.database = database
    return app


def test_routes_use_the_settings_their_app_was_built_with(app_leasing_5_minutes, make_user, make_project, bearer):
    """LEASE_MINUTES of the app at hand, not of the process's environment (30 by default)."""
    annotator = make_user(Role.annotator)
    project = make_project(members=[annotator])
    record = orjson.dumps({"id": "p", "prompt": "p", "responses": ["x", "y"]})
    with TestClient(app_leasing_5_minutes) as client:
        uploaded = client.post(
            f"/api/projects/{project.id}/imports",
            headers=bearer(make_user(Role.researcher)),
            files={"file": ("p.jsonl", io.BytesIO(record))},
        )
        assert uploaded.status_code == 200, uploaded.text
        started = datetime.now().astimezone()
        task = client.get(f"/api/projects/{project.id}/next", headers=bearer(annotator)).json()
    lease = datetime.fromisoformat(task["lease_expires_at"]) - started
    assert timedelta(minutes=4) < lease <= timedelta(minutes=5, seconds=5)
