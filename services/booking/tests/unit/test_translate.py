"""Domain events become integration events by pure translation."""

import datetime as dt
import json
import uuid

import pytest
from scenario import MONDAY, PATIENT, Clock, at, build_clinic

from clinic.booking.application import Bookings
from clinic.booking.commands import (
    CancelAppointment,
    ConfirmAppointment,
    ConfirmAttendance,
    JoinWaitlist,
    MergePatients,
    RecordPatientIdentifier,
    RegisterResource,
    Reschedule,
    SetPatientPreferences,
    UpdatePatientDetails,
    UpdateResource,
)
from clinic.booking.domain import errors
from clinic.booking.domain.values import Category, Identifier
from clinic.booking.outbox import EventLog, OutboxReader
from clinic.booking.translate import event_id
from clinic.events import Envelope
from clinic.events.appointments import AppointmentAttendanceConfirmed
from clinic.events.waitlist import WaitlistJoined


def translated(app: Bookings) -> list[Envelope]:
    _, batch = OutboxReader(EventLog.of(app)).read(0, 100_000)
    return [e for _, e in batch if e is not None]


def test_every_lifecycle_step_has_an_integration_event_with_a_stable_id() -> None:
    clock = Clock(at(MONDAY, 7) - dt.timedelta(days=3))
    app = Bookings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    clinic = build_clinic(app, clock)
    held = uuid.UUID(clinic.hold("scan", at(MONDAY, 9))["id"])
    clinic.do(ConfirmAppointment, appointment_id=held)
    clinic.do(
        Reschedule,
        appointment_id=held,
        start=at(MONDAY, 11),
    )
    clinic.do(CancelAppointment, appointment_id=held, context=PATIENT, reason="better")
    envelopes = translated(app)
    types = [e.type for e in envelopes]
    for expected in (
        "Organization.Registered",
        "Location.Registered",
        "Resource.Registered",
        "Schedule.WeeklyHoursSet",
        "AppointmentType.Defined",
        "Patient.Registered",
        "Appointment.Held",
        "Appointment.Booked",
        "Appointment.Rescheduled",
        "Appointment.Cancelled",
        "ResourceDay.TimeClaimed",
        "ResourceDay.ClaimConfirmed",
        "ResourceDay.TimeReleased",
    ):
        assert expected in types, expected
    booked = next(e for e in envelopes if e.type == "Appointment.Booked")
    assert booked.payload["from_hold"] is True
    assert booked.payload["location_id"] == str(clinic.location)
    assert {e.organization_id for e in envelopes} == {clinic.org}
    for env in envelopes:
        assert env.event_id == event_id(env.aggregate_id, env.aggregate_version)
        env.typed_payload()  # every payload validates against its registered model


def test_a_patients_confirmation_of_attendance_is_published_once_as_its_own_event() -> None:
    clock = Clock(at(MONDAY, 7) - dt.timedelta(days=1))
    app = Bookings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    clinic = build_clinic(app, clock)
    visit = uuid.UUID(clinic.book("consult", at(MONDAY, 9))["id"])
    clinic.do(ConfirmAttendance, appointment_id=visit, context=PATIENT)
    clinic.do(ConfirmAttendance, appointment_id=visit, context=PATIENT)  # nothing new

    mine = [e for e in translated(app) if e.aggregate_id == visit]

    assert [(e.type, e.aggregate_version) for e in mine] == [
        ("Appointment.Booked", 1),
        ("Appointment.AttendanceConfirmed", 2),
    ]
    confirmed = mine[1]
    assert confirmed.topic() == "booking.appointments.v1"
    assert confirmed.payload == {
        "appointment_id": str(visit),
        "confirmed_at": "2026-03-01T06:00:00Z",
        "confirmed_by": "patient",
    }
    assert confirmed.typed_payload() == AppointmentAttendanceConfirmed(
        appointment_id=visit, confirmed_at=clock.now, confirmed_by="patient"
    )
    assert confirmed.actor is not None
    assert (confirmed.actor.user_id, confirmed.actor.role) == ("patient-42", "patient")


def test_only_the_patients_topic_carries_personal_data() -> None:
    clock = Clock(at(MONDAY, 7) - dt.timedelta(days=3))
    app = Bookings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    clinic = build_clinic(app, clock)
    clinic.book("consult", at(MONDAY, 9))
    carried = set()
    for env in translated(app):
        text = json.dumps(env.payload)
        if "Pat0" in text or "p0@example.org" in text:
            carried.add((env.type, env.topic()))
        assert "Pat0" not in json.dumps(env.headers())
        assert "Pat0" not in str(env.key())
    assert carried == {("Patient.Registered", "booking.patients.v1")}


