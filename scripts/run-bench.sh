#!/usr/bin/env bash
# Runs every benchmark and prints its figures. PostgreSQL and Kafka come from the
# infrastructure ladder (state under .local/bench), fresh for every run, and are stopped at
# the end. Fresh matters: a broker left with earlier runs' events would make the new
# consumer group of the booked-to-visible measurement replay them all first.
set -uo pipefail
cd "$(dirname "$0")/.."
cleanup() { .venv/bin/python -m clinic.devstack.infra down --purge --state-dir .local/bench/infra >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
cleanup
# wrk, a load generator in C, drives the HTTP measurements (Debian's package).
if ! command -v wrk >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing wrk (apt-get)"
  { apt-get update -qq && apt-get install -y -qq wrk; } >/dev/null 2>&1 \
    || echo "wrk could not be installed; HTTP figures come from a Python client"
fi
status=0
for bench in bench/*_bench.py; do
  echo "== $bench"
  .venv/bin/python "$bench" "$@" || status=1
done
echo "== the infrastructure after the benchmarks (target: the Kafka broker under 700 MB resident)"
.venv/bin/python -m clinic.devstack.infra status --state-dir .local/bench/infra || status=1
exit "$status"
