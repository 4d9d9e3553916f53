"""Decisions written together in one call still succeed or fail one by one (real PostgreSQL)."""

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from scenario import postgres_env

from clinic.booking.application import Bookings
from clinic.booking.event_store import BookingRecorder, StaleReferenceError


@pytest.fixture
def recorder(request: pytest.FixtureRequest, schema_name: str) -> Iterator[BookingRecorder]:
    app = Bookings(env={**postgres_env(request, schema_name), "POSTGRES_POOL_SIZE": "2"})
    assert isinstance(app.recorder, BookingRecorder)
    yield app.recorder
    app.close()


def event(aggregate: uuid.UUID, version: int, topic: str = "test:Changed") -> StoredEvent:
    return StoredEvent(aggregate, version, topic, b"{}")


def test_concurrent_decisions_each_get_their_own_outcome(recorder: BookingRecorder) -> None:
    contended = uuid.uuid4()
    gate = threading.Barrier(40)

    def decide(n: int) -> str:
        # Even n: a decision of its own (two aggregates). Odd n: all race for one version.
        mine = [event(uuid.uuid4(), 1), event(uuid.uuid4(), 1)]
        if n % 2:
            mine.append(event(contended, 1))
        gate.wait()
        try:
            ids = recorder.insert_events(mine)
        except IntegrityError:
            return "conflict"
        assert ids is not None
        assert len(ids) == len(mine)
        assert list(ids) == sorted(ids)
        return "saved"

    with ThreadPoolExecutor(40) as pool:
        outcomes = list(pool.map(decide, range(40)))
    assert outcomes.count("conflict") == 19  # every odd decision but one
    stored = recorder.select_events(contended)
    assert len(stored) == 1
    # A refused decision wrote nothing: 20 even decisions of 2 events, one odd of 3.
    assert recorder.max_notification_id() is not None
    assert len(recorder.select_notifications(1, 1000, topics=["test:Changed"])) == 43


def test_decisions_written_in_one_group_get_the_notification_ids_of_their_own_events(
    recorder: BookingRecorder,
) -> None:
    gate = threading.Barrier(30)

    def decide(n: int) -> None:
        mine = [event(uuid.uuid4(), 1) for _ in range(1 + n % 3)]
        gate.wait()
        ids = recorder.insert_events(mine)
        assert ids is not None
        assert len(ids) == len(mine)
        for notification_id, stored in zip(ids, mine, strict=True):
            [found] = recorder.select_notifications(notification_id, 1)
            assert found.originator_id == stored.originator_id

    with ThreadPoolExecutor(30) as pool:
        list(pool.map(decide, range(30)))


def test_a_decision_older_than_a_guarded_change_is_refused_and_writes_nothing(
    recorder: BookingRecorder,
) -> None:
    recorder.guard(["test:ScheduleChanged"])
    [position] = recorder.insert_events([event(uuid.uuid4(), 1)]) or [0]
    recorder.insert_events([event(uuid.uuid4(), 1, "test:ScheduleChanged")], decided_at=position)
    late = uuid.uuid4()
    with pytest.raises(StaleReferenceError):
        recorder.insert_events([event(late, 1)], decided_at=position)
    assert recorder.select_events(late) == []
    # Decided after the change: accepted. Unguarded topics never move the guard.
    top = recorder.max_notification_id()
    recorder.insert_events([event(uuid.uuid4(), 1, "test:PatientRegistered")])
    assert recorder.insert_events([event(late, 1)], decided_at=top)


def test_replicas_opening_a_new_event_store_at_the_same_moment_all_start(
    request: pytest.FixtureRequest, schema_name: str
) -> None:
    gate = threading.Barrier(6)
    # The schema exists before (the platform's migration makes it under its lock); the
    # race is eventsourcing's table, types and function inside it.
    env = {**postgres_env(request, schema_name), "POSTGRES_POOL_SIZE": "2"}

    def start(_: int) -> Bookings:
        gate.wait()
        return Bookings(env=env)

    # Before, all but one could fail on the event store's composite types: "relation
    # stored_event_uuid already exists" (two booking replicas started by make chaos did).
    with ThreadPoolExecutor(6) as pool:
        apps = list(pool.map(start, range(6)))
    for app in apps:
        assert isinstance(app.recorder, BookingRecorder)
        app.close()
