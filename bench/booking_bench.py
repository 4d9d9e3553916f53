"""Booking throughput and latency, beside the raw PostgreSQL rate for a comparable write.

Run with ``make bench``. Prints, for 1, 10 and 50 concurrent clients:
- bookings per second on uncontended slots and p50/p99 latency, in-process (the decision and
  the event-store transaction, what the service's thread pool runs) and through HTTP (a
  booking service process, clients with their own connections);
- the raw PostgreSQL rate, at the same concurrency, of a comparable write: one transaction
  inserting the same number of rows of the same size into an events-shaped table.
Nothing here asserts a timing; it measures and prints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg

from clinic.booking.application import Bookings
from clinic.booking.domain.values import Actor, Category, Requirement, Step, WeeklyHours
from clinic.booking.main import event_store_env
from clinic.booking.settings import BookingSettings
from clinic.platform.infra import Ladder
from clinic.platform.testing import RunningService

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Seed:
    """An organisation whose providers work every day 06:00-22:00 (32 half-hour slots)."""

    def __init__(self, app: Bookings, providers: int) -> None:
        org = uuid.UUID(app.register_organization(f"bench-{uuid.uuid4()}", "Bench").body["id"])
        location = uuid.UUID(
            app.register_location(
                org, str(uuid.uuid4()), name="Bench", address={}, time_zone="Europe/Berlin"
            ).body["id"]
        )
        self.org, self.location = org, location
        self.providers = []
        for n in range(providers):
            pid = uuid.UUID(
                app.register_resource(
                    org,
                    str(uuid.uuid4()),
                    category=Category.PROVIDER,
                    name=f"P{n}",
                    kind="physician",
                    specialties=("gp",),
                    location_ids=(location,),
                ).body["id"]
            )
            hours = tuple(WeeklyHours(location, d, dt.time(6), dt.time(22)) for d in range(7))
            app.set_weekly_hours(org, str(uuid.uuid4()), pid, hours)
            self.providers.append(pid)
        self.type_id = uuid.UUID(
            app.define_appointment_type(
                org,
                str(uuid.uuid4()),
                name="Consult",
                steps=(
                    Step(
                        "c", 0, 30, (Requirement("physician", Category.PROVIDER, specialty="gp"),)
                    ),
                ),
            ).body["id"]
        )
        self.patient = uuid.UUID(
            app.register_patient(
                org,
                str(uuid.uuid4()),
                given_name="B",
                family_name="M",
                birth_date=dt.date(1990, 1, 1),
                contacts=(),
                preferred_channel="email",
                language="en",
            ).body["id"]
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-level", type=int, default=600, help="bookings per concurrency level")
    parser.add_argument("--levels", default="1,10,50")
    parser.add_argument("--workers", type=int, default=2, help="booking service processes")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]

    ladder = Ladder(ROOT / ".local" / "bench" / "infra")
    infra = ladder.up()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(infra.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".raw_events (notification_id bigserial PRIMARY KEY, '
            "originator_id uuid NOT NULL, originator_version integer NOT NULL, topic text NOT NULL, "
            "state bytea NOT NULL, UNIQUE (originator_id, originator_version))"
        )
    settings = BookingSettings(database_url=infra.database_url, database_schema=schema)
    env = {**event_store_env(settings), "POSTGRES_POOL_SIZE": "60", "POSTGRES_MAX_OVERFLOW": "10"}
    app = Bookings(env=env)
    seed = Seed(app, providers=60)

    def book_in_process() -> None:
        provider, start = seed.next_slot()
        app.book(
            seed.org,
            str(uuid.uuid4()),
            appointment_type_id=seed.type_id,
            location_id=seed.location,
            patient_id=seed.patient,
            start=start,
            preferred={"physician": provider},
            booked_by=Actor.CLINIC,
            allow_overbooking=False,
            note="",
        )

    # What one booking writes: Appointment + ResourceDay (opened + claimed) + request record.
    before = app.recorder.max_notification_id() or 0
    book_in_process()
    rows = (app.recorder.max_notification_id() or 0) - before
    sizes = [len(n.state) for n in app.notification_log.select(before + 1, rows)]
    state_bytes = int(statistics.mean(sizes))

    print(
        f"\nBooking benchmark (PostgreSQL {infra.postgres.source}, {os.cpu_count()} CPUs); "
        f"one booking writes {rows} events of ~{state_bytes} bytes in one transaction.\n"
    )
    header = f"{'clients':>7} | {'raw PG tx/s':>11} | {'bookings/s':>10} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} | {'HTTP/s':>7} {'p50 ms':>7} {'p99 ms':>7}"
    print(header)
    print("-" * len(header))
    service = RunningService(
        "clinic.booking",
        {
            **infra.environment(),
            "BOOKING_DATABASE_SCHEMA": schema,
            "BOOKING_EVENT_STORE_POOL_SIZE": "30",
            "LOG_LEVEL": "WARNING",
            "BOOKING_WORKERS": str(args.workers),
        },
        "BOOKING_",
    ).start()
    raw = raw_write(infra.database_url, schema, rows, state_bytes)
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

            run(10, 100, book_in_process)  # warm caches and pools
            run(10, 100, book_over_http)
            for level in levels:
                raw_result = run(level, args.per_level, raw)
                app_result = run(level, args.per_level, book_in_process)
                http_result = run(level, args.per_level, book_over_http)
                ratio = app_result["rate"] / raw_result["rate"]
                print(
                    f"{level:>7} | {raw_result['rate']:>11.0f} | {app_result['rate']:>10.0f} "
                    f"{ratio:>6.2f} {app_result['p50']:>7.1f} {app_result['p99']:>7.1f} | "
                    f"{http_result['rate']:>7.0f} {http_result['p50']:>7.1f} {http_result['p99']:>7.1f}"
                )
    finally:
        service.stop()
        app.close()
        with psycopg.connect(infra.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    print("\nTargets: bookings/s at least half the raw rate; p99 under 50 ms at 50 clients.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
