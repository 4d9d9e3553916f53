"""Appointment lifecycle events, on ``booking.appointments.v1``.

Patient details: these events carry ``patient_id`` only. The notification and EMR services
need names and contacts; they get them from ``booking.patients.v1``, the one topic that
carries personal data (never in keys or headers).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from clinic.events.payload import EventPayload
from clinic.events.topics import Topic
from clinic.events.types import UtcDateTime


class AppointmentStatus(StrEnum):
    """One-to-one with FHIR R4 Appointment.status."""

    PROPOSED = "proposed"
    PENDING = "pending"
    BOOKED = "booked"
    ARRIVED = "arrived"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    NOSHOW = "noshow"
    ENTERED_IN_ERROR = "entered-in-error"
    CHECKED_IN = "checked-in"
    WAITLIST = "waitlist"


class CancelledBy(StrEnum):
    PATIENT = "patient"
    CLINIC = "clinic"
    SYSTEM = "system"


class Participant(BaseModel):
    """One resource's share of an appointment: which resource, in which role, when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resource_id: UUID
    resource_kind: str = Field(description="provider, room or device")
    role: str = Field(description="The requirement this resource fills, e.g. 'physician'.")
    start: UtcDateTime
    end: UtcDateTime


class _AppointmentEvent(EventPayload):
    topic: ClassVar[Topic] = Topic.APPOINTMENTS

    appointment_id: UUID


class _AppointmentTime(_AppointmentEvent):
    location_id: UUID
    appointment_type_id: UUID
    patient_id: UUID
    start: UtcDateTime
    end: UtcDateTime
    participants: tuple[Participant, ...]


class AppointmentHeld(_AppointmentTime):
    """Time is held for a patient until ``expires_at`` (FHIR status ``pending``)."""

    event_type: ClassVar[str] = "Appointment.Held"
    expires_at: UtcDateTime


class AppointmentBooked(_AppointmentTime):
    """The appointment is booked (FHIR status ``booked``), directly or by confirming a hold."""

    event_type: ClassVar[str] = "Appointment.Booked"
    from_hold: bool = False


class AppointmentRescheduled(_AppointmentTime):
    """Every claim of the appointment moved at once to the new time."""

    event_type: ClassVar[str] = "Appointment.Rescheduled"
    previous_start: UtcDateTime
    previous_end: UtcDateTime


class AppointmentHoldExpired(_AppointmentTime):
    """A hold ran out unconfirmed (FHIR status ``cancelled``): its time is free again.

    Recorded by booking's hold sweeper within a bounded delay of ``expired_at``; the time
    was free to new bookings from ``expired_at`` on, whether or not this was recorded yet.
    It carries the time it held, so a waitlist can offer it and a calendar can clear it."""

    event_type: ClassVar[str] = "Appointment.HoldExpired"
    expired_at: UtcDateTime


class AppointmentCancelled(_AppointmentEvent):
    """The appointment was cancelled and its time released."""

    event_type: ClassVar[str] = "Appointment.Cancelled"
    cancelled_by: CancelledBy
    reason: str


class AppointmentStatusChanged(_AppointmentEvent):
    """Check-in, arrival, completion, no-show: the status moved without touching time."""

    event_type: ClassVar[str] = "Appointment.StatusChanged"
    status: AppointmentStatus
    previous_status: AppointmentStatus


class AppointmentAttendanceConfirmed(_AppointmentEvent):
    """The patient confirmed they will come to the booked appointment (FHIR: the patient
    participant's status becomes ``accepted``; Appointment.status stays ``booked``).

    Recorded at most once per appointment, only while it is booked and before its start:
    from a reminder's link or SMS reply, or told to the clinic (the patient phoned).
    ``confirmed_by``: the side that recorded it: ``patient`` (the patient's own channel),
    ``clinic`` (staff), ``system`` (a platform service acting on its own)."""

    event_type: ClassVar[str] = "Appointment.AttendanceConfirmed"
    confirmed_at: UtcDateTime
    confirmed_by: Literal["patient", "clinic", "system"] = Field(
        description="Who recorded it: patient, clinic (staff) or system."
    )
