"""scripts/start.sh: pip install runs only when pyproject.toml changed since the last successful install, and
HOST/PORT reach `preflab serve`. The script runs for real in a copy of the repository whose .venv holds
stub programs that log how they were called, so nothing is installed or served."""

import os
import shutil
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from app import cli

REPO = Path(__file__).resolve().parents[2]
STUB = '#!/bin/sh\necho "$(basename "$0") $*" >>"$(dirname "$0")/../calls.log"\n'


def make_checkout(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "start.sh", tmp_path / "scripts" / "start.sh")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "pip", "preflab"):
        (bin_dir / name).write_text(STUB)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def start(checkout: Path, **env: str) -> list[str]:
    log = checkout / ".venv" / "calls.log"
    log.unlink(missing_ok=True)
    environment = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT")} | env
    subprocess.run(["bash", str(checkout / "scripts" / "start.sh")], check=True, env=environment, timeout=30)
    return log.read_text().splitlines()


def test_pip_install_runs_only_when_pyproject_changed(tmp_path):
    checkout = make_checkout(tmp_path)
    first = start(checkout)
    assert first == ["pip install -q --disable-pip-version-check -e .", "preflab demo", "preflab serve"]
    assert start(checkout) == ["preflab demo", "preflab serve"]  # nothing changed: no install

    with (checkout / "pyproject.toml").open("a") as pyproject:
        pyproject.write("# a changed dependency\n")
    assert start(checkout)[0].startswith("pip install")
    assert start(checkout) == ["preflab demo", "preflab serve"]


def test_a_failed_install_is_retried_on_the_next_start(tmp_path):
    checkout = make_checkout(tmp_path)
    pip = checkout / ".venv" / "bin" / "pip"
    pip.write_text(STUB + "exit 1\n")
    result = subprocess.run(["bash", str(checkout / "scripts" / "start.sh")], capture_output=True, timeout=30)
    assert result.returncode != 0
    pip.write_text(STUB)
    assert start(checkout)[0].startswith("pip install")


def test_serve_listens_where_host_and_port_say(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setattr(cli, "_migrate_in_child", lambda: type("Migrated", (), {"join": lambda self: None, "exitcode": 0})())
    result = CliRunner().invoke(cli.cli, ["serve"], env={"HOST": "0.0.0.0", "PORT": "9123"})
    assert result.exit_code == 0, result.output
    assert (calls[0]["host"], calls[0]["port"]) == ("0.0.0.0", 9123)
    result = CliRunner().invoke(cli.cli, ["serve", "--port", "9124"], env={"PORT": "9123"})  # the option wins
    assert calls[1]["port"] == 9124
    result = CliRunner().invoke(cli.cli, ["serve"], env={"PORT": "eighty"})
    assert result.exit_code != 0 and "PORT" in result.output
