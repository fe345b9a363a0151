#!/usr/bin/env bash
# One command on a fresh machine: install, then run web + worker (SQLite under var/, and a private
# Redis unless REDIS_URL is set). Open http://127.0.0.1:8000/ when it says it is up. `up` restarts a
# component that dies; Ctrl-C stops gracefully (running episodes get --grace / ASPIRE_STOP_GRACE
# seconds, 60 by default; the rest resumes at the next start). exec: the signals reach `up` itself.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
export MUJOCO_GL=${MUJOCO_GL:-osmesa} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-osmesa}
exec .venv/bin/python manage.py up "$@"
