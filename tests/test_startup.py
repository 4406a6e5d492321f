"""Cold start stays fast: the app and the CLI load without the heavy scientific modules, which the
agreement code imports when it first needs them (bench/run.py measures the start itself)."""

import gc
import os
import subprocess
import sys

import pytest

HEAVY = ("numpy", "scipy", "choix", "pandas")


def test_app_and_cli_start_without_numpy_scipy_choix():
    code = f"import sys, app.main, app.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_a_jsonl_export_loads_neither_pyarrow_nor_scipy():
    """The first export of a process pays no import it does not need (issue #16 item 5): pyarrow is for Parquet
    only, choix/scipy for the consensus methods that use them."""
    code = (
        "import sys, pathlib, tempfile\n"
        "from app.export.formats import columns\n"
        "from app.export.options import ExportOptions\n"
        "from app.export.writers import open_writer\n"
        "path = pathlib.Path(tempfile.mkdtemp()) / 'x.jsonl'\n"
        "w = open_writer('jsonl', path, columns=columns(ExportOptions(), split_column=False))\n"
        "w.write_many([{'prompt': 'p'}]); w.close()\n"
        "print(' '.join(m for m in ('pyarrow', 'scipy', 'choix') if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


def test_the_warm_up_compiles_the_export_and_writes_nothing(db, make_project):
    """app.main's warm-up runs an export of a project that does not exist: the export's statements land in the
    engine's compiled cache, so the first real export does not compile them; nothing is written. A Database of its
    own, as a new process has: the suite's shared engine already holds whatever earlier tests compiled."""
    from sqlalchemy import func, select

    from app.config import get_settings
    from app.db import Database
    from app.main import _warm_export
    from app.models import Project

    make_project()
    db.commit()
    projects = db.scalar(select(func.count()).select_from(Project))
    fresh = Database(get_settings())
    try:
        assert len(fresh.read_engine._compiled_cache) == 0  # type: ignore[attr-defined]
        _warm_export(fresh)
        assert len(fresh.read_engine._compiled_cache) > 0  # type: ignore[attr-defined]
    finally:
        fresh.dispose()
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Project)) == projects


def test_after_the_warm_up_a_real_export_compiles_nothing_new(db, seed):
    """The export of nothing reads no page; the warm-up also runs a page's reads on an empty page, so the first export
    of a project with labels finds every statement compiled."""
    from app.config import get_settings
    from app.db import Database
    from app.export import service
    from app.export.options import ExportOptions
    from app.main import _warm_export

    project = seed.project([{"id": f"p{i}", "prompt": "q", "responses": ["a", "b", "c"]} for i in range(3)])
    a, b = seed.annotators(2)
    for i in range(3):
        seed.label(project, f"p{i}", a, [[0], [1], [2]])
        seed.label(project, f"p{i}", b, [[2], [0, 1]])
    db.commit()
    fresh = Database(get_settings())
    try:
        _warm_export(fresh)
        compiled = len(fresh.read_engine._compiled_cache)  # type: ignore[attr-defined]
        with fresh.read_sessionmaker() as session:
            exported = b"".join(service.stream_file(session=session, project=project, options=ExportOptions()))
        assert exported.count(b"\n") >= 6  # the export did read pages of labels
        assert len(fresh.read_engine._compiled_cache) == compiled  # type: ignore[attr-defined]
    finally:
        fresh.dispose()


def test_the_warm_up_loads_nothing_the_memory_budget_leaves_out(tmp_path):
    """numpy is warmed on purpose (+11 MiB); pyarrow, scipy and choix would put idle RSS past 120 MiB."""
    code = (
        "import sys\n"
        "from app.config import Settings\n"
        "from app.db import Database\n"
        "from app import migrate\n"
        "from app.main import _warm_up\n"
        f"database = Database(Settings(DATABASE_URL='sqlite:///{tmp_path}/w.db'))\n"
        "migrate.upgrade(database.engine)\n"
        "_warm_up(database)\n"
        "print(' '.join(m for m in ('numpy', 'pyarrow', 'scipy', 'choix') if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == ["numpy"]


def test_the_warm_up_ends_with_a_full_garbage_collection(database):
    """Left to chance, the next full collection after the start fell in the first export (BENCHMARKS.md, "Warm-up")."""
    from app.main import _warm_up

    generations: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "stop":
            generations.append(info["generation"])

    gc.callbacks.append(record)
    try:
        _warm_up(database)
    finally:
        gc.callbacks.remove(record)
    assert generations[-1:] == [2]


# `preflab serve` with uvicorn.run standing in: it builds the app as uvicorn would, then prints what the serving
# process has loaded.
SERVE = (
    "import sys, uvicorn\n"
    "from app import cli\n"
    "def run(target, **options):\n"
    "    from app.main import create_app\n"
    "    create_app()\n"
    "    print('served', ' '.join(m for m in ('alembic', 'mako', 'numpy') if m in sys.modules))\n"
    "uvicorn.run = run\n"
    "cli.cli(['serve'])\n"
)


def serve(database_url: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | {"DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-c", SERVE], capture_output=True, text=True, env=environment, timeout=120)


@pytest.mark.parametrize("which", ["empty SQLite", "the suite's database"])
def test_serve_migrates_in_a_child_process_before_the_app_starts(tmp_path, which):
    """Alembic and what the migrations import (numpy, by a data migration) stay out of the serving process's memory
    (BENCHMARKS.md, "Warm-up"), and the app starts only once the migrations are done: without SECRET_KEY it reads
    the session secret from a table the migrations create."""
    url = f"sqlite:///{tmp_path}/serve.db" if which == "empty SQLite" else os.environ["DATABASE_URL"]
    result = serve(url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == ["served"]


def test_serve_stops_when_the_migrations_fail(tmp_path):
    (tmp_path / "file").write_text("")
    result = serve(f"sqlite:///{tmp_path}/file/serve.db")  # the database's directory cannot be created
    assert result.returncode == 1
    assert "served" not in result.stdout
    assert "migrations failed" in result.stderr


def test_after_the_warm_up_authentication_compiles_nothing_new(db, make_user):
    """Every first request of a kind authenticates; the warm-up compiled the token and session reads (no such rows)."""
    from app.config import get_settings
    from app.db import Database
    from app.main import _warm_authentication
    from app.models.base import utcnow
    from app.users import service as users

    user = make_user()
    record, token = users.create_api_token(session=db, user=user)
    record.last_used_at = utcnow()  # used a moment ago: no touch (a write once a minute, not warmed)
    db.commit()
    fresh = Database(get_settings())
    try:
        _warm_authentication(fresh)
        compiled = len(fresh.engine._compiled_cache)  # type: ignore[attr-defined]
        with fresh.sessionmaker() as session, session.begin():
            assert users.user_for_token(session=session, token=token).id == user.id
            assert users.user_for_session(session=session, session_id="no such session") is None
        assert len(fresh.engine._compiled_cache) == compiled  # type: ignore[attr-defined]
    finally:
        fresh.dispose()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_app_warms_up_after_start_when_the_setting_says_so(monkeypatch, enabled):
    import threading

    from fastapi.testclient import TestClient

    import app.main as main
    from app.config import get_settings

    ran = threading.Event()
    monkeypatch.setattr(main, "WARM_UP_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(main, "_warm_up", lambda database: ran.set())
    app = main.create_app(get_settings().model_copy(update={"WARM_UP": enabled}))
    with TestClient(app):
        assert ran.wait(5 if enabled else 0.5) is enabled
    app.state.database.dispose()
