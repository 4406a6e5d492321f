"""Uploads over MAX_UPLOAD_MB: 413 naming the limit (API and form), refused while streaming."""

import io
from concurrent.futures import ThreadPoolExecutor

import anyio
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.config import get_settings
from app.main import SECURITY_HEADERS, create_app
from app.models import Prompt, Role
from tests.conftest import login

LIMIT_MB = 0.05  # 52,428 bytes
LIMIT = int(LIMIT_MB * 1024 * 1024)


@pytest.fixture
def small_app(database):
    app = create_app(get_settings().model_copy(update={"MAX_UPLOAD_MB": LIMIT_MB}))
    app.state.database.dispose()
    app.state.database = database
    return app


def batch(size: int) -> bytes:
    """A JSON Lines batch of about `size` bytes."""
    lines, total, i = [], 0, 0
    while total < size:
        line = orjson.dumps({"id": f"p{i}", "prompt": f"prompt {i}", "responses": ["x" * 200, "y" * 200]}) + b"\n"
        lines.append(line)
        total += len(line)
        i += 1
    return b"".join(lines)


def prompt_count(db) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(Prompt))


def test_api_upload_over_the_limit_is_413_naming_it(small_app, db, make_user, make_project, bearer):
    project = make_project()
    headers = bearer(make_user(Role.researcher))
    with TestClient(small_app) as client:
        small = client.post(
            f"/api/projects/{project.id}/imports", headers=headers, files={"file": ("ok.jsonl", io.BytesIO(batch(LIMIT // 2)))}
        )
        assert small.status_code == 200, small.text
        imported = prompt_count(db)
        big = client.post(
            f"/api/projects/{project.id}/imports", headers=headers, files={"file": ("big.jsonl", io.BytesIO(batch(LIMIT + 1000)))}
        )
    assert big.status_code == 413
    assert big.json()["detail"] == "The upload is larger than the limit of 0.05 MB (MAX_UPLOAD_MB)"
    assert prompt_count(db) == imported


def test_form_upload_over_the_limit_is_an_error_page(small_app, make_user, make_project, caplog):
    project = make_project()
    with TestClient(small_app) as client:
        login(client, make_user(Role.admin))
        response = client.post(
            f"/projects/{project.id}/imports",
            data={"csrf_token": client.headers["X-CSRF-Token"]},
            files={"file": ("big.jsonl", io.BytesIO(batch(LIMIT * 2)))},
            headers={"accept": "text/html"},
        )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/html")
    assert "limit of 0.05 MB" in response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "unhandled error" not in caplog.text  # an expected refusal, not a bug in the log


def _call_asgi(app, headers: list[tuple[bytes, bytes]], chunks: int, chunk_size: int = 64 * 1024):
    """Drive the ASGI app directly with a body of `chunks` chunks; returns (status, body, chunks read)."""
    read = 0
    sent: list[dict] = []

    async def receive():
        nonlocal read
        if read >= chunks:
            return {"type": "http.disconnect"}
        read += 1
        return {"type": "http.request", "body": b"x" * chunk_size, "more_body": read < chunks}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/projects/1/imports",
        "raw_path": b"/api/projects/1/imports",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    with ThreadPoolExecutor(1) as pool:  # its own thread: the browser tests may leave an event loop in this one
        pool.submit(anyio.run, app, scope, receive, send).result()
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, read


def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(small_app, make_user, make_project, bearer):
    project = make_project()
    token = bearer(make_user(Role.researcher))["Authorization"].encode()
    headers = [(b"authorization", token), (b"content-type", b"multipart/form-data; boundary=zzz")]
    status, body, read = _call_asgi(small_app, headers, chunks=1000)  # 64 MB offered, no Content-Length
    assert status == 413 and b"0.05 MB" in body
    assert read <= LIMIT // (64 * 1024) + 1, f"read {read} chunks of 64 KB past a {LIMIT}-byte limit"
    assert project.id


def test_a_declared_length_over_the_limit_is_refused_before_reading(small_app):
    headers = [(b"content-length", str(10 * 1024**3).encode()), (b"content-type", b"multipart/form-data; boundary=z")]
    status, body, read = _call_asgi(small_app, headers, chunks=1000)
    assert status == 413 and read == 0  # not even authenticated: nothing is read at all


def test_json_bodies_are_limited_too(small_app, make_user, bearer):
    with TestClient(small_app) as client:
        response = client.post(
            "/api/projects",
            headers=bearer(make_user(Role.admin)),
            json={"name": "x", "kind": "ranking", "guidelines": "g" * (LIMIT + 1)},
        )
    assert response.status_code == 413


@pytest.mark.parametrize("project_id", [2**31, -(2**31) - 1, 10**15, -(10**15)])
@pytest.mark.parametrize("path", ["/api/projects/{}", "/api/projects/{}/export", "/api/projects/{}/next"])
def test_ids_outside_the_integer_range_are_404_not_a_driver_overflow(client, make_user, bearer, project_id, path):
    """INTEGER columns: an id past the range, of either sign, names no row (PostgreSQL would raise an overflow)."""
    response = client.get(path.format(project_id), headers=bearer(make_user(Role.admin)))
    assert response.status_code == 404, response.text
    assert str(project_id) in response.json()["detail"]
