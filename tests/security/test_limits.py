"""Request bodies: MAX_REQUEST_KB for every route, MAX_UPLOAD_MB for the upload routes once the caller is
allowed to upload; 413 naming the limit (API and form), refused while streaming or before reading."""

import io
from concurrent.futures import ThreadPoolExecutor

import anyio
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.config import get_settings
from app.main import create_app
from app.models import Project, Prompt, Role
from app.web.middleware import SECURITY_HEADERS
from tests.conftest import login

LIMIT_MB = 0.05  # 52,428 bytes
LIMIT = int(LIMIT_MB * 1024 * 1024)
REQUEST_KB = 8  # every other body


@pytest.fixture
def small_app(database):
    app = create_app(get_settings().model_copy(update={"MAX_UPLOAD_MB": LIMIT_MB, "MAX_REQUEST_KB": REQUEST_KB}))
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


def _call_asgi(
    app, headers: list[tuple[bytes, bytes]], chunks: int, chunk_size: int = 64 * 1024, path: str = "/api/projects/1/imports"
):
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
        "path": path,
        "raw_path": path.encode(),
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
    path = f"/api/projects/{project.id}/imports"
    status, body, read = _call_asgi(small_app, headers, chunks=1000, path=path)  # 64 MB offered, no Content-Length
    assert status == 413 and b"0.05 MB" in body
    assert read <= LIMIT // (64 * 1024) + 1, f"read {read} chunks of 64 KB past a {LIMIT}-byte limit"


def test_a_declared_length_over_the_limit_is_refused_before_reading(small_app):
    headers = [(b"content-length", str(10 * 1024**3).encode()), (b"content-type", b"multipart/form-data; boundary=z")]
    status, _body, read = _call_asgi(small_app, headers, chunks=1000)
    assert status == 413 and read == 0  # not even authenticated: nothing is read at all


def test_other_bodies_are_limited_to_max_request_kb(small_app, db, make_user, bearer):
    """An upload may be large; a project (or any other JSON or form body) may not."""
    with TestClient(small_app) as client:
        response = client.post(
            "/api/projects",
            headers=bearer(make_user(Role.admin)),
            json={"name": "too big", "kind": "ranking", "guidelines": "g" * (REQUEST_KB * 1024)},
        )
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == "The request body is larger than the limit of 8 KB (MAX_REQUEST_KB)"
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Project).where(Project.name == "too big")) == 0


def test_a_declared_length_over_max_request_kb_is_refused_before_reading(small_app, make_user, bearer):
    token = bearer(make_user(Role.admin))["Authorization"].encode()
    headers = [(b"authorization", token), (b"content-type", b"application/json"), (b"content-length", b"20000")]
    status, body, read = _call_asgi(small_app, headers, chunks=1, chunk_size=20000, path="/api/projects")
    assert status == 413 and b"MAX_REQUEST_KB" in body
    assert read == 0


@pytest.mark.parametrize("who", ["anonymous", "annotator", "researcher of an unknown project"])
def test_an_upload_is_not_read_before_the_caller_may_upload(small_app, make_user, make_project, bearer, who):
    """Auth and permission first: an anonymous or unpermitted upload is answered without reading its body."""
    annotator = make_user(Role.annotator)
    project = make_project(members=[annotator])
    headers = [(b"content-type", b"multipart/form-data; boundary=zzz")]
    path, expected = f"/api/projects/{project.id}/imports", 401
    if who == "annotator":
        headers.append((b"authorization", bearer(annotator)["Authorization"].encode()))
        expected = 403
    elif who.startswith("researcher"):
        headers.append((b"authorization", bearer(make_user(Role.researcher))["Authorization"].encode()))
        path, expected = f"/api/projects/{project.id + 1000}/imports", 404
    status, body, read = _call_asgi(small_app, headers, chunks=1000, chunk_size=1024, path=path)
    assert status == expected, body
    assert read == 0


def test_the_upload_form_wants_its_csrf_token_in_the_header(small_app, db, make_user, make_project):
    """The body of an upload is read after the checks, so the token can't come in it (the page sends a header)."""
    project = make_project()
    with TestClient(small_app) as client:
        login(client, make_user(Role.admin))
        token = client.headers.pop("X-CSRF-Token")
        files = {"file": ("ok.jsonl", io.BytesIO(batch(1000)))}
        in_the_form = client.post(f"/projects/{project.id}/imports", data={"csrf_token": token}, files=files)
        assert in_the_form.status_code == 403, in_the_form.text
        assert prompt_count(db) == 0
        files = {"file": ("ok.jsonl", io.BytesIO(batch(1000)))}
        in_the_header = client.post(f"/projects/{project.id}/imports", headers={"X-CSRF-Token": token}, files=files)
    assert in_the_header.status_code == 200, in_the_header.text
    assert prompt_count(db) > 0


@pytest.mark.parametrize("project_id", [2**31, -(2**31) - 1, 10**15, -(10**15)])
@pytest.mark.parametrize("path", ["/api/projects/{}", "/api/projects/{}/export", "/api/projects/{}/next"])
def test_ids_outside_the_integer_range_are_404_not_a_driver_overflow(client, make_user, bearer, project_id, path):
    """INTEGER columns: an id past the range, of either sign, names no row (PostgreSQL would raise an overflow)."""
    response = client.get(path.format(project_id), headers=bearer(make_user(Role.admin)))
    assert response.status_code == 404, response.text
    assert str(project_id) in response.json()["detail"]


def test_reward_model_upload_over_the_limit_is_413_and_stores_nothing(small_app, db, make_user, make_project, bearer):
    from app.models import RewardModel

    project = make_project()
    with TestClient(small_app) as client:
        big = client.post(
            f"/api/projects/{project.id}/reward-models?name=rm-big",
            headers=bearer(make_user(Role.researcher)),
            files={"file": ("big.jsonl", io.BytesIO(b'{"prompt_id": "p", "response": 0, "score": 1}\n' * (LIMIT // 40)))},
        )
    assert big.status_code == 413
    assert "limit of 0.05 MB" in big.json()["detail"]
    db.rollback()
    assert db.scalar(select(func.count()).select_from(RewardModel)) == 0
