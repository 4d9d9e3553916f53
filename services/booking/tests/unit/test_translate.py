"""Domain events become integration events by pure translation."""

import datetime as dt
import json
import uuid

from scenario import MONDAY, PATIENT, Clock, at, build_clinic

from clinic.booking.application import Bookings
from clinic.booking.commands import CancelAppointment, ConfirmAppointment, Reschedule
from clinic.booking.outbox import EventLog, OutboxReader
from clinic.booking.translate import event_id
from clinic.events import Envelope


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


def test_only_patient_events_carry_personal_data() -> None:
    clock = Clock(at(MONDAY, 7) - dt.timedelta(days=3))
    app = Bookings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    clinic = build_clinic(app, clock)
    clinic.book("consult", at(MONDAY, 9))
    for env in translated(app):
        text = json.dumps(env.payload)
        carries = "Pat0" in text or "p0@example.org" in text
        if env.type != "Patient.Registered":
            assert not carries, env.type
        assert "Pat0" not in json.dumps(env.headers())
