#!/usr/bin/env bash
# Runs the whole suite. The pytest session starts PostgreSQL and Kafka through the
# infrastructure ladder and stops them at the end, even when tests fail; this script also
# stops them if pytest itself is killed. "No tests collected" is a failure, never a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
state=.local/test
cleanup() { .venv/bin/python -m clinic.devstack.infra down --purge --state-dir "$state/infra" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
.venv/bin/python -m pytest --durations=25 "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing the run" >&2
  exit 1
fi
exit "$status"
