"""The projection fed from Kafka equals one rebuilt from scratch, from booking's event store
or from the topics alone, including after the broker was killed while bookings flowed."""

import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from clinic.devstack.apache_kafka import start_apache_kafka
from clinic.devstack.components import Infrastructure
from clinic.devstack.infra import start_local_kafka, stop_local_kafka
from clinic.devstack.testing import RunningService, command

OPS_TOKEN = "ops-token-for-tests"
OPS = {"Authorization": f"Bearer {OPS_TOKEN}"}


def tables(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url, options=f"-c search_path={schema}") as conn:
        return {
            table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=str)
            for table in (
                "locations",
                "resources",
                "appointment_types",
                "weekly_hours",
                "schedule_exceptions",
                "claims",
            )
        }


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[str]:
    """A broker of this test's own: the shared one carries other tests' events, which a
    rebuild from this test's event store rightly would not contain."""
    broker = start_local_kafka(tmp_path)
    yield broker.address
    stop_local_kafka(broker)


class Platform:
    """Booking (with the demo group) and availability on a broker of the test's own."""

    def __init__(
        self, start_service: Callable[..., RunningService], schema_name: str, broker: str
    ) -> None:
        self.booking = start_service(
            "clinic.booking",
            "BOOKING_",
            BOOKING_LOAD_DEMO_DATA="true",
            KAFKA_BOOTSTRAP_SERVERS=broker,
        )
        self.schema = f"{schema_name}_av"
        self.availability = start_service(
            "clinic.availability",
            "AVAILABILITY_",
            schema=self.schema,
            AVAILABILITY_CONSUMER_GROUP=f"availability-{schema_name}",
            BOOKING_URL=self.booking.url,
            KAFKA_BOOTSTRAP_SERVERS=broker,
            AVAILABILITY_OPERATIONS_TOKEN=OPS_TOKEN,
        )
        self.b = httpx.Client(base_url=self.booking.url, timeout=30)
        self.a = httpx.Client(base_url=self.availability.url, timeout=120, headers=OPS)
        self.demo = self.b.get("/demo").json()
        self.org = self.demo["organization_id"]
        self.location = self.demo["locations"]["Berlin Mitte"]
        self.kind = self.demo["appointment_types"]["General consultation"]

    def book(self, local_start: str) -> str | None:
        """Book at a local time; the appointment id, or None when the time was not free."""
        response = self.b.post(
            f"/organizations/{self.org}/appointments",
            json={
                "appointment_type_id": self.kind,
                "location_id": self.location,
                "patient_id": self.demo["patients"][0],
                "local_start": local_start,
            },
            headers={"Idempotency-Key": local_start},
        )
        if response.status_code == 409:
            return None
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def claimed_appointments(self, url: str) -> set[str]:
        with psycopg.connect(url, options=f"-c search_path={self.schema}") as conn:
            rows = conn.execute("SELECT DISTINCT appointment_id FROM claims").fetchall()
        return {str(row[0]) for row in rows}

    def settled(self, url: str, accepted: set[str], within: float = 90) -> dict[str, Any]:
        """Wait until every accepted booking is in the projection, then for quiet; the tables."""
        deadline = time.monotonic() + within
        while not accepted <= self.claimed_appointments(url):
            assert time.monotonic() < deadline, accepted - self.claimed_appointments(url)
            time.sleep(0.2)
        time.sleep(1)
        return tables(url, self.schema)


def weekday_starts(count: int, first_day: int = 10) -> list[str]:
    """``count`` local start times on weekdays, 09:00 to 15:30 every 30 minutes."""
    starts: list[str] = []
    day = dt.date.today() + dt.timedelta(days=first_day)
    while len(starts) < count:
        if day.weekday() < 5:
            for minute in range(9 * 60, 16 * 60, 30):
                starts.append(f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}:00")
        day += dt.timedelta(days=1)
    return starts[:count]


def test_bookings_flowing_while_the_broker_is_killed_reach_availability_exactly_once(
    start_service: Callable[..., RunningService],
    schema_name: str,
    infrastructure: Infrastructure,
    tmp_path: Path,
) -> None:
    # 1. A real Apache Kafka of this test's own, booking and availability on it.
    broker = start_apache_kafka(tmp_path)
    port = int(broker.address.rsplit(":", 1)[1])
    try:
        platform = Platform(start_service, schema_name, broker.address)

        # 2. Bookings flow from another thread; the broker is killed (SIGKILL) after the
        #    first ten and restarted on the same log dir and port ten bookings later.
        accepted: list[str] = []
        starts = weekday_starts(40)

        def book_all() -> None:
            for start in starts:
                appointment = platform.book(start)
                if appointment:
                    accepted.append(appointment)

        flowing = threading.Thread(target=book_all)
        flowing.start()
        while len(accepted) < 10:
            assert flowing.is_alive() or len(accepted) >= 10
            time.sleep(0.02)
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGKILL)
        killed_at = len(accepted)
        while len(accepted) < killed_at + 10 and flowing.is_alive():
            time.sleep(0.02)
        broker = start_apache_kafka(tmp_path, port=port)
        flowing.join(timeout=120)
        assert not flowing.is_alive()
        assert len(accepted) >= 30, "most of the 40 distinct times must be bookable"

        # 3. Every accepted booking reaches the projection...
        live = platform.settled(infrastructure.database_url, set(accepted))

        # 4. ... exactly once: the projection equals one rebuilt from booking's event store
        #    (the source of truth), with no claim missing, doubled or invented.
        figures = platform.a.post("/projection/rebuild", params={"source": "booking"}).json()
        assert figures["source"] == "booking"
        assert tables(infrastructure.database_url, platform.schema) == live
        metrics = platform.a.get("/metrics").text
        assert 'projection_events_total{consumer="availability-' in metrics
        assert 'kafka_consumer_lag_messages{group="availability-' in metrics
    finally:
        stop_local_kafka(broker)


