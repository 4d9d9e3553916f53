"""Replicas decide on what they have cached, yet never on stale data, on real PostgreSQL.

Each booking replica keeps copies of the aggregates and reference data it has seen, and its
first attempt at a command costs no read. These tests change things through one replica
behind another's back and show that the other still answers as a fresh read would."""

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from scenario import Clinic, Clock, at, build_clinic, next_monday, postgres_env

from clinic.booking.application import Bookings
from clinic.booking.commands import CancelAppointment
from clinic.booking.domain import errors
from clinic.booking.domain.schedule import schedule_id
from clinic.booking.domain.values import ExceptionKind


@pytest.fixture
def two(request: pytest.FixtureRequest, schema_name: str) -> Iterator[tuple[Clinic, Clinic]]:
    """The same clinic seen through two replicas (separate applications and pools)."""
    env = postgres_env(request, schema_name)
    clock = Clock(dt.datetime.now(dt.UTC))
    first, second = Bookings(env=env, clock=clock), Bookings(env=env, clock=clock)
    a = build_clinic(first, clock)
    b = Clinic(second, clock, a.org, a.location, a.providers, a.rooms, a.devices, a.patients)
    b.types = a.types
    yield a, b
    first.close()
    second.close()


def events_recorded(app: Bookings) -> int:
    return app.recorder.max_notification_id() or 0


def test_a_replica_never_books_into_leave_it_has_not_seen_yet(
    two: tuple[Clinic, Clinic],
) -> None:
    a, b = two
    day = next_monday()
    a.book("named", at(day, 9))  # a now holds the provider's schedule and day
    b.schedule_exception(ExceptionKind.LEAVE, at(day, 10), at(day, 12), "training")
    before = events_recorded(a.app)
    with pytest.raises(errors.OutsideWorkingHoursError):
        a.book("named", at(day, 10, 30))
    assert events_recorded(a.app) == before
    assert a.book("named", at(day, 12))["status"] == "booked"


def test_a_replica_sees_working_hours_added_elsewhere(two: tuple[Clinic, Clinic]) -> None:
    a, b = two
    saturday = next_monday() + dt.timedelta(days=5)
    with pytest.raises(errors.OutsideWorkingHoursError):
        a.book("named", at(saturday, 10))
    b.schedule_exception(ExceptionKind.EXTRA, at(saturday, 9), at(saturday, 12), "flu clinic")
    assert a.book("named", at(saturday, 10))["status"] == "booked"


def test_a_replica_with_an_old_copy_of_a_day_refuses_taken_time_and_books_free_time(
    two: tuple[Clinic, Clinic],
) -> None:
    a, b = two
    day = next_monday()
    a.book("named", at(day, 9))  # a caches the day at this version
    taken = b.book("named", at(day, 10))
    with pytest.raises(errors.SlotTakenError) as refused:
        a.book("named", at(day, 10))
    assert refused.value.extensions["alternatives"]
    assert a.book("named", at(day, 11))["status"] == "booked"
    claims = a.app.queries.resource_day(a.org, a.providers[0], day)["claims"]
    assert [c["local_start"][11:16] for c in claims] == ["09:00", "10:00", "11:00"]
    assert taken["id"] in {c["appointment_id"] for c in claims}


def test_a_replica_cancels_an_appointment_moved_elsewhere_at_its_new_time(
    two: tuple[Clinic, Clinic],
) -> None:
    a, b = two
    day = next_monday()
    booked = a.book("named", at(day, 9))
    moved = b.reschedule(booked, at(day, 15))
    assert moved["start"] == at(day, 15).isoformat().replace("+00:00", "Z")
    a.do(CancelAppointment, appointment_id=uuid.UUID(booked["id"]), reason="ill")
    for replica in (a, b):
        assert (
            replica.app.queries.resource_day(replica.org, replica.providers[0], day)["claims"] == []
        )


def test_a_new_replica_caches_reference_data_before_serving_and_still_sees_later_changes(
    two: tuple[Clinic, Clinic], request: pytest.FixtureRequest, schema_name: str
) -> None:
    a, _ = two
    fresh = Bookings(env=postgres_env(request, schema_name), clock=a.clock)
    try:
        cached = fresh.reference.warm()
        held = set(fresh.reference.items)
        assert cached == len(held)
        wanted = {a.org, a.location, *a.providers, *(schedule_id(p) for p in a.providers)}
        assert wanted <= held
        assert not held & set(a.patients)  # patients are read one at a time, when booked
        c = Clinic(fresh, a.clock, a.org, a.location, a.providers, a.rooms, a.devices, a.patients)
        c.types = a.types
        day = next_monday()
        a.schedule_exception(ExceptionKind.LEAVE, at(day, 10), at(day, 12), "training")
        with pytest.raises(errors.OutsideWorkingHoursError):
            c.book("named", at(day, 10, 30))
        assert c.book("named", at(day, 12))["status"] == "booked"
    finally:
        fresh.close()
