"""Browser tests: Debian's Chromium driven by Playwright against a real server (README, "Run the tests").
Playwright is pointed at that Chromium (CHROMIUM), since it cannot download browsers of its own here.

The server is a subprocess, `preflab serve` started by bench.common.serve on a free loopback port, over a database seeded
by `python -m app.cli demo`: a temporary SQLite file, or PostgreSQL from TEST_DATABASE_URL (emptied first with
`demo --reset`, and emptied again afterwards so the unit tests sharing that database start clean).
Screenshots go to artifacts/screenshots/ (git-ignored).
"""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.common import serve

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DEMO_PROJECTS = {"Demo: assistant responses", "Demo: chosen vs rejected"}  # made by app/demo.py


@dataclass(frozen=True)
class Server:
    url: str
    projects: dict[str, int]  # demo project name -> id
    database_url: str  # the server's database, for tests to check what it stored


def _cli(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"app.cli {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _wipe(url: str) -> None:
    from app import demo
    from app.config import Settings
    from app.db import Database

    database = Database(Settings(DATABASE_URL=url, ENVIRONMENT="test"))
    try:
        with database.sessionmaker() as session, session.begin():
            demo.wipe(session)
    finally:
        database.dispose()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Server:
    shared_url = os.environ.get("TEST_DATABASE_URL")
    tmp = tmp_path_factory.mktemp("browser")
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "SECRET_KEY": "browser-test-secret-at-least-32-characters",
        "DATABASE_URL": shared_url or f"sqlite:///{tmp}/preflab.db",
    }
    if shared_url:
        if "--reset" not in _cli(env, "demo", "--help"):
            pytest.skip("TEST_DATABASE_URL is set but `app.cli demo --reset` is not available to empty it")
        output = _cli(env, "demo", "--reset", "--known-passwords")
    else:
        output = _cli(env, "demo", "--known-passwords")
    projects = {name: int(pid) for name, pid in re.findall(r"project '(.+?)' \(id (\d+)\)", output)}
    assert projects.keys() >= DEMO_PROJECTS, output

    try:
        with serve(
            env["DATABASE_URL"], env={"ENVIRONMENT": "test", "SECRET_KEY": "browser-test-secret-at-least-32-characters"}
        ) as running:
            yield Server(url=f"http://127.0.0.1:{running.port}", projects=projects, database_url=env["DATABASE_URL"])
    finally:
        if shared_url:
            _wipe(shared_url)


@pytest.fixture(scope="session")
def base_url(server: Server) -> str:
    return server.url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def server_db(server: Server):
    """The server's database, read directly: tests check what was stored, not only what the page shows."""
    from app.config import Settings
    from app.db import Database

    database = Database(Settings(DATABASE_URL=server.database_url, ENVIRONMENT="test"))
    yield database
    database.dispose()


@pytest.fixture
def db(server_db):
    """Sessions on the server's database (this shadows the unit tests' `db`): `with db() as session: ...`
    in a fresh session sees everything committed so far."""
    return server_db.read_sessionmaker
