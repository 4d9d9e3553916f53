"""The live-update hub's rules, without Kafka: which stream hears of which appointment
fact, how facts without a location are placed, and what a stream hears of the reader."""

from __future__ import annotations

import json
import uuid
from uuid import UUID

import pytest
from prometheus_client import CollectorRegistry

from clinic.gateway.live import Fact, LiveHub, LiveMetrics, Place, Stream, fact_of, frame

ORG, OTHER_ORG = uuid.uuid4(), uuid.uuid4()
BERLIN, HAMBURG = uuid.uuid4(), uuid.uuid4()
ANA, BEN = uuid.uuid4(), uuid.uuid4()


def envelope(
    event: str, appointment: UUID, org: UUID = ORG, version: int = 1, **payload: object
) -> bytes:
    return json.dumps({
        "event_id": str(uuid.uuid4()), "type": event, "schema_version": 1,
        "aggregate_id": str(appointment), "aggregate_version": version,
        "occurred_at": "2026-12-03T08:00:00Z", "organization_id": str(org),
        "payload": {"appointment_id": str(appointment), **{k: str(v) for k, v in payload.items()}},
    }).encode()  # fmt: skip


def booked(appointment: UUID, location: UUID, patient: UUID, org: UUID = ORG) -> Fact:
    fact = fact_of(envelope("Appointment.Booked", appointment, org, location_id=location,
                            patient_id=patient, start="2026-12-07T08:00:00Z",
                            end="2026-12-07T08:20:00Z"))  # fmt: skip
    assert fact is not None
    return fact


def cancelled(appointment: UUID, version: int = 2) -> Fact:
    fact = fact_of(envelope("Appointment.Cancelled", appointment, version=version, reason="ill"))
    assert fact is not None
    return fact


class Booking:
    """Where booking says appointments are, counting the questions."""

    def __init__(self) -> None:
        self.places: dict[UUID, Place] = {}
        self.asked = 0

    async def __call__(self, org: UUID, appointment: UUID) -> Place | None:
        self.asked += 1
        return self.places.get(appointment)


def hub(booking: Booking | None = None) -> LiveHub:
    return LiveHub(booking or Booking(), LiveMetrics(CollectorRegistry()))


def heard(stream: Stream) -> list[Fact | str]:
    items = []
    while not stream.queue.empty():
        items.append(stream.queue.get_nowait())
    return items


def test_an_envelope_becomes_the_fact_a_page_needs_and_anything_else_is_ignored() -> None:
    appointment = uuid.uuid4()
    fact = booked(appointment, BERLIN, ANA)
    data = json.loads(fact.data())
    assert data == {
        "event": "Appointment.Booked", "appointment_id": str(appointment), "version": 1,
        "occurred_at": "2026-12-03T08:00:00Z", "location_id": str(BERLIN),
        "start": "2026-12-07T08:00:00Z", "end": "2026-12-07T08:20:00Z", "status": "booked",
    }  # fmt: skip
    assert "patient" not in fact.data()  # a page hears where and when, not who
    assert frame(fact).startswith(f"event: appointment\nid: {fact.event_id}\ndata: {{")
    assert frame(fact).endswith("\n\n")
    for junk in (b"", b"not json", b"{}", b'{"payload": {"appointment_id": "x"}}'):
        assert fact_of(junk) is None


async def test_each_stream_hears_only_what_its_caller_may_see() -> None:
    live = hub()
    desk = Stream(ORG, frozenset({BERLIN}), None)
    other_desk = Stream(ORG, frozenset({HAMBURG}), None)
    admin = Stream(ORG, None, None)
    ana = Stream(ORG, None, ANA)
    stranger = Stream(OTHER_ORG, None, None)
    for stream in (desk, other_desk, admin, ana, stranger):
        live.open(stream)
        heard(stream)  # its first word: paused
    in_berlin, in_hamburg = booked(uuid.uuid4(), BERLIN, ANA), booked(uuid.uuid4(), HAMBURG, BEN)

    await live.publish(in_berlin)
    await live.publish(in_hamburg)

    assert heard(desk) == [in_berlin]
    assert heard(other_desk) == [in_hamburg]
    assert heard(admin) == [in_berlin, in_hamburg]
    assert heard(ana) == [in_berlin]
    assert heard(stranger) == []


async def test_a_fact_without_a_location_is_placed_by_what_came_before_or_by_booking_once() -> None:
    booking = Booking()
    live = hub(booking)
    desk = Stream(ORG, frozenset({BERLIN}), None)
    live.open(desk)
    heard(desk)
    seen, unseen = uuid.uuid4(), uuid.uuid4()
    booking.places[unseen] = Place(BERLIN, BEN)

    await live.publish(booked(seen, BERLIN, ANA))
    await live.publish(cancelled(seen))
    assert [f.event for f in heard(desk) if isinstance(f, Fact)] == [
        "Appointment.Booked",
        "Appointment.Cancelled",
    ]
    assert booking.asked == 0

    await live.publish(cancelled(unseen))
    await live.publish(cancelled(unseen, version=3))
    assert len(heard(desk)) == 2
    assert booking.asked == 1


async def test_booking_is_not_asked_when_every_open_stream_sees_the_whole_organisation() -> None:
    booking = Booking()
    live = hub(booking)
    admin = Stream(ORG, None, None)
    live.open(admin)
    heard(admin)

    await live.publish(cancelled(uuid.uuid4()))

    assert len(heard(admin)) == 1
    assert booking.asked == 0


async def test_a_fact_booking_cannot_place_reaches_only_the_organisation_wide_streams() -> None:
    live = hub(Booking())
    desk, admin = Stream(ORG, frozenset({BERLIN}), None), Stream(ORG, None, None)
    for stream in (desk, admin):
        live.open(stream)
        heard(stream)

    await live.publish(cancelled(uuid.uuid4()))

    assert heard(desk) == []
    assert len(heard(admin)) == 1


def test_streams_hear_when_the_reader_pauses_and_resumes_and_a_new_one_hears_how_it_stands() -> (
    None
):
    live = hub()
    early = Stream(ORG, None, None)
    live.open(early)
    live.connected(True)
    live.connected(True)  # no news: nothing said
    late = Stream(ORG, None, None)
    live.open(late)
    live.connected(False)

    assert heard(early) == ["paused", "live", "paused"]
    assert heard(late) == ["live", "paused"]
    assert frame("paused") == "event: paused\ndata: {}\n\n"


@pytest.mark.parametrize("extra", [0, 10])
async def test_a_stream_too_far_behind_is_marked_to_be_closed(extra: int) -> None:
    from clinic.gateway.live import QUEUE

    live = hub()
    slow = Stream(ORG, None, None)
    live.open(slow)
    for _ in range(QUEUE - 1 + extra):
        await live.publish(booked(uuid.uuid4(), BERLIN, ANA))
    assert slow.overflowed is (extra > 0)
    live.close(slow)
    assert live.streams == set()


def test_the_hub_counts_a_users_open_streams_within_their_organisation() -> None:
    live = hub()
    tabs = [Stream(ORG, None, None, user="desk-1") for _ in range(2)]
    for stream in (
        *tabs,
        Stream(ORG, None, None, user="desk-2"),
        Stream(OTHER_ORG, None, None, user="desk-1"),
    ):
        live.open(stream)
    assert live.streams_of(ORG, "desk-1") == 2
    live.close(tabs[0])
    assert live.streams_of(ORG, "desk-1") == 1
    assert live.streams_of(ORG, "nobody") == 0
