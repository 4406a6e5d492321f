"""Cold start stays fast: the app and the CLI load without the heavy scientific modules, which the
agreement code imports when it first needs them (bench/run.py measures the start itself)."""

import subprocess
import sys

HEAVY = ("numpy", "scipy", "choix", "pandas")


def test_app_and_cli_start_without_numpy_scipy_choix():
    code = f"import sys, app.main, app.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
