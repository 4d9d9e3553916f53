"""The notification projection as pure data: each booking event becomes row operations on
the tables messages are planned and written from (``clinic.platform.rows``). The same
operations are applied to PostgreSQL by the live consumer and to memory by the property
tests, so "replay equals incremental" is checked on the code that runs.

What a message needs to say, and to whom:
- ``patients``: name, contacts, preferred channel, consents, language and time zone, and
  the record a merged duplicate now belongs to (every patient event carries the whole
  record, so each one replaces the row);
- ``appointments``: who, what, where and when, and its status, as the latest event left it;
- ``appointment_types``: the reminder plan and the texts patients read, per language;
- ``locations``: name, time zone and address; ``organizations``: names;
- ``waitlist``: who waits for which type, where, when and with whom, and since when.

Operations never read other aggregates' rows, so the result does not depend on the order in
which different aggregates' events arrive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from clinic.events import Envelope, EventPayload
from clinic.events import appointments as appt
from clinic.events import patients as pat
from clinic.events import reference as ref
from clinic.events import waitlist as wl
from clinic.platform.rows import Op, Rows, RowSchema, UpdateWhere, Upsert, storable

COLUMNS: dict[str, tuple[str, ...]] = {
    "organizations": ("organization_id", "name"),
    "locations": ("location_id", "organization_id", "name", "time_zone", "address", "retired"),
    "appointment_types": (
        "appointment_type_id",
        "organization_id",
        "name",
        "preparation",
        "reminder_plan",
        "patient_facing",
        "retired",
    ),
    "patients": (
        "patient_id",
        "organization_id",
        "given_name",
        "family_name",
        "contacts",
        "preferred_channel",
        "language",
        "consent_sms",
        "consent_email",
        "time_zone",
        "merged_into",
        "version",
    ),
    "appointments": (
        "appointment_id",
        "organization_id",
        "patient_id",
        "location_id",
        "appointment_type_id",
        "status",
        "start_at",
        "end_at",
        "hold_expires_at",
        "booked_at",
        "moved_at",
        "cancelled_at",
        "cancelled_by",
        "resources",
        "attendance_confirmed_at",
        "version",
    ),
    "waitlist": (
        "entry_id",
        "organization_id",
        "patient_id",
        "appointment_type_id",
        "location_ids",
        "earliest",
        "latest",
        "times_of_day",
        "provider_id",
        "priority",
        "weekdays",
        "joined_at",
        "active",
    ),
}
KEYS: dict[str, tuple[str, ...]] = {table: columns[:1] for table, columns in COLUMNS.items()}
SCHEMA = RowSchema(
    KEYS,
    COLUMNS,
    frozenset(
        {
            "address",
            "reminder_plan",
            "patient_facing",
            "contacts",
            "resources",
            "location_ids",
            "times_of_day",
            "weekdays",
        }
    ),
)


def plan(envelope: Envelope) -> list[Op]:
    """The row operations one event makes (none for events notification does not need),
    with free text in a form PostgreSQL can store."""
    return [
        Upsert(op.table, storable(op.row)) if isinstance(op, Upsert) else op
        for op in _plan(envelope)
    ]


def _plan(envelope: Envelope) -> list[Op]:
    payload: EventPayload = envelope.typed_payload()
    org = envelope.organization_id
    if isinstance(payload, ref.OrganizationRegistered):
        return [Upsert("organizations", {"organization_id": org, "name": payload.name})]
    if isinstance(payload, ref.LocationRegistered):  # and Updated: the whole location
        return [
            Upsert(
                "locations",
                {
                    "location_id": payload.location_id,
                    "organization_id": org,
                    "name": payload.name,
                    "time_zone": payload.time_zone,
                    "address": dict(payload.address),
                    "retired": False,
                },
            )
        ]
    if isinstance(payload, ref.LocationRetired):
        return [UpdateWhere("locations", (payload.location_id,), {"retired": True})]
    if isinstance(payload, ref.AppointmentTypeDefined):  # and Updated: the whole type
        return [
            Upsert(
                "appointment_types",
                {
                    "appointment_type_id": payload.appointment_type_id,
                    "organization_id": org,
                    "name": payload.name,
                    "preparation": payload.preparation,
                    "reminder_plan": [r.model_dump(mode="json") for r in payload.reminder_plan],
                    "patient_facing": {
                        language: text.model_dump(mode="json")
                        for language, text in payload.patient_facing.items()
                    },
                    "retired": False,
                },
            )
        ]
    if isinstance(payload, ref.AppointmentTypeRetired):
        return [UpdateWhere("appointment_types", (payload.appointment_type_id,), {"retired": True})]
    if isinstance(payload, pat._PatientEvent):
        return [_patient(envelope, payload)]
    if isinstance(payload, appt._AppointmentEvent):
        return _appointment(envelope, payload)
    if isinstance(payload, wl.WaitlistJoined):
        return [
            Upsert(
                "waitlist",
                {
                    "entry_id": payload.entry_id,
                    "organization_id": org,
                    "patient_id": payload.patient_id,
                    "appointment_type_id": payload.appointment_type_id,
                    "location_ids": [str(x) for x in payload.location_ids],
                    "earliest": payload.earliest,
                    "latest": payload.latest,
                    "times_of_day": list(payload.times_of_day),
                    "provider_id": payload.provider_id,
                    "priority": payload.priority,
                    "weekdays": list(payload.weekdays),
                    "joined_at": payload.joined_at,
                    "active": True,
                },
            )
        ]
    if isinstance(payload, wl.WaitlistLeft):
        return [UpdateWhere("waitlist", (payload.entry_id,), {"active": False})]
    return []


def _resources(payload: appt._AppointmentTime) -> list[dict[str, str]]:
    """Who the appointment holds, by role: what a hold for the same time asks for."""
    return [{"role": p.role, "resource_id": str(p.resource_id)} for p in payload.participants]


def _patient(envelope: Envelope, payload: pat._PatientEvent) -> Upsert:
    record = payload.patient
    return Upsert(
        "patients",
        {
            "patient_id": payload.patient_id,
            "organization_id": envelope.organization_id,
            "given_name": record.given_name,
            "family_name": record.family_name,
            "contacts": [c.model_dump(mode="json") for c in record.contacts],
            "preferred_channel": record.preferred_channel,
            "language": record.language,
            "consent_sms": record.consent.sms,
            "consent_email": record.consent.email,
            "time_zone": record.time_zone,
            "merged_into": record.merged_into,
            "version": envelope.aggregate_version,
        },
    )


def _appointment(envelope: Envelope, payload: appt._AppointmentEvent) -> list[Op]:
    aid = payload.appointment_id
    version = {"version": envelope.aggregate_version}
    at = envelope.occurred_at
    if isinstance(payload, appt.AppointmentBooked) and payload.from_hold:
        confirmed = {"status": "booked", "hold_expires_at": None, "booked_at": at}
        return [UpdateWhere("appointments", (aid,), {**confirmed, **version})]
    if isinstance(payload, (appt.AppointmentHeld, appt.AppointmentBooked)):
        held = isinstance(payload, appt.AppointmentHeld)
        return [
            Upsert(
                "appointments",
                {
                    "appointment_id": aid,
                    "organization_id": envelope.organization_id,
                    "patient_id": payload.patient_id,
                    "location_id": payload.location_id,
                    "appointment_type_id": payload.appointment_type_id,
                    "status": "pending" if held else "booked",
                    "start_at": payload.start,
                    "end_at": payload.end,
                    "hold_expires_at": payload.expires_at if held else None,  # type: ignore[union-attr]
                    "booked_at": None if held else at,
                    "moved_at": None,
                    "cancelled_at": None,
                    "cancelled_by": None,
                    "resources": _resources(payload),
                    "attendance_confirmed_at": None,
                    **version,
                },
            )
        ]
    if isinstance(payload, appt.AppointmentRescheduled):
        changes: dict[str, Any] = {
            "start_at": payload.start,
            "end_at": payload.end,
            "location_id": payload.location_id,
            "moved_at": at,
            "resources": _resources(payload),
        }
        return [UpdateWhere("appointments", (aid,), {**changes, **version})]
    if isinstance(payload, appt.AppointmentCancelled):
        cancelled = {
            "status": "cancelled",
            "hold_expires_at": None,
            "cancelled_at": at,
            "cancelled_by": str(payload.cancelled_by),
        }
        return [UpdateWhere("appointments", (aid,), {**cancelled, **version})]
    if isinstance(payload, appt.AppointmentHoldExpired):
        lapsed = {
            "status": "cancelled",
            "hold_expires_at": None,
            "cancelled_at": payload.expired_at,
            "cancelled_by": "system",
        }
        return [UpdateWhere("appointments", (aid,), {**lapsed, **version})]
    if isinstance(payload, appt.AppointmentAttendanceConfirmed):
        confirmed = {"attendance_confirmed_at": payload.confirmed_at}
        return [UpdateWhere("appointments", (aid,), {**confirmed, **version})]
    if isinstance(payload, appt.AppointmentStatusChanged):
        return [UpdateWhere("appointments", (aid,), {"status": str(payload.status), **version})]
    return []


class Tables(Rows):
    """The projection held in memory."""

    def __init__(self) -> None:
        super().__init__(KEYS)

    def replay(self, envelopes: Iterable[Envelope]) -> None:
        """Apply events once each by (aggregate_id, aggregate_version), like the consumer."""
        self.replay_with(envelopes, plan)
