"""Correct under real concurrency, on real PostgreSQL.

Clients race through HTTP against two booking replicas sharing one event store, or through
separate application instances (separate connection pools); optimistic concurrency on each
ResourceDay must leave the calendar consistent whatever the interleaving."""

import datetime as dt
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from scenario import Clinic, Clock, at, build_clinic, next_monday, postgres_env

from clinic.booking.api.answers import status_of
from clinic.booking.application import Bookings
from clinic.booking.commands import BookAppointment, CancelAppointment, Reschedule
from clinic.booking.domain.errors import BookingError
from clinic.booking.domain.resource_day import ResourceDay, resource_day_id
from clinic.devstack.testing import RunningService


@pytest.fixture
def env(request: pytest.FixtureRequest, schema_name: str) -> dict[str, str]:
    return postgres_env(request, schema_name)


@pytest.fixture
def clinic(env: dict[str, str]) -> Iterator[Clinic]:
    clock = Clock(dt.datetime.now(dt.UTC))
    app = Bookings(env=env, clock=clock)
    yield build_clinic(app, clock)
    app.close()


@pytest.fixture
def replicas(env: dict[str, str]) -> Iterator[Callable[[int], list[Bookings]]]:
    """Separate application instances: each its own pool of connections, like replicas."""
    made: list[Bookings] = []

    def make(n: int) -> list[Bookings]:
        made.extend(Bookings(env={**env, "POSTGRES_POOL_SIZE": "2"}) for _ in range(n))
        return made[-n:]

    yield make
    for app in made:
        app.close()


def live_claims(app: Bookings, resource: uuid.UUID, day: dt.date) -> list[Any]:
    aggregate = app.queries.reader.maybe(resource_day_id(resource, day))
    if not isinstance(aggregate, ResourceDay):
        return []
    return aggregate.live_claims(dt.datetime.now(dt.UTC))


def test_fifty_clients_racing_for_one_slot_leave_one_booking_and_49_clear_409s(
    clinic: Clinic, start_service: Callable[..., RunningService], schema_name: str
) -> None:
    # 1. Two booking replicas on one event store, 50 clients with their own connections.
    replicas = [start_service("clinic.booking", "BOOKING_") for _ in range(2)]
    day = next_monday()
    body = {
        "appointment_type_id": str(clinic.types["named"]),
        "location_id": str(clinic.location),
        "patient_id": str(clinic.patients[0]),
        "local_start": f"{day.isoformat()}T10:00:00",
    }
    gate = threading.Barrier(50)

    def client(n: int) -> httpx.Response:
        with httpx.Client(base_url=replicas[n % 2].url, timeout=60) as http:
            gate.wait()
            return http.post(
                f"/organizations/{clinic.org}/appointments",
                json=body,
                headers={"Idempotency-Key": f"race-{n}"},
            )

    # 2. All fire at once.
    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(client, range(50)))

    # 3. Exactly one booking; 49 clear conflicts that offer other times.
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 49}, [r.text for r in responses if r.status_code >= 500]
    for refused in (r for r in responses if r.status_code == 409):
        problem = refused.json()
        assert refused.headers["content-type"] == "application/problem+json"
        assert problem["type"].endswith(("/slot-taken", "/slot-contended"))
        assert problem["alternatives"], problem
    [winner] = [r.json() for r in responses if r.status_code == 201]
    claims = live_claims(clinic.app, clinic.providers[0], day)
    assert [str(c.appointment_id) for c in claims] == [winner["id"]]


