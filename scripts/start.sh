#!/usr/bin/env bash
# Install Preflab into .venv, create the demo accounts and projects, and serve it.
# SQLite by default (data/preflab.db); set DATABASE_URL for PostgreSQL. HOST and PORT (or --host/--port)
# choose where it listens: 127.0.0.1:8000 by default (README, "Start it").
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv

# pip install takes seconds even when nothing changed, so it runs only when pyproject.toml (the
# dependencies) differs from the last successful install's; the package itself is an editable install.
install_stamp=.venv/.preflab-installed
wanted=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$install_stamp" 2>/dev/null)" != "$wanted" ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e .
  echo "$wanted" >"$install_stamp"
fi

.venv/bin/preflab demo
exec .venv/bin/preflab serve "$@"
