"""The JSON views of booking's aggregates: what commands answer (and what a handled request
stores to answer a repeat with) and what queries return."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from clinic.booking.domain.appointment import Appointment
from clinic.booking.domain.reference import AppointmentType, Location, Patient, Resource
from clinic.booking.domain.schedule import Schedule
from clinic.booking.domain.values import Status
from clinic.booking.domain.waitlist import WaitlistEntry
from clinic.events.types import format_utc


def utc(value: dt.datetime | None) -> str | None:
    """An instant as RFC 3339 UTC with ``Z``; None stays None."""
    return None if value is None else format_utc(value)


def appointment(appointment: Appointment, now: dt.datetime) -> dict[str, Any]:
    status = appointment.current_status(now)
    cancellation = appointment.cancellation
    if status == Status.CANCELLED and appointment.status == Status.PENDING:
        cancellation = {
            "by": "system",
            "reason": "hold expired",
            "at": appointment.hold_expires_at,
        }
    return {
        "id": str(appointment.id),
        "organization_id": str(appointment.organization_id),
        "status": str(status),
        "location_id": str(appointment.location_id),
        "appointment_type_id": str(appointment.appointment_type_id),
        "patient_id": str(appointment.patient_id),
        "start": utc(appointment.start),
        "end": utc(appointment.end),
        "hold_expires_at": utc(appointment.hold_expires_at),
        "booked_by": str(appointment.booked_by),
        "note": appointment.note,
        "participants": [
            {
                "resource_id": str(p.resource_id),
                "category": str(p.category),
                "role": p.role,
                "start": utc(p.start),
                "end": utc(p.end),
            }
            for p in appointment.participants
        ],
        "cancellation": None
        if cancellation is None
        else {
            "by": str(cancellation["by"]),
            "reason": cancellation["reason"],
            "at": utc(cancellation["at"]),
        },
        "attendance_confirmed_at": utc(appointment.attendance_confirmed_at),
        "attendance_confirmed_by": (
            None
            if appointment.attendance_confirmed_by is None
            else str(appointment.attendance_confirmed_by)
        ),
        "version": appointment.version,
    }


def location(location: Location) -> dict[str, Any]:
    return {
        "id": str(location.id),
        "organization_id": str(location.organization_id),
        "name": location.name,
        "address": location.address,
        "time_zone": location.time_zone,
        "retired": location.retired,
        "version": location.version,
    }


def resource(resource: Resource) -> dict[str, Any]:
    return {
        "id": str(resource.id),
        "organization_id": str(resource.organization_id),
        "category": str(resource.category),
        "name": resource.name,
        "kind": resource.kind,
        "specialties": list(resource.specialties),
        "languages": list(resource.languages),
        "location_ids": [str(i) for i in resource.location_ids],
        "time_zone": resource.time_zone,
        "overbooking_allowance": resource.overbooking_allowance,
        "retired": resource.retired,
        "version": resource.version,
    }


def appointment_type(kind: AppointmentType) -> dict[str, Any]:
    return {
        "id": str(kind.id),
        "organization_id": str(kind.organization_id),
        "name": kind.name,
        "duration_minutes": int(kind.duration.total_seconds() // 60),
        "steps": [
            {
                "name": s.name,
                "offset_minutes": s.offset_minutes,
                "duration_minutes": s.duration_minutes,
                "requirements": [
                    {
                        "role": r.role,
                        "category": str(r.category),
                        "resource_id": str(r.resource_id) if r.resource_id else None,
                        "kind": r.kind,
                        "specialty": r.specialty,
                    }
                    for r in s.requirements
                ],
            }
            for s in kind.steps
        ],
        "buffer_before_minutes": int(kind.buffer_before.total_seconds() // 60),
        "buffer_after_minutes": int(kind.buffer_after.total_seconds() // 60),
        "seats": kind.seats,
        "minimum_notice_minutes": int(kind.minimum_notice.total_seconds() // 60),
        "maximum_horizon_days": kind.maximum_horizon.days,
        "cancellation_cutoff_minutes": int(kind.cancellation_cutoff.total_seconds() // 60),
        "patient_bookable": kind.patient_bookable,
        "preparation": kind.preparation,
        "specialty": kind.specialty,
        "reschedule_cutoff_minutes": int(kind.reschedule_cutoff.total_seconds() // 60),
        "reminder_plan": [
            {"before_minutes": r.before_minutes, "channel": r.channel} for r in kind.reminder_plan
        ],
        "patient_facing": {
            language: dataclasses.asdict(text) for language, text in kind.patient_facing.items()
        },
        "retired": kind.retired,
        "version": kind.version,
    }


def patient(patient: Patient) -> dict[str, Any]:
    return {
        "id": str(patient.id),
        "organization_id": str(patient.organization_id),
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "birth_date": patient.birth_date.isoformat(),
        "gender": patient.gender,
        "address": dataclasses.asdict(patient.address) if patient.address else None,
        "contacts": [
            {"system": c.system, "value": c.value, "use": c.use} for c in patient.contacts
        ],
        "time_zone": patient.time_zone,
        "preferred_channel": patient.preferred_channel,
        "language": patient.language,
        "consent": {"sms": patient.consent_sms, "email": patient.consent_email},
        "identifiers": [{"system": i.system, "value": i.value} for i in patient.identifiers],
        "merged_into": str(patient.merged_into) if patient.merged_into else None,
        "merged_ids": [str(m) for m in patient.merged_ids],
        "version": patient.version,
    }


def schedule(schedule: Schedule) -> dict[str, Any]:
    return {
        "resource_id": str(schedule.resource_id),
        "weekly_hours": [
            {
                "location_id": str(h.location_id),
                "weekday": h.weekday,
                "start": h.start.isoformat("minutes"),
                "end": h.end.isoformat("minutes"),
                "effective_from": h.effective_from.isoformat() if h.effective_from else None,
                "effective_until": h.effective_until.isoformat() if h.effective_until else None,
            }
            for h in schedule.weekly_hours
        ],
        "exceptions": [
            {
                "id": str(e.id),
                "kind": str(e.kind),
                "start": utc(e.start),
                "end": utc(e.end),
                "location_id": str(e.location_id) if e.location_id else None,
                "reason": e.reason,
            }
            for e in sorted(schedule.exceptions.values(), key=lambda e: e.start)
        ],
        "version": schedule.version,
    }


def waitlist_entry(entry: WaitlistEntry) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "organization_id": str(entry.organization_id),
        "status": "waitlist" if entry.active else "left",
        "patient_id": str(entry.patient_id),
        "appointment_type_id": str(entry.appointment_type_id),
        "location_ids": [str(i) for i in entry.location_ids],
        "earliest": entry.earliest.isoformat(),
        "latest": entry.latest.isoformat(),
        "times_of_day": list(entry.times_of_day),
        "provider_id": str(entry.provider_id) if entry.provider_id else None,
        "note": entry.note,
        "priority": entry.priority,
        "weekdays": list(entry.weekdays),
        "joined_at": utc(entry.joined_at),
    }
