"""Domain events -> integration events (``clinic.events``): pure functions.

Each function takes the domain event and the aggregate as it stands right after that event,
and returns the payload to publish, or None for facts that stay inside booking (directory
bookkeeping, a schedule or day being opened). The envelope's ``event_id`` is derived from
the aggregate id and version, so a republished event keeps its id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from clinic.booking.domain.appointment import Appointment
from clinic.booking.domain.reference import (
    AppointmentType,
    Location,
    Organization,
    Patient,
    PatientIdentifier,
    Resource,
)
from clinic.booking.domain.resource_day import ResourceDay
from clinic.booking.domain.schedule import Schedule
from clinic.booking.domain.values import Claim, Participant
from clinic.booking.domain.waitlist import WaitlistEntry
from clinic.events import Actor, Envelope, EventPayload, TraceContext
from clinic.events import appointments as ev_appointments
from clinic.events import patients as ev_patients
from clinic.events import reference as ev_reference
from clinic.events import resource_days as ev_days
from clinic.events import schedules as ev_schedules
from clinic.events import waitlist as ev_waitlist

EVENT_NAMESPACE = uuid5(NAMESPACE_URL, "https://clinic.example/events")

Translator = Callable[[Any, Any], EventPayload | None]


def event_id(aggregate_id: UUID, version: int) -> UUID:
    return uuid5(EVENT_NAMESPACE, f"{aggregate_id}/{version}")


def organization_of(aggregate: Any) -> UUID:
    if isinstance(aggregate, Organization):
        return UUID(str(aggregate.id))
    return UUID(str(aggregate.organization_id))


def _participants(participants: tuple[Participant, ...]) -> tuple[ev_appointments.Participant, ...]:
    return tuple(
        ev_appointments.Participant(
            resource_id=p.resource_id,
            resource_kind=str(p.category),
            role=p.role,
            start=p.start,
            end=p.end,
        )
        for p in participants
    )


def _time(appointment: Appointment) -> dict[str, Any]:
    return {
        "appointment_id": appointment.id,
        "location_id": appointment.location_id,
        "appointment_type_id": appointment.appointment_type_id,
        "patient_id": appointment.patient_id,
        "start": appointment.start,
        "end": appointment.end,
        "participants": _participants(appointment.participants),
    }


def _appointment(event: Any, appointment: Appointment) -> EventPayload | None:
    name = type(event).__name__
    if name == "Held":
        assert appointment.hold_expires_at is not None
        return ev_appointments.AppointmentHeld(
            **_time(appointment), expires_at=appointment.hold_expires_at
        )
    if name == "Booked":
        return ev_appointments.AppointmentBooked(**_time(appointment), from_hold=False)
    if name == "HoldConfirmed":
        return ev_appointments.AppointmentBooked(**_time(appointment), from_hold=True)
    if name == "Rescheduled":
        return ev_appointments.AppointmentRescheduled(
            **_time(appointment),
            previous_start=event.previous_start,
            previous_end=event.previous_end,
        )
    if name == "HoldExpired":
        return ev_appointments.AppointmentHoldExpired(
            **_time(appointment), expired_at=event.expired_at
        )
    if name == "Cancelled":
        return ev_appointments.AppointmentCancelled(
            appointment_id=appointment.id,
            cancelled_by=ev_appointments.CancelledBy(str(event.cancelled_by)),
            reason=event.reason,
        )
    if name == "AttendanceConfirmed":
        return ev_appointments.AppointmentAttendanceConfirmed(
            appointment_id=appointment.id,
            confirmed_at=event.confirmed_at,
            confirmed_by=str(event.confirmed_by),
        )
    if name in ("CheckedIn", "Arrived", "Fulfilled", "MarkedNoShow", "EnteredInError"):
        previous = appointment.history[-1][0] if appointment.history else appointment.status
        return ev_appointments.AppointmentStatusChanged(
            appointment_id=appointment.id,
            status=ev_appointments.AppointmentStatus(str(appointment.status)),
            previous_status=ev_appointments.AppointmentStatus(str(previous)),
        )
    return None


def _claim(day: ResourceDay, claim: Claim) -> ev_days.TimeClaimed:
    return ev_days.TimeClaimed(
        resource_id=day.resource_id,
        local_date=day.local_date,
        appointment_id=claim.appointment_id,
        role=claim.role,
        start=claim.start,
        end=claim.end,
        blocked_from=claim.blocked_from,
        blocked_until=claim.blocked_until,
        seats=claim.seats,
        session=claim.session,
        capacity=claim.capacity,
        overbooked=claim.overbooked,
        hold_expires_at=claim.hold_expires_at,
    )


def _resource_day(event: Any, day: ResourceDay) -> EventPayload | None:
    name = type(event).__name__
    if name == "TimeClaimed":
        return _claim(day, event.claim)
    if name == "ClaimConfirmed":
        return ev_days.ClaimConfirmed(
            resource_id=day.resource_id,
            local_date=day.local_date,
            appointment_id=event.appointment_id,
        )
    if name in ("TimeReleased", "HoldLapsed"):
        reason = event.reason if name == "TimeReleased" else "hold lapsed"
        return ev_days.TimeReleased(
            resource_id=day.resource_id,
            local_date=day.local_date,
            appointment_id=event.appointment_id,
            reason=reason,
        )
    return None


def _schedule(event: Any, schedule: Schedule) -> EventPayload | None:
    name = type(event).__name__
    if name == "WeeklyHoursSet":
        return ev_schedules.WeeklyHoursSet(
            resource_id=schedule.resource_id,
            hours=tuple(
                ev_schedules.WeeklyHoursSpec(
                    location_id=h.location_id,
                    weekday=h.weekday,
                    start=h.start,
                    end=h.end,
                    effective_from=h.effective_from,
                    effective_until=h.effective_until,
                )
                for h in schedule.weekly_hours
            ),
        )
    if name == "ExceptionAdded":
        exception = event.exception
        return ev_schedules.ScheduleExceptionAdded(
            resource_id=schedule.resource_id,
            exception_id=exception.id,
            kind=str(exception.kind),
            start=exception.start,
            end=exception.end,
            location_id=exception.location_id,
        )
    if name == "ExceptionRemoved":
        return ev_schedules.ScheduleExceptionRemoved(
            resource_id=schedule.resource_id, exception_id=event.exception_id
        )
    return None


def _reference(event: Any, aggregate: Any) -> EventPayload | None:
    name = type(event).__name__
    if isinstance(aggregate, Organization):
        if name == "Registered":
            return ev_reference.OrganizationRegistered(
                organization_id=aggregate.id, name=aggregate.name
            )
        return None
    if isinstance(aggregate, Location):
        if name == "Retired":
            return ev_reference.LocationRetired(location_id=aggregate.id, reason=event.reason)
        location = (
            ev_reference.LocationUpdated if name == "Updated" else ev_reference.LocationRegistered
        )
        return location(
            location_id=aggregate.id,
            name=aggregate.name,
            time_zone=aggregate.time_zone,
            address={str(k): str(v) for k, v in aggregate.address.items()},
        )
    if isinstance(aggregate, Resource):
        if name == "OverbookingAllowanceSet":
            return ev_reference.OverbookingAllowanceSet(
                resource_id=aggregate.id, allowance=aggregate.overbooking_allowance
            )
        if name == "Retired":
            return ev_reference.ResourceRetired(resource_id=aggregate.id, reason=event.reason)
        resource = (
            ev_reference.ResourceRegistered
            if name == "Registered"
            else ev_reference.ResourceUpdated  # Updated, LanguagesSet: the whole resource
        )
        return resource(
            resource_id=aggregate.id,
            category=str(aggregate.category),
            name=aggregate.name,
            kind=aggregate.kind,
            specialties=aggregate.specialties,
            location_ids=aggregate.location_ids,
            time_zone=aggregate.time_zone,
            overbooking_allowance=aggregate.overbooking_allowance,
            languages=aggregate.languages,
        )
    if isinstance(aggregate, AppointmentType):
        if name == "Retired":
            return ev_reference.AppointmentTypeRetired(
                appointment_type_id=aggregate.id, reason=event.reason
            )
        defined = (
            ev_reference.AppointmentTypeUpdated
            if name == "Updated"
            else ev_reference.AppointmentTypeDefined
        )
        return defined(
            appointment_type_id=aggregate.id,
            name=aggregate.name,
            steps=tuple(
                ev_reference.StepSpec(
                    name=s.name,
                    offset_minutes=s.offset_minutes,
                    duration_minutes=s.duration_minutes,
                    requirements=tuple(
                        ev_reference.RequirementSpec(
                            role=r.role,
                            category=str(r.category),
                            resource_id=r.resource_id,
                            kind=r.kind,
                            specialty=r.specialty,
                        )
                        for r in s.requirements
                    ),
                )
                for s in aggregate.steps
            ),
            buffer_before_minutes=_minutes(aggregate.buffer_before),
            buffer_after_minutes=_minutes(aggregate.buffer_after),
            seats=aggregate.seats,
            minimum_notice_minutes=_minutes(aggregate.minimum_notice),
            maximum_horizon_days=aggregate.maximum_horizon.days,
            cancellation_cutoff_minutes=_minutes(aggregate.cancellation_cutoff),
            patient_bookable=aggregate.patient_bookable,
            preparation=aggregate.preparation,
            specialty=aggregate.specialty,
            reschedule_cutoff_minutes=aggregate.reschedule_cutoff_minutes,
            reminder_plan=tuple(
                ev_reference.ReminderSpec(before_minutes=r.before_minutes, channel=r.channel)
                for r in aggregate.reminder_plan
            ),
            patient_facing={
                language: ev_reference.PatientFacingText(
                    name=t.name, description=t.description, preparation=t.preparation
                )
                for language, t in aggregate.patient_facing.items()
            },
        )
    return None


def patient_record(patient: Patient) -> ev_patients.PatientRecord:
    address = patient.address
    return ev_patients.PatientRecord(
        given_name=patient.given_name,
        family_name=patient.family_name,
        birth_date=patient.birth_date,
        gender=ev_patients.AdministrativeGender(patient.gender),
        address=(
            ev_patients.Address(
                lines=address.lines,
                city=address.city,
                district=address.district,
                state=address.state,
                postal_code=address.postal_code,
                country=address.country,
            )
            if address is not None
            else None
        ),
        contacts=tuple(
            ev_patients.ContactPoint(system=c.system, value=c.value, use=c.use)
            for c in patient.contacts
        ),
        preferred_channel=patient.preferred_channel,
        language=patient.language,
        consent=ev_patients.Consent(sms=patient.consent_sms, email=patient.consent_email),
        time_zone=patient.time_zone,
        identifiers=tuple(
            ev_patients.Identifier(system=i.system, value=i.value) for i in patient.identifiers
        ),
        merged_into=patient.merged_into,
    )


def _patient(event: Any, patient: Patient) -> EventPayload | None:
    name = type(event).__name__
    record = {"patient_id": patient.id, "patient": patient_record(patient)}
    if name == "Registered":
        return ev_patients.PatientRegistered(**record)
    if name == "DetailsUpdated":
        return ev_patients.PatientDetailsUpdated(**record, changed=tuple(event.changed))
    if name == "PreferencesUpdated":
        return ev_patients.PatientPreferencesUpdated(**record)
    if name == "IdentifierRecorded":
        identifier = ev_patients.Identifier(
            system=event.identifier.system, value=event.identifier.value
        )
        return ev_patients.PatientIdentifierRecorded(**record, identifier=identifier)
    if name == "MergedInto":
        return ev_patients.PatientMerged(**record, survivor_id=event.survivor_id)
    return None  # DuplicateAbsorbed: the duplicate's Patient.Merged says it


def _waitlist(event: Any, entry: WaitlistEntry) -> EventPayload | None:
    if type(event).__name__ == "Joined":
        return ev_waitlist.WaitlistJoined(
            entry_id=entry.id,
            patient_id=entry.patient_id,
            appointment_type_id=entry.appointment_type_id,
            location_ids=entry.location_ids,
            earliest=entry.earliest,
            latest=entry.latest,
            times_of_day=entry.times_of_day,
            provider_id=entry.provider_id,
            joined_at=entry.joined_at,
            priority=entry.priority,
            weekdays=entry.weekdays,
        )
    left = entry.left or {}
    return ev_waitlist.WaitlistLeft(
        entry_id=entry.id, reason=str(left.get("reason", "")), left_at=left["at"]
    )


def _minutes(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 60)


def translate(event: Any, aggregate: Any) -> EventPayload | None:
    """The integration payload for one domain event, given the aggregate right after it."""
    if isinstance(aggregate, Appointment):
        return _appointment(event, aggregate)
    if isinstance(aggregate, ResourceDay):
        return _resource_day(event, aggregate)
    if isinstance(aggregate, Schedule):
        return _schedule(event, aggregate)
    if isinstance(aggregate, WaitlistEntry):
        return _waitlist(event, aggregate)
    if isinstance(aggregate, Patient):
        return _patient(event, aggregate)
    if isinstance(aggregate, PatientIdentifier):
        return None  # the patient's IdentifierRecorded says it
    return _reference(event, aggregate)


def envelope(event: Any, aggregate: Any) -> Envelope | None:
    """The envelope to publish for one domain event, or None when it stays inside booking."""
    payload = translate(event, aggregate)
    if payload is None:
        return None
    aggregate_id = UUID(str(event.originator_id))
    metadata: dict[str, str] = getattr(event, "metadata", None) or {}
    return Envelope.wrap(
        payload,
        event_id=event_id(aggregate_id, event.originator_version),
        aggregate_id=aggregate_id,
        aggregate_version=event.originator_version,
        occurred_at=event.timestamp,
        organization_id=organization_of(aggregate),
        correlation_id=_uuid(metadata.get("correlation_id")),
        causation_id=_uuid(metadata.get("causation_id")),
        trace=(
            TraceContext(traceparent=metadata["traceparent"], tracestate=metadata.get("tracestate"))
            if metadata.get("traceparent")
            else None
        ),
        actor=(
            Actor(
                user_id=metadata["actor_id"],
                role=metadata.get("actor_role", "system"),
                channel=metadata.get("channel", "internal"),
            )
            if metadata.get("actor_id")
            else None
        ),
    )


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None