def test_a_projection_rebuilt_from_the_topics_alone_equals_the_live_one(
    start_service: Callable[..., RunningService],
    schema_name: str,
    infrastructure: Infrastructure,
    own_broker: str,
) -> None:
    platform = Platform(start_service, schema_name, own_broker)
    accepted = {a for a in map(platform.book, weekday_starts(12)) if a}
    live = platform.settled(infrastructure.database_url, accepted)
    params = {
        "appointment_type_id": platform.kind,
        "location_id": platform.location,
        "from": weekday_starts(1)[0][:10],
        "to": weekday_starts(1)[0][:10],
    }
    slots = platform.a.get(f"/organizations/{platform.org}/slots", params=params).json()

    figures = platform.a.post("/projection/rebuild", params={"source": "topics"}).json()

    assert figures["source"] == "topics"
    assert figures["events"] >= 80  # the demo group (reference data, schedules, days) and bookings
    metrics = platform.a.get("/metrics").text
    assert (
        'projection_rebuilds_total{outcome="ok",projection="availability",source="topics"} 1.0'
        in metrics
    )
    assert tables(infrastructure.database_url, platform.schema) == live
    time.sleep(0.5)
    assert platform.a.get(f"/organizations/{platform.org}/slots", params=params).json() == slots


def test_a_rebuilt_projection_equals_the_one_built_from_kafka(
    start_service: Callable[..., RunningService],
    schema_name: str,
    infrastructure: Infrastructure,
    own_broker: str,
) -> None:
    booking = start_service(
        "clinic.booking",
        "BOOKING_",
        BOOKING_LOAD_DEMO_DATA="true",
        KAFKA_BOOTSTRAP_SERVERS=own_broker,
    )
    schema = f"{schema_name}_av"
    availability = start_service(
        "clinic.availability",
        "AVAILABILITY_",
        schema=schema,
        AVAILABILITY_CONSUMER_GROUP=f"availability-{schema_name}",
        BOOKING_URL=booking.url,
        KAFKA_BOOTSTRAP_SERVERS=own_broker,
        AVAILABILITY_OPERATIONS_TOKEN=OPS_TOKEN,
    )
    b = httpx.Client(base_url=booking.url, timeout=30)
    a = httpx.Client(base_url=availability.url, timeout=120, headers=OPS)
    refused = httpx.post(f"{availability.url}/projection/rebuild", timeout=30)
    assert refused.status_code == 401, refused.text  # only ops rebuild a projection
    demo = b.get("/demo").json()
    org = demo["organization_id"]
    location = demo["locations"]["Berlin Mitte"]
    kind = demo["appointment_types"]["General consultation"]
    import datetime as dt

    day = dt.date.today() + dt.timedelta(days=10)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    for hour in (9, 10, 11):
        command(
            b,
            f"/organizations/{org}/appointments",
            {
                "appointment_type_id": kind,
                "location_id": location,
                "patient_id": demo["patients"][0],
                "local_start": f"{day.isoformat()}T{hour:02d}:00:00",
            },
        )

    # 1. Wait until the Kafka-fed projection has every claim.
    def claims() -> int:
        return len(tables(infrastructure.database_url, schema)["claims"])

    deadline = time.monotonic() + 60
    while claims() < 6:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)
    before = tables(infrastructure.database_url, schema)
    params = {
        "appointment_type_id": kind,
        "location_id": location,
        "from": day.isoformat(),
        "to": day.isoformat(),
    }
    slots_before = a.get(f"/organizations/{org}/slots", params=params).json()
    log = "SELECT consumer, aggregate_id, aggregate_version, event_id FROM processed_events"
    with psycopg.connect(infrastructure.database_url, options=f"-c search_path={schema}") as conn:
        processed = sorted(conn.execute(log).fetchall(), key=str)
        # The log drifts: one fact goes missing, one that never happened appears.
        consumer, aggregate_id, version, _ = processed[0]
        conn.execute(
            "DELETE FROM processed_events WHERE aggregate_id = %s AND aggregate_version = %s",
            (aggregate_id, version),
        )
        conn.execute(
            "INSERT INTO processed_events (consumer, aggregate_id, aggregate_version, event_id) "
            "VALUES (%s, gen_random_uuid(), 1, gen_random_uuid())",
            (consumer,),
        )

    # 2. Rebuild from the event store.
    figures = a.post("/projection/rebuild").json()
    assert figures["source"] == "booking"
    assert figures["events"] >= 80  # the demo group (reference data, schedules, days), bookings
    assert tables(infrastructure.database_url, schema) == before
    with psycopg.connect(infrastructure.database_url, options=f"-c search_path={schema}") as conn:
        assert sorted(conn.execute(log).fetchall(), key=str) == processed
    time.sleep(0.5)
    assert a.get(f"/organizations/{org}/slots", params=params).json() == slots_before
