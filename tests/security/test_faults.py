"""Faults: an import killed half-way leaves nothing visible, and its rows go at the next start; leases outlive a restart and expire; a database
outage is a 503 with a clear message and the app recovers by itself; no error shows a stack trace."""

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.config import ROOT, get_settings
from app.db import normalise_url
from app.main import create_app
from app.models import Assignment, AssignmentStatus, ImportBatch, Prompt, Response, Role, shown_in
from app.models.base import utcnow
from app.prompts import service as prompts_service

DOWN_MESSAGE = "The database is unavailable; please retry in a moment."


def own_app(**settings):
    """An app with its own engine and pool, like a freshly started process."""
    return create_app(get_settings().model_copy(update=settings))


def assert_no_internals(body: str) -> None:
    for leak in ("Traceback", 'File "', ".py", str(ROOT), "site-packages", "sqlalchemy", "psycopg", "sqlite3"):
        assert leak not in body, f"{leak!r} shown to the user: {body[:500]}"


# --- a process killed in the middle of an import ---------------------------------------------------


def _big_batch(path: Path, n: int) -> None:
    with path.open("wb") as out:
        for i in range(n):
            out.write(
                orjson.dumps(
                    {
                        "id": f"k{i}",
                        "prompt": f"prompt {i} " + "p" * 200,
                        "responses": [f"a{i} " + "a" * 300, f"b{i} " + "b" * 300, f"c{i}"],
                    }
                )
                + b"\n"
            )


def _writing_started(database, project_id: int) -> bool:
    """True once another process has committed a few chunks of its import (rows still invisible)."""
    with database.read_engine.connect() as connection:
        written = connection.scalar(
            select(func.count()).select_from(Prompt).where(Prompt.project_id == project_id, ~Prompt.visible)
        )
    return written >= 2 * prompts_service.CHUNK_SIZE


