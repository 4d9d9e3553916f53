"""Booking throughput and latency, beside the raw PostgreSQL rate for a comparable write.

Run with ``make bench``. Prints, for 1, 10 and 50 concurrent clients:
- bookings per second on uncontended slots and p50/p99 latency, in-process (the decision and
  the event-store transaction, what a booking worker runs) and through HTTP (the booking
  service with one worker process per CPU, clients with their own connections);
- over HTTP, the clients are wrk's connections (scripts/run-bench.sh installs Debian's wrk
  where it can; otherwise a Python client, which costs the shared CPUs far more);
- the raw PostgreSQL rate and p50/p99 latency, at the same concurrency and with the same
  client layout (one process per CPU, threads for the clients), of a comparable write: one
  transaction inserting the same number of rows of the same size into an events-shaped
  table. It shows what the machine itself allows: with N clients each waiting for its answer,
  the mean latency is N divided by the rate, whatever the code;
- the client processes' CPU time per booking, the figure that sets the rate once the CPUs
  are busy (PostgreSQL's own CPU is not in it);
- the same raw write from pgbench, a C client, where the PostgreSQL server's own pgbench is
  installed: what the database allows on this machine without a Python client's CPU.
Python clients are bound by the GIL, so both the bookings and the raw writes run in one
process per CPU, as the service is deployed. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import itertools
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg

from clinic.booking.application import Bookings
from clinic.booking.commands import (
    BookAppointment,
    Command,
    DefineAppointmentType,
    RegisterLocation,
    RegisterOrganization,
    RegisterPatient,
    RegisterResource,
    SetWeeklyHours,
)
from clinic.booking.domain.values import Category, Requirement, Step, WeeklyHours
from clinic.booking.main import event_store_env
from clinic.booking.settings import BookingSettings
from clinic.devstack.infra import Ladder
from clinic.devstack.postgres import find_postgres_bin
from clinic.devstack.testing import RunningService
from clinic.platform.service import settle_heap

ROOT = Path(__file__).resolve().parents[1]
HTTP_SECONDS = 8  # each level's wrk run
PGBENCH_SECONDS = 5  # each level's pgbench run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Seed:
    """An organisation whose providers work every day 06:00-22:00 (32 half-hour slots)."""

    def __init__(self, app: Bookings, providers: int) -> None:
        def new(command: Command) -> uuid.UUID:
            return uuid.UUID(app.handle(command).body["id"])

        org = new(
            RegisterOrganization(request_id=f"bench-{uuid.uuid4()}", organization_name="Bench")
        )

        def ids() -> dict[str, Any]:
            return {"organization_id": org, "request_id": str(uuid.uuid4())}

        location = new(RegisterLocation(**ids(), location_name="Bench", time_zone="Europe/Berlin"))
        self.org, self.location = org, location
        self.providers = []
        for n in range(providers):
            pid = new(
                RegisterResource(
                    **ids(),
                    category=Category.PROVIDER,
                    resource_name=f"P{n}",
                    kind="physician",
                    specialties=("gp",),
                    location_ids=(location,),
                )
            )
            hours = tuple(WeeklyHours(location, d, dt.time(6), dt.time(22)) for d in range(7))
            app.handle(SetWeeklyHours(**ids(), resource_id=pid, hours=hours))
            self.providers.append(pid)
        self.type_id = new(
            DefineAppointmentType(
                **ids(),
                type_name="Consult",
                steps=(
                    Step(
                        "c", 0, 30, (Requirement("physician", Category.PROVIDER, specialty="gp"),)
                    ),
                ),
            )
        )
        self.patient = new(
            RegisterPatient(
                **ids(),
                given_name="B",
                family_name="M",
                birth_date=dt.date(1990, 1, 1),
            )
        )
        first = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)
        # Every (provider, day, slot) is booked at most once across the whole run.
        self.slots = itertools.product(range(3650), range(32), self.providers)
        self.first_day = first
        self.lock = threading.Lock()

    def next_slot(self) -> tuple[uuid.UUID, dt.datetime]:
        with self.lock:
            day, slot, provider = next(self.slots)
        local = dt.datetime.combine(self.first_day + dt.timedelta(days=day), dt.time(6))
        start = local.replace(tzinfo=dt.timezone(dt.timedelta(hours=1))) + dt.timedelta(
            minutes=30 * slot
        )
        return provider, start


def run(concurrency: int, total: int, one: Callable[[], None]) -> dict[str, float]:
    """``total`` calls of ``one`` from ``concurrency`` threads: rate and latency."""
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(_: int) -> None:
        started = time.perf_counter()
        one()
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)

    began = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, range(total)))
    wall = time.perf_counter() - began
    return {
        "rate": total / wall,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
    }


@dataclasses.dataclass(frozen=True)
class Job:
    """What one worker process does at one level."""

    kind: str  # "raw" or "book"
    url: str
    schema: str
    threads: int
    count: int
    start_at: float
    first_day: int
    seed: dict[str, Any]
    rows: int = 4
    state_bytes: int = 700


def worker(job: Job) -> tuple[list[float], float, float, float]:
    """Runs in its own process: warm up, wait for the common start, run, report the
    latencies, the start and end, and the CPU seconds this process spent meanwhile."""
    latencies: list[float] = []
    lock = threading.Lock()
    if job.kind == "raw":
        one = raw_write(job.url, job.schema, job.rows, job.state_bytes)
        app = None
    else:
        settings = BookingSettings(database_url=job.url, database_schema=job.schema)
        app = Bookings(
            env={
                **event_store_env(settings),
                "POSTGRES_POOL_SIZE": str(job.threads + 2),
                "POSTGRES_MAX_OVERFLOW": "2",
            }
        )
        providers = [uuid.UUID(p) for p in job.seed["providers"]]
        slots = itertools.product(range(job.first_day, job.first_day + 30), range(32), providers)
        base = dt.datetime.now(dt.UTC).date()
        org, location = uuid.UUID(job.seed["org"]), uuid.UUID(job.seed["location"])
        kind, patient = uuid.UUID(job.seed["type"]), uuid.UUID(job.seed["patient"])

        def one() -> None:
            with lock:
                day, slot, provider = next(slots)
            local = dt.datetime.combine(base + dt.timedelta(days=day), dt.time(6))
            start = local.replace(tzinfo=dt.timezone(dt.timedelta(hours=1)))
            app.handle(
                BookAppointment(
                    organization_id=org,
                    request_id=str(uuid.uuid4()),
                    appointment_type_id=kind,
                    location_id=location,
                    patient_id=patient,
                    start=start + dt.timedelta(minutes=30 * slot),
                    preferred={"physician": provider},
                )
            )

        app.reference.warm()  # as the service does before it serves
    for _ in range(20):  # warm pools, caches and prepared statements
        one()
    settle_heap()  # as the service does once it has started
    time.sleep(max(0.0, job.start_at - time.time()))
    began, cpu = time.time(), time.process_time()

    def timed(_: int) -> None:
        started = time.perf_counter()
        one()
        elapsed = time.perf_counter() - started
        with lock:
            latencies.append(elapsed)

    with ThreadPoolExecutor(job.threads) as pool:
        list(pool.map(timed, range(job.count)))
    ended, cpu = time.time(), time.process_time() - cpu
    if app is not None:
        app.close()
    return latencies, began, ended, cpu


def run_processes(jobs: list[Job]) -> dict[str, float]:
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        results = pool.map(worker, jobs)
    latencies = [x for r in results for x in r[0]]
    wall = max(r[2] for r in results) - min(r[1] for r in results)
    return {
        "rate": len(latencies) / wall,
        "p50": percentile(latencies, 0.5) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
        "cpu_ms": sum(r[3] for r in results) / len(latencies) * 1000,
    }


def book_with_wrk(wrk: str, url: str, seed: Seed, level: int, first_day: int) -> dict[str, float]:
    """``level`` connections of ``wrk`` (a load generator in C, so the clients cost the shared
    CPUs little) booking distinct slots for HTTP_SECONDS; see booking_http.lua."""
    threads = min(level, os.cpu_count() or 2)
    today = dt.datetime.now(dt.UTC).date()
    base = int(dt.datetime.combine(today, dt.time(), dt.UTC).timestamp())
    output = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{level}",
            f"-d{HTTP_SECONDS}s",
            "--timeout",
            "30s",
            "-s",
            str(ROOT / "bench" / "booking_http.lua"),
            f"{url}/organizations/{seed.org}/appointments",
            "--",
            str(seed.org),
            str(seed.type_id),
            str(seed.location),
            str(seed.patient),
            str(first_day),
            str(threads),
            ",".join(str(p) for p in seed.providers),
            str(base),
            uuid.uuid4().hex,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in output.splitlines() if x.startswith("WRK "))
    figures = json.loads(line.removeprefix("WRK "))
    if figures["failed"]:
        raise RuntimeError(f"{figures['failed']} of wrk's bookings failed:\n{output}")
    return {
        "rate": figures["requests"] / (figures["duration_us"] / 1e6),
        "p50": figures["p50_us"] / 1000,
        "p99": figures["p99_us"] / 1000,
    }


def raw_write(url: str, schema: str, rows: int, state_bytes: int) -> Callable[[], None]:
    """One transaction inserting ``rows`` events of ``state_bytes`` each, on a connection of
    the calling thread: the comparable write."""
    local = threading.local()
    payload = b"x" * state_bytes

    def write() -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = psycopg.connect(url, options=f"-c search_path={schema}")
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO raw_events (originator_id, originator_version, topic, state) "
                "VALUES (%s, %s, %s, %s)",
                [(uuid.uuid4(), 1, "bench:Event", payload) for _ in range(rows)],
            )

    return write


def raw_with_pgbench(
    pgbench: Path, url: str, schema: str, rows: int, state_bytes: int, clients: int
) -> dict[str, float]:
    """The comparable write from pgbench, a C client: what PostgreSQL itself allows on this
    machine, without the Python client's own CPU."""
    values = ", ".join(
        f"(gen_random_uuid(), 1, 'bench:Event', convert_to(repeat('x', {state_bytes}), 'UTF8'))"
        for _ in range(rows)
    )
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "write.sql"
        script.write_text(
            "BEGIN;\n"
            "INSERT INTO raw_events (originator_id, originator_version, topic, state) "
            f"VALUES {values};\nCOMMIT;\n"
        )
        subprocess.run(
            [
                str(pgbench),
                "-n",
                "-f",
                str(script),
                "-c",
                str(clients),
                "-j",
                str(min(clients, os.cpu_count() or 2)),
                "-T",
                str(PGBENCH_SECONDS),
                "-l",
                f"--log-prefix={tmp}/tx",
                url,
            ],
            env={**os.environ, "PGOPTIONS": f"-c search_path={schema}"},
            capture_output=True,
            text=True,
            check=True,
        )
        latencies = [
            int(line.split()[2]) / 1000
            for log in Path(tmp).glob("tx.*")
            for line in log.read_text().splitlines()
        ]
    return {
        "rate": len(latencies) / PGBENCH_SECONDS,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-level", type=int, default=6000, help="bookings per level")
    parser.add_argument("--levels", default="1,10,50")
    parser.add_argument(
        "--processes",
        type=int,
        default=os.cpu_count() or 2,
        help="worker processes (default: one per CPU)",
    )
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    ladder = Ladder(ROOT / ".local" / "bench" / "infra")
    infra = ladder.up()
    print(f"\nMeasured on {infra.describe()}")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(infra.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".raw_events (notification_id bigserial PRIMARY KEY, '
            "originator_id uuid NOT NULL, originator_version integer NOT NULL, "
            "topic text NOT NULL, state bytea NOT NULL, UNIQUE (originator_id, originator_version))"
        )
    settings = BookingSettings(database_url=infra.database_url, database_schema=schema)
    app = Bookings(env=event_store_env(settings))
    seed = Seed(app, providers=60)
    shared = {
        "org": str(seed.org),
        "location": str(seed.location),
        "type": str(seed.type_id),
        "patient": str(seed.patient),
        "providers": [str(p) for p in seed.providers],
    }

    # What a typical booking writes: Appointment + ResourceDay claim + request record. The
    # first booking of a provider's day also opens the day (one event more, one booking in
    # 32 here), so the comparable write is measured on the provider's second booking.
    def book_at(provider: uuid.UUID, start: dt.datetime) -> None:
        app.handle(
            BookAppointment(
                organization_id=seed.org,
                request_id=str(uuid.uuid4()),
                appointment_type_id=seed.type_id,
                location_id=seed.location,
                patient_id=seed.patient,
                start=start,
                preferred={"physician": provider},
            )
        )

    provider, start = seed.next_slot()
    book_at(provider, start)
    other = None
    while other != provider:  # the same provider's next slot that day
        other, start = seed.next_slot()
    before = app.recorder.max_notification_id() or 0
    book_at(provider, start)
    rows = (app.recorder.max_notification_id() or 0) - before
    sizes = [len(n.state) for n in app.recorder.select_notifications(before + 1, rows)]
    state_bytes = int(statistics.mean(sizes))

    print(
        f"\nBooking benchmark (PostgreSQL {infra.postgres.source}, {os.cpu_count()} CPUs, "
        f"{args.processes} client processes); a typical booking writes {rows} events of "
        f"~{state_bytes} bytes in one transaction.\n"
    )
    # The raw write's own latency at the same concurrency shows what the machine allows:
    # with N clients each waiting for its answer, the mean latency is N / rate.
    header = (
        f"{'clients':>7} | {'raw PG tx/s':>11} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'bookings/s':>10} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms':>6} | "
        f"{'HTTP/s':>7} {'p50 ms':>7} {'p99 ms':>7} | {'pgbench tx/s':>12} {'p99 ms':>7}"
    )
    print(header)
    print("-" * len(header))
    wrk = shutil.which("wrk")  # HTTP load from wrk where it is installed
    bin_dir = find_postgres_bin()  # pgbench comes with the PostgreSQL server
    pgbench = bin_dir / "pgbench" if bin_dir and (bin_dir / "pgbench").exists() else None
    service = RunningService(
        "clinic.booking",
        {
            **infra.environment(),
            "BOOKING_DATABASE_SCHEMA": schema,
            "BOOKING_EVENT_STORE_POOL_SIZE": "30",
            "LOG_LEVEL": "WARNING",
            "BOOKING_WORKERS": str(args.processes),
            "BOOKING_RELAY_ENABLED": "false",
        },
        "BOOKING_",
    ).start()
    try:
        with httpx.Client(
            base_url=service.url, timeout=30, limits=httpx.Limits(max_connections=60)
        ) as http:

            def book_over_http() -> None:
                provider, start = seed.next_slot()
                response = http.post(
                    f"/organizations/{seed.org}/appointments",
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                    json={
                        "appointment_type_id": str(seed.type_id),
                        "location_id": str(seed.location),
                        "patient_id": str(seed.patient),
                        "start": start.isoformat(),
                        "preferred_resources": {"physician": str(provider)},
                    },
                )
                if response.status_code != 201:
                    raise RuntimeError(response.text)

            # Every worker process of the service must be ready before measuring. Each probe
            # opens a connection of its own: a kept-alive one would ask one worker only.
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                probes = [httpx.get(f"{service.url}/readyz", timeout=5) for _ in range(40)]
                if all(p.status_code == 200 for p in probes):
                    break
                time.sleep(0.5)
            run(10, 100, book_over_http)  # warm the service
            for n, level in enumerate(levels):
                procs = min(args.processes, level)
                common = {
                    "url": infra.database_url,
                    "schema": schema,
                    "threads": level // procs,
                    "count": args.per_level // procs,
                    "seed": shared,
                    "rows": rows,
                    "state_bytes": state_bytes,
                }
                raw = run_processes(
                    [
                        Job("raw", start_at=time.time() + 3, first_day=0, **common)
                        for _ in range(procs)
                    ]
                )
                booked = run_processes(
                    [
                        Job(
                            "book",
                            start_at=time.time() + 4,
                            first_day=30 + 3 * (n * procs + p),
                            **common,
                        )
                        for p in range(procs)
                    ]
                )
                if wrk is not None:
                    over_http = book_with_wrk(wrk, service.url, seed, level, 150 + 30 * n)
                else:
                    over_http = run(level, args.per_level // 2, book_over_http)
                c_client = (
                    f"{'n/a':>12} {'':>7}"
                    if pgbench is None
                    else "{rate:>12.0f} {p99:>7.1f}".format(
                        **raw_with_pgbench(
                            pgbench, infra.database_url, schema, rows, state_bytes, level
                        )
                    )
                )
                print(
                    f"{level:>7} | {raw['rate']:>11.0f} {raw['p50']:>7.1f} {raw['p99']:>7.1f} | "
                    f"{booked['rate']:>10.0f} {booked['rate'] / raw['rate']:>6.2f} "
                    f"{booked['p50']:>7.1f} {booked['p99']:>7.1f} {booked['cpu_ms']:>6.2f} | "
                    f"{over_http['rate']:>7.0f} {over_http['p50']:>7.1f} {over_http['p99']:>7.1f}"
                    f" | {c_client}"
                )
    finally:
        service.stop()
        app.close()
        with psycopg.connect(infra.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print("\nTargets: bookings/s at least half the raw rate; p99 under 50 ms at 50 clients.")
    print(
        "CPU ms: client-process CPU per booking (decision, encoding, driver), PostgreSQL's excluded."
    )
    if wrk is not None:
        print(
            f"HTTP: wrk (C) for {HTTP_SECONDS} s per level; it shares the CPUs with the service, "
            "lightly."
        )
    else:
        print("HTTP: a Python client (wrk is not installed), which shares the CPUs heavily.")
    print(
        f"pgbench: the same raw write from a C client for {PGBENCH_SECONDS} s per level, what "
        "PostgreSQL allows without Python's CPU (raw PG tx/s uses Python clients, like the "
        "service)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
