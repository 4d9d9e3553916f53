"""The bridge's FHIR resources follow booking's facts: replaying every event from scratch
gives the same resources as the incremental build, whatever the order across aggregates and
however often events are redelivered; each version is valid R4 and numbered from 1."""

import datetime as dt
import uuid

from bridge_history import MRN, Booked, History
from hypothesis import given, settings
from hypothesis import strategies as st

from clinic.devstack.testing import interleave
from clinic.emr_bridge.fhir import validated
from clinic.emr_bridge.resources import Resources, content, replay
from clinic.events import Envelope
from clinic.events import appointments as appt


def current(resources: Resources) -> dict[tuple[str, str], object]:
    return {ref: v.body and content(v.body) for ref, v in resources.current.items()}


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    steps=st.integers(0, 60),
    order=st.integers(0, 2**32),
    redelivered=st.lists(st.integers(0, 500), max_size=10),
)
def test_replay_from_scratch_equals_the_incremental_build(
    seed: int, steps: int, order: int, redelivered: list[int]
) -> None:
    events = History(seed).play(steps)
    delivered = list(events)
    for position in redelivered:
        original = events[position % len(events)]
        again = delivered.index(original) + 1 + position % 7
        delivered.insert(min(again, len(delivered)), original)

    tables, incremental = replay(delivered)
    replayed_tables, replayed = replay(interleave(events, order))

    assert replayed_tables.rows == tables.rows
    assert current(replayed) == current(incremental)
    for versions in incremental.history.values():
        assert [v.version for v in versions] == list(range(1, len(versions) + 1))
        for v in versions:
            if v.body is not None:
                validated(v.body)
                assert v.body["meta"]["versionId"] == str(v.version)


def by_type(resources: Resources, kind: str) -> dict[str, dict[str, object]]:
    return {
        rid: v.body for (t, rid), v in resources.current.items() if t == kind and v.body is not None
    }


def test_every_kind_of_booking_fact_shows_as_its_fhir_resource() -> None:
    history = History(11)
    _, resources = replay(history.play(200))

    [org] = by_type(resources, "Organization").values()
    assert org["name"] == "Charité"
    places = by_type(resources, "Location")
    assert places[str(history.location)]["address"]["city"] == "Berlin"
    room = places[str(history.room)]
    assert room["partOf"] == {"reference": f"Location/{history.location}"}
    assert room["physicalType"]["coding"][0]["code"] == "ro"
    assert set(by_type(resources, "Practitioner")) == {str(history.doctor)}
    assert set(by_type(resources, "PractitionerRole")) == {str(history.doctor)}
    assert set(by_type(resources, "Device")) == {str(history.device)}
    schedules = by_type(resources, "Schedule")
    assert set(schedules) == {str(history.doctor), str(history.room), str(history.device)}
    assert "Mon 08:00-16:00" in schedules[str(history.doctor)]["comment"]
    assert len(by_type(resources, "HealthcareService")) == 2

    patients = by_type(resources, "Patient")
    for pid, record in history.records.items():
        assert patients[str(pid)]["name"][0]["family"] == record.family_name
        assert patients[str(pid)]["identifier"][0]["system"] == MRN

    appointments = by_type(resources, "Appointment")
    for aid, booked in history.appointments.items():
        served = appointments[str(aid)]
        assert served["status"] == booked.status
        assert served["start"] == booked.time["start"].isoformat().replace("+00:00", "Z")
        actors = {p["actor"]["reference"] for p in served["participant"]}
        assert f"Practitioner/{history.doctor}" in actors
        assert f"Location/{history.room}" in actors

    slots = by_type(resources, "Slot")
    live = [b for b in history.appointments.values() if b.status not in ("cancelled",)]
    busy = [s for s in slots.values() if s["status"] in ("busy", "busy-tentative")]
    assert busy
    assert len(busy) <= 3 * len(live)
    assert {s["status"] for s in slots.values()} <= {"busy", "busy-tentative", "busy-unavailable"}


def test_a_versions_lastupdated_is_when_booking_recorded_the_fact_and_history_keeps_all() -> None:
    history = History(3)
    history.play(0)
    history.register()
    history.book(held=True, group=False)
    [aid] = history.appointments
    history.change(6)  # the hold is booked
    history.change(8)  # and cancelled
    _, resources = replay(history.events)

    versions = resources.history[("Appointment", str(aid))]
    assert [v.body["status"] for v in versions if v.body] == ["pending", "booked", "cancelled"]
    recorded = [e.occurred_at for e in history.events if e.aggregate_id == aid]
    assert [v.last_updated for v in versions] == recorded
    slots = [ref for ref in resources.history if ref[0] == "Slot"]
    assert slots
    assert all(resources.current[ref].body is None for ref in slots)


def test_a_group_sessions_appointments_share_one_slot_showing_the_seats_taken() -> None:
    history = History(5)
    history.play(0)
    history.register()
    history.book(held=False, group=True)
    [first] = history.appointments.values()
    second = uuid.uuid4()
    joining = Booked({**first.time, "appointment_id": second}, "booked", first.session)
    history.wrap(second, appt.AppointmentBooked(**joining.time))
    history.claim(second, joining, held=False)
    _, resources = replay(history.events)

    doctors = [
        s
        for s in by_type(resources, "Slot").values()
        if s["schedule"]["reference"] == f"Schedule/{history.doctor}"
    ]
    assert len(doctors) == 1
    assert doctors[0]["comment"] == "2 of 4 seats taken"


def test_an_unchanged_resource_gets_no_new_version() -> None:
    history = History(9)
    events = history.play(0)
    again: list[Envelope] = [
        e.model_copy(
            update={"aggregate_version": 2, "occurred_at": e.occurred_at + dt.timedelta(days=1)}
        )
        for e in events
        if e.aggregate_id == history.org
    ]
    _, resources = replay(events + again)
    assert len(resources.history[("Organization", str(history.org))]) == 1
