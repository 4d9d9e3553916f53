#!/usr/bin/env bash
# Runs every benchmark and prints its figures. PostgreSQL and Kafka come from the
# infrastructure ladder (state under .local/bench) and are stopped at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
cleanup() { .venv/bin/python -m clinic.platform.infra down --purge --state-dir .local/bench/infra >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
status=0
for bench in bench/*_bench.py; do
  echo "== $bench"
  .venv/bin/python "$bench" "$@" || status=1
done
exit "$status"
