"""Memory of a real `preflab serve` (bench.common.serve, 127.0.0.1 only) under oversized input, read from
/proc: an anonymous 100 MB POST and a 200,000-level-deep upload must leave its resident memory almost unchanged.
(Before the limits, the POST cost about 1 GB and the deep upload killed the server.)"""

import http.client
import time
from pathlib import Path

import pytest

from bench.common import fresh_database, rss_mib, serve, sqlite_url

GROWTH_MIB = 40  # allowed growth of the server's peak memory over the whole test
BIG = 100 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A served SQLite database with a project (id 1) and a researcher's API token."""
    from app.config import Settings
    from app.db import Database
    from app.models import Role
    from app.projects import service as projects
    from app.projects.schemas import ProjectCreate
    from app.users import service as users
    from app.users.schemas import UserCreate

    url = sqlite_url(Path(tmp_path_factory.mktemp("memory")))
    fresh_database(url)
    database = Database(Settings(DATABASE_URL=url))
    try:
        with database.sessionmaker() as session, session.begin():
            user = users.create_user(
                session=session, data=UserCreate(email="r@example.org", name="R", role=Role.researcher, password="pw-123456789")
            )
            project = projects.create_project(session=session, data=ProjectCreate(name="p"), created_by=user)
            _, token = users.create_api_token(session=session, user=user)
            project_id = project.id
    finally:
        database.dispose()
    with serve(url) as running:
        yield running, project_id, token


def post(port: int, path: str, body, headers: dict[str, str]) -> int | None:
    """The status of a POST, or None when the server closed the connection before answering."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", path, body=body, headers=headers)
        return connection.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        return None
    finally:
        connection.close()


def chunks(total: int, size: int = 1024 * 1024):
    for _ in range(total // size):
        yield b"x" * size


# The server still answers afterwards. The bound is loose on purpose (a stalled or dead server takes tens of seconds or
# never answers): this is a liveness check, not a speed target, so a loaded CI machine cannot fail it.
RESPONSIVE_S = 10


def healthz_seconds(port: int) -> float:
    start = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/healthz")
    assert connection.getresponse().status == 200
    connection.close()
    return time.perf_counter() - start


def test_oversized_and_deep_input_leave_the_server_memory_alone(server):
    running, project_id, token = server
    port, pid = running.port, running.pid
    post(port, "/api/projects", b"{}", {"content-type": "application/json"})  # warm up the request path
    before = rss_mib(pid, peak=True)

    # Anonymous, 100 MB: a JSON body (declared length and chunked) and an upload.
    json_headers = {"content-type": "application/json"}
    assert post(port, "/api/projects", b"x" * BIG, json_headers | {"content-length": str(BIG)}) in (413, None)
    assert post(port, "/api/projects", chunks(BIG), json_headers | {"transfer-encoding": "chunked"}) in (413, None)
    upload = f"/api/projects/{project_id}/imports"
    assert post(
        port, upload, chunks(BIG), {"content-type": "multipart/form-data; boundary=b", "transfer-encoding": "chunked"}
    ) in (
        401,
        None,
    )
    assert healthz_seconds(port) < RESPONSIVE_S

    # An allowed upload: a JSON array whose metadata nests 200,000 levels (1.2 MB).
    deep = b'[{"prompt": "p", "responses": ["x", "y"], "metadata": ' + b'{"a": ' * 200_000 + b"1" + b"}" * 200_000 + b"}]"
    body = b'--b\r\nContent-Disposition: form-data; name="file"; filename="deep.json"\r\n\r\n' + deep + b"\r\n--b--\r\n"
    headers = {"authorization": f"Bearer {token}", "content-type": "multipart/form-data; boundary=b"}
    assert post(port, upload, body, headers) == 422
    assert healthz_seconds(port) < RESPONSIVE_S

    grown = rss_mib(pid, peak=True) - before
    assert grown < GROWTH_MIB, f"the server's peak memory grew by {grown:.0f} MiB"
