"""Cold start stays fast: the app and the CLI load without the heavy scientific modules, which the
agreement code imports when it first needs them (bench/run.py measures the start itself)."""

import subprocess
import sys

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
