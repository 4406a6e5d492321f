#!/usr/bin/env bash
# Install what the tests need into .venv and run them (arguments go to pytest).
# SQLite by default; TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test runs them on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
# Browser tests drive Debian's Chromium: Playwright cannot download its own browser here.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: chromium is not installed; browser tests will be skipped (sudo apt-get install chromium)" >&2
  fi
fi
# The accessibility tests inject axe-core (pinned in tests/browser/package-lock.json) from the npm registry.
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix tests/browser --no-audit --no-fund --silent
else
  echo "note: npm is not installed; the accessibility tests will be skipped (sudo apt-get install npm)" >&2
fi
exec .venv/bin/python -m pytest "$@"
