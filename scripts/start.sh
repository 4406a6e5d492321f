#!/usr/bin/env bash
# Install Preflab into .venv, create the demo accounts and projects, and serve it.
# SQLite by default (data/preflab.db); set DATABASE_URL for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
.venv/bin/preflab demo
exec .venv/bin/preflab serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" "$@"