def test_import_killed_midway_leaves_no_partial_batch(database, db, make_project, tmp_path):
    project = make_project(name="killed import")
    n = 80_000 if database.engine.dialect.name == "sqlite" else 30_000  # big enough that the kill lands mid-way
    data = tmp_path / "big.jsonl"
    _big_batch(data, n)
    env = os.environ | {"DATABASE_URL": get_settings().DATABASE_URL, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "app.cli", "import", str(project.id), str(data)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not _writing_started(database, project.id):
            assert process.poll() is None, f"the import ended before it could be killed: {process.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "the import never started writing"
            time.sleep(0.05)
        assert process.poll() is None, "the import finished before the kill; make the file bigger"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL

    def counts(where=Prompt.project_id == project.id):
        db.rollback()
        return (
            db.scalar(select(func.count()).select_from(Prompt).where(where)),
            db.scalar(select(func.count()).select_from(ImportBatch).where(ImportBatch.project_id == project.id)),
            db.scalar(select(func.count()).select_from(Response)),
        )

    # Chunks committed before the kill stay as rows, invisible (never served, counted, searched or exported)...
    assert counts(shown_in(project.id))[0] == 0, "a killed import left visible prompts"
    assert list(db.scalars(select(ImportBatch.status).where(ImportBatch.project_id == project.id))) in ([], ["loading"])
    # ...and are removed at the next start: the process that wrote them is gone.
    own_app_instance = own_app()
    with TestClient(own_app_instance):
        pass
    own_app_instance.state.database.dispose()
    assert counts() == (0, 0, 0), "the next start left the killed import's rows behind"
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"imported {n}, skipped 0" in rerun.stdout
    assert counts() == (n, 1, 3 * n)


# --- leases survive a restart, and expire ----------------------------------------------------------


def test_expired_leases_return_to_the_pool_after_a_restart(database, db, make_user, make_project, bearer):
    first_annotator, second_annotator = make_user(Role.annotator), make_user(Role.annotator)
    project = make_project(members=[first_annotator, second_annotator], overlap=1)
    assert prompts_service.import_batch(
        session=db,
        project=project,
        filename="one.jsonl",
        uploaded_by=None,
        stream=io.BytesIO(b'{"id": "only", "prompt": "p", "responses": ["a", "b"]}\n'),
    ).ok
    db.commit()
    first_headers, second_headers = bearer(first_annotator), bearer(second_annotator)

    before = own_app()
    with TestClient(before) as client:
        task = client.get(f"/api/projects/{project.id}/next", headers=first_headers).json()
        assert client.get(f"/api/projects/{project.id}/next", headers=second_headers).status_code == 204
    before.state.database.dispose()  # the process is gone; its lease is only in the database

    db.rollback()
    assignment = db.get(Assignment, task["task_id"])
    assignment.lease_expires_at = utcnow() - timedelta(minutes=1)
    db.commit()

    after = own_app()  # a new process: nothing in memory from the old one
    try:
        with TestClient(after) as client:
            response = client.get(f"/api/projects/{project.id}/next", headers=second_headers)
            assert response.status_code == 200, response.text
            assert response.json()["prompt_id"] == task["prompt_id"]
    finally:
        after.state.database.dispose()
    db.rollback()
    db.expire_all()
    assert db.get(Assignment, task["task_id"]).status == AssignmentStatus.expired
    assert db.get(Prompt, task["prompt_id"]).active_count == 1


# --- the database unreachable ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_database_is_503_with_a_clear_message():
    """DATABASE_URL points at a port where nothing listens (works whatever the test database is)."""
    app = own_app(DATABASE_URL=f"postgresql://preflab@127.0.0.1:{_free_port()}/preflab")
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            api = client.get("/api/projects", headers={"Authorization": "Bearer pfl_x"})
            assert api.status_code == 503
            assert api.json() == {"detail": DOWN_MESSAGE}
            assert api.headers["Retry-After"]
            page = client.get("/", headers={"Authorization": "Bearer pfl_x", "accept": "text/html"})
            assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
            assert DOWN_MESSAGE in page.text
            health = client.get("/healthz")
            assert health.status_code == 503 and health.json()["detail"] == DOWN_MESSAGE
            for response in (api, page, health):
                assert_no_internals(response.text)
            assert client.get("/login").status_code == 200  # pages that need no database still work
    finally:
        app.state.database.dispose()


def test_sqlite_file_out_of_reach_is_503_and_recovers(tmp_path):
    """SQLite: the database's directory disappears (an unmounted volume, say), then comes back."""
    from app import migrate
    from app.db import build_engine

    folder = tmp_path / "volume"
    url = f"sqlite:///{folder}/preflab.db"
    engine = build_engine(get_settings().model_copy(update={"DATABASE_URL": url}))
    migrate.upgrade(engine)
    engine.dispose()
    app = own_app(DATABASE_URL=url)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/healthz").status_code == 200
            app.state.database.dispose()
            folder.rename(tmp_path / "elsewhere")
            down = client.get("/api/me", headers={"Authorization": "Bearer pfl_x"})
            assert down.status_code == 503 and down.json() == {"detail": DOWN_MESSAGE}
            assert client.get("/healthz").status_code == 503
            (tmp_path / "elsewhere").rename(folder)
            assert client.get("/healthz").status_code == 200
            assert client.get("/api/me", headers={"Authorization": "Bearer pfl_x"}).status_code == 401  # answers again
    finally:
        app.state.database.dispose()


class TcpProxy:
    """A TCP forwarder on 127.0.0.1 that can be cut (listener and open connections closed) and restored."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = _free_port()
        self.sockets: list[socket.socket] = []
        self.server: socket.socket | None = None

    def start(self) -> None:
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in the thread (close alone does not)
        self.server.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        self.sockets.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


@pytest.mark.skipif(not get_settings().DATABASE_URL.startswith("postgres"), reason="needs the PostgreSQL test database")
def test_outage_and_recovery_through_a_proxy(make_user, bearer):
    url = make_url(normalise_url(get_settings().DATABASE_URL))
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    headers = bearer(make_user(Role.admin))
    app = own_app(DATABASE_URL=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            assert client.get("/api/projects", headers=headers).status_code == 200
            assert client.get("/healthz").status_code == 200

            proxy.stop()  # the database goes away, with the pool's open connections
            for _ in range(3):
                down = client.get("/api/projects", headers=headers)
                assert down.status_code == 503 and down.json()["detail"] == DOWN_MESSAGE
                assert_no_internals(down.text)
            page = client.get("/", headers=headers | {"accept": "text/html"})
            assert page.status_code == 503 and DOWN_MESSAGE in page.text
            assert client.get("/healthz").status_code == 503

            proxy.start()  # back: the next requests work, without restarting the app
            assert client.get("/healthz").status_code == 200
            back = client.get("/api/projects", headers=headers)
            assert back.status_code == 200, back.text
            assert client.post("/api/projects", headers=headers, json={"name": "after", "kind": "ranking"}).status_code == 201
    finally:
        app.state.database.dispose()
        proxy.stop()


# --- no stack traces -------------------------------------------------------------------------------


def test_an_unexpected_error_shows_no_stack_trace(app, caplog):
    @app.get("/api/boom")
    def api_boom():
        raise RuntimeError(f"secret detail in {__file__}")

    @app.get("/boom")
    def page_boom():
        {}["missing key in " + __file__]

    with TestClient(app, raise_server_exceptions=False) as client:
        api = client.get("/api/boom")
        page = client.get("/boom", headers={"accept": "text/html"})
    assert api.status_code == 500 and api.json() == {"detail": "Internal error; it has been logged."}
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "Internal error; it has been logged." in page.text
    for response in (api, page):
        assert_no_internals(response.text)
        assert "secret detail" not in response.text and "missing key" not in response.text
    assert "secret detail" in caplog.text and "Traceback" in caplog.text  # ...but the operator's log has it all