def test_every_patient_change_publishes_the_whole_record_on_the_patients_topic() -> None:
    clock = Clock(at(MONDAY, 7) - dt.timedelta(days=3))
    app = Bookings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    clinic = build_clinic(app, clock)
    survivor, duplicate = clinic.patients[0], clinic.patients[1]
    clinic.do(UpdatePatientDetails, patient_id=survivor, changes={"gender": "female"})
    clinic.do(SetPatientPreferences, patient_id=survivor, consent_sms=True)
    mrn = Identifier("https://emr.example/mrn", "4711")
    clinic.do(RecordPatientIdentifier, patient_id=survivor, identifier=mrn)
    clinic.do(MergePatients, survivor_id=survivor, duplicate_id=duplicate)

    patient_events = [e for e in translated(app) if e.type.startswith("Patient.")]

    assert [(e.type, e.schema_version) for e in patient_events if e.aggregate_id == survivor] == [
        ("Patient.Registered", 2),
        ("Patient.DetailsUpdated", 1),
        ("Patient.PreferencesUpdated", 2),
        ("Patient.IdentifierRecorded", 1),
    ]
    assert {e.topic() for e in patient_events} == {"booking.patients.v1"}
    last = patient_events[-1]
    assert (last.type, last.aggregate_id) == ("Patient.Merged", duplicate)
    assert last.payload["survivor_id"] == str(survivor)
    assert last.payload["patient"]["merged_into"] == str(survivor)
    recorded = next(e for e in patient_events if e.type == "Patient.IdentifierRecorded")
    assert recorded.payload["patient"]["gender"] == "female"
    assert recorded.payload["patient"]["consent"] == {"sms": True, "email": False}
    assert recorded.payload["identifier"] == {"system": "https://emr.example/mrn", "value": "4711"}
    for env in patient_events:
        env.typed_payload()


def test_a_waitlist_entry_is_published_with_its_rank_and_the_days_the_patient_can_come() -> None:
    clock = Clock(at(MONDAY, 7) - dt.timedelta(days=3))
    app = Bookings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    clinic = build_clinic(app, clock)
    wish = {
        "patient_id": clinic.patients[0],
        "appointment_type_id": clinic.types["consult"],
        "location_ids": (clinic.location,),
        "earliest": MONDAY,
        "latest": MONDAY + dt.timedelta(days=14),
    }
    ranked = uuid.UUID(clinic.do(JoinWaitlist, **wish, priority=2, weekdays=(5, 1)).body["id"])
    unranked = uuid.UUID(clinic.do(JoinWaitlist, **wish).body["id"])

    joined = {e.aggregate_id: e for e in translated(app) if e.type == "Waitlist.Joined"}

    assert joined[ranked].topic() == "booking.waitlist.v1"
    assert (joined[ranked].payload["priority"], joined[ranked].payload["weekdays"]) == (2, [1, 5])
    typed = joined[ranked].typed_payload()
    assert isinstance(typed, WaitlistJoined)
    assert (typed.priority, typed.weekdays) == (2, (1, 5))
    assert (joined[unranked].payload["priority"], joined[unranked].payload["weekdays"]) == (5, [])


def test_a_providers_languages_travel_with_the_whole_resource_and_a_room_speaks_none() -> None:
    clock = Clock(at(MONDAY, 7) - dt.timedelta(days=3))
    app = Bookings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    clinic = build_clinic(app, clock)
    registered = clinic.do(
        RegisterResource,
        category=Category.PROVIDER,
        resource_name="Dr. Yilmaz",
        kind="physician",
        languages=("de", "tr", "de"),
        location_ids=(clinic.location,),
    ).body
    assert registered["languages"] == ["de", "tr"]  # each once, in the order given
    doctor = uuid.UUID(registered["id"])
    changed = clinic.do(UpdateResource, resource_id=doctor, languages=("tr", "de", "en")).body
    assert changed["languages"] == ["tr", "de", "en"]
    again = clinic.do(UpdateResource, resource_id=doctor, languages=("tr", "de", "en"))
    assert again.body["version"] == changed["version"]  # nothing changed, nothing recorded

    published = [
        e
        for e in translated(app)
        if e.type.startswith("Resource.") and e.payload.get("resource_id") == str(doctor)
    ]
    # Registered, then Updated once the languages are set (each event as the resource was).
    assert [(e.type, e.payload["languages"]) for e in published] == [
        ("Resource.Registered", []),
        ("Resource.Updated", ["de", "tr"]),
        ("Resource.Updated", ["tr", "de", "en"]),
    ]
    with pytest.raises(errors.InvalidRequestError):
        clinic.do(UpdateResource, resource_id=clinic.rooms[0], languages=("en",))
