#!/usr/bin/env bash
# One command on a fresh machine: install (with the browser-test packages), then run the whole test
# suite, slow simulator suites included, on SQLite; then a second pass on PostgreSQL. The suite starts a
# private Redis unless REDIS_URL is set. Extra arguments go to pytest in both passes (e.g.
# ./scripts/test.sh -m "not slow" for the quick loop).
#
# The PostgreSQL pass (ASPIRE_TEST_DB=postgres, aspire_web/settings/test.py) runs what depends on the
# database: the tests of accounts/, runs/, skills/ and experiments/ without the browser and slow suites
# (the slow suites run the simulator over many seeds: their database work is the same as the fast tests',
# and the pair of passes stays well inside CI's time). The row-lock race tests (runs/tests/test_races.py,
# experiments/tests/test_races.py) only run there: SQLite has no row locks. It uses the PostgreSQL server
# of ASPIRE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres, trust auth; CI has
# one) and creates and drops its own test database there. Without a server the pass is skipped with a
# message, except in CI (CI=true), where that is an error. ASPIRE_TEST_PG=0 skips it on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh --test
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
# Lint, format and the layer contracts (pyproject.toml) fail the run before any test does.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports

echo "== pass 1: the whole suite on SQLite"
ASPIRE_TEST_DB=sqlite .venv/bin/python -m pytest "$@"

pg_url=${ASPIRE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
if [ "${ASPIRE_TEST_PG:-1}" = "0" ]; then
  echo "== pass 2 (PostgreSQL) skipped: ASPIRE_TEST_PG=0"
  exit 0
fi
if ! why=$(.venv/bin/python - "$pg_url" <<'PY' 2>&1
import sys

import psycopg

try:
    psycopg.connect(sys.argv[1].replace("postgres://", "postgresql://", 1), connect_timeout=5).close()
except Exception as exc:
    sys.exit(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
PY
); then
  if [ "${CI:-}" = "true" ]; then
    echo "== pass 2 (PostgreSQL) cannot run: no server at $pg_url ($why); CI must have one" >&2
    exit 1
  fi
  echo "== pass 2 (PostgreSQL) SKIPPED: no server at $pg_url ($why)."
  echo "   Start one (e.g. Debian's postgresql package) or set ASPIRE_TEST_POSTGRES_URL to run it."
  exit 0
fi
echo "== pass 2: the database-sensitive tests on PostgreSQL ($pg_url)"
if [ $# -eq 0 ]; then
  set -- -m "not browser and not slow" accounts/tests runs/tests skills/tests experiments/tests
fi
ASPIRE_TEST_DB=postgres ASPIRE_TEST_POSTGRES_URL="$pg_url" exec .venv/bin/python -m pytest "$@"
