#!/usr/bin/env bash
# One command on a fresh machine: install (with the browser-test packages), then run the whole test
# suite, slow simulator suites included. The suite starts a private Redis unless REDIS_URL is set.
# Extra arguments go to pytest (e.g. ./scripts/test.sh -m "not slow" for the quick loop).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh --test
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
# Lint, format and the layer contracts (pyproject.toml) fail the run before any test does.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
exec .venv/bin/python -m pytest "$@"
