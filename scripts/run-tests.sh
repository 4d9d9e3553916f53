#!/usr/bin/env bash
# Runs the whole suite. The pytest session starts PostgreSQL and Kafka through the
# infrastructure ladder and stops them at the end, even when tests fail; this script also
# stops them if pytest itself is killed. "No tests collected" is a failure, never a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
state=.local/test
cleanup() { .venv/bin/python -m clinic.devstack.infra down --purge --state-dir "$state/infra" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
# The web app's component tests (Vitest) first: they take seconds.
(cd web && npx --no-install vitest run --reporter=dot)
web=$?
.venv/bin/python -m pytest --durations=25 "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: failing the run" >&2
  exit 1
fi
if [ "$web" -ne 0 ]; then
  echo "the web app's component tests failed" >&2
  [ "$status" -ne 0 ] || status=$web
fi
exit "$status"