def test_racing_reschedules_and_cancels_leave_every_calendar_consistent(
    clinic: Clinic, replicas: Callable[[int], list[Bookings]]
) -> None:
    day = next_monday()
    apps = replicas(8)
    booked = [
        uuid.UUID(clinic.book("named", at(day, 9 + n // 2, 30 * (n % 2)))["id"]) for n in range(8)
    ]
    targets = [at(day, 14), at(day, 14, 30), at(day + dt.timedelta(days=1), 9)]
    gate = threading.Barrier(24)

    def act(n: int) -> str:
        app = apps[n % len(apps)]
        appointment = booked[n % len(booked)]
        gate.wait()
        try:
            if n % 3 == 0:
                app.handle(
                    clinic.command(
                        CancelAppointment,
                        appointment_id=appointment,
                        reason="race",
                    )
                )
            else:
                app.handle(
                    clinic.command(
                        Reschedule,
                        appointment_id=appointment,
                        start=targets[n % 3],
                        preferred={},
                    )
                )
        except BookingError as refused:
            return refused.slug
        return "ok"

    with ThreadPoolExecutor(24) as pool:
        outcomes = Counter(pool.map(act, range(24)))
    assert outcomes["ok"] >= 3, outcomes

    # Every appointment's claims are exactly where the appointment says it is.
    provider = clinic.providers[0]
    days = [day, day + dt.timedelta(days=1)]
    claims = {d: live_claims(clinic.app, provider, d) for d in days}
    for appointment_id in booked:
        view = clinic.app.queries.get_appointment(clinic.org, appointment_id)
        mine = [c for d in days for c in claims[d] if c.appointment_id == appointment_id]
        if view["status"] == "cancelled":
            assert mine == []
        else:
            assert [c.start.isoformat().replace("+00:00", "Z") for c in mine] == [view["start"]]
    for d in days:
        for a in claims[d]:
            for b in claims[d]:
                if a is not b:
                    assert not a.blocked.overlaps(b.blocked), (a, b)


def test_a_provider_room_and_device_booking_claims_all_or_nothing_under_contention(
    clinic: Clinic, replicas: Callable[[int], list[Bookings]]
) -> None:
    day = next_monday()
    apps = replicas(6)
    gate = threading.Barrier(18)

    def act(n: int) -> str:
        app = apps[n % len(apps)]
        kind = ["scan", "group", "named"][n % 3]
        gate.wait()
        try:
            app.handle(
                clinic.command(
                    BookAppointment,
                    appointment_type_id=clinic.types[kind],
                    location_id=clinic.location,
                    patient_id=clinic.patients[n % 3],
                    start=at(day, 11, 15 * (n % 2)),
                    preferred={},
                    allow_overbooking=False,
                    note="",
                )
            )
        except BookingError as refused:
            return refused.slug
        return f"{kind} ok"

    with ThreadPoolExecutor(18) as pool:
        outcomes = Counter(pool.map(act, range(18)))
    assert sum(v for k, v in outcomes.items() if k.endswith(" ok")) >= 1, outcomes

    resources = {
        "physician": clinic.providers[0],
        "room": clinic.rooms[0],
        "scanner": clinic.devices[0],
    }
    by_resource = {role: live_claims(clinic.app, rid, day) for role, rid in resources.items()}
    for claims in by_resource.values():
        for claim in claims:
            view = clinic.app.queries.get_appointment(clinic.org, claim.appointment_id)
            # Every claim belongs to a booked appointment that holds ALL its resources.
            assert view["status"] == "booked"
            for participant in view["participants"]:
                holder = by_resource.get(participant["role"])
                if holder is not None:
                    assert any(c.appointment_id == claim.appointment_id for c in holder)
    scans = {c.appointment_id for c in by_resource["scanner"]}
    assert scans <= {c.appointment_id for c in by_resource["physician"]}
    assert scans <= {c.appointment_id for c in by_resource["room"]}


def test_bookings_on_one_busy_day_in_one_process_take_turns_instead_of_colliding(
    clinic: Clinic,
) -> None:
    day = next_monday()
    gate = threading.Barrier(16)

    def act(n: int) -> int:
        gate.wait()
        start = at(day, 8 + n // 2, 30 * (n % 2))
        return status_of(clinic.do(BookAppointment, **clinic.reservation("named", start)))

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(act, range(16)))
    assert statuses == [201] * 16
    assert len(live_claims(clinic.app, clinic.providers[0], day)) == 16
    # Each decision saw the one before it: none was refused for a version taken meanwhile.
    assert clinic.app.stats.conflicts == 0
