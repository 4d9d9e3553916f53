"""The bridge's projection as pure data: each booking event becomes row operations on the
tables its FHIR resources are written from (``clinic.platform.rows``). The same operations
are applied to PostgreSQL by the live consumer and to memory by the property tests, so
"replay equals incremental" is checked on the code that runs.

The tables keep booking's facts, not FHIR: reference data as the last whole record its
events carried (``data``), a patient's whole record, an appointment's time, place, status and
participants, a resource's weekly hours and exceptions, and the claims of appointments on
resources' days (busy Slots). ``resources.py`` writes FHIR from them.

Operations never read other aggregates' rows, so the tables do not depend on the order in
which different aggregates' events arrive.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from clinic.events import Envelope, EventPayload
from clinic.events import appointments as appt
from clinic.events import patients as pat
from clinic.events import reference as ref
from clinic.events import resource_days as days
from clinic.events import schedules as sch
from clinic.platform.rows import Op, Rows, RowSchema, UpdateWhere, Upsert, storable

COLUMNS: dict[str, tuple[str, ...]] = {
    "organizations": ("organization_id", "data"),
    "locations": ("location_id", "organization_id", "data", "retired"),
    "resources": ("resource_id", "organization_id", "category", "data", "retired"),
    "appointment_types": ("appointment_type_id", "organization_id", "data", "retired"),
    "hours": ("resource_id", "organization_id", "hours"),
    "exceptions": (
        "exception_id",
        "resource_id",
        "organization_id",
        "kind",
        "start_at",
        "end_at",
        "location_id",
        "removed",
    ),
    "patients": ("patient_id", "organization_id", "record"),
    "appointments": (
        "appointment_id",
        "organization_id",
        "patient_id",
        "location_id",
        "appointment_type_id",
        "status",
        "start_at",
        "end_at",
        "created_at",
        "hold_expires_at",
        "participants",
        "cancel_reason",
        "attendance_confirmed",
        "version",
    ),
    "claims": (
        "resource_id",
        "local_date",
        "appointment_id",
        "organization_id",
        "slot_id",
        "start_at",
        "end_at",
        "seats",
        "capacity",
        "overbooked",
        "held",
        "released",
    ),
}
KEYS: dict[str, tuple[str, ...]] = {
    table: ("resource_id", "local_date", "appointment_id") if table == "claims" else columns[:1]
    for table, columns in COLUMNS.items()
}
SCHEMA = RowSchema(KEYS, COLUMNS, frozenset({"data", "hours", "record", "participants"}))

SLOTS = uuid.UUID("6f1c2a52-1d8e-4f8e-9a57-3c1b8e0f0d11")
"""Namespace of the ids of busy Slots (name: ``{resource}/{session or appointment}``)."""


def slot_id(resource_id: uuid.UUID, key: str) -> str:
    """The Slot an appointment's claim on a resource shows as: one per appointment, or one
    per group session, which several appointments share."""
    return str(uuid.uuid5(SLOTS, f"{resource_id}/{key}"))


def plan(envelope: Envelope) -> list[Op]:
    """The row operations one event makes (none for events the bridge does not show), with
    free text in a form PostgreSQL can store."""
    return [
        Upsert(op.table, storable(op.row)) if isinstance(op, Upsert) else op
        for op in _plan(envelope)
    ]


def _data(payload: EventPayload) -> dict[str, Any]:
    return payload.model_dump(mode="json")


def _plan(envelope: Envelope) -> list[Op]:
    payload: EventPayload = envelope.typed_payload()
    org = envelope.organization_id
    if isinstance(payload, ref.OrganizationRegistered):
        return [Upsert("organizations", {"organization_id": org, "data": _data(payload)})]
    if isinstance(payload, ref.LocationRegistered):  # and Updated: the whole location
        row = {
            "location_id": payload.location_id,
            "organization_id": org,
            "data": _data(payload),
            "retired": False,
        }
        return [Upsert("locations", row)]
    if isinstance(payload, ref.LocationRetired):
        return [UpdateWhere("locations", (payload.location_id,), {"retired": True})]
    if isinstance(payload, ref.ResourceRegistered):  # and Updated: the whole resource
        row = {
            "resource_id": payload.resource_id,
            "organization_id": org,
            "category": payload.category,
            "data": _data(payload),
            "retired": False,
        }
        return [Upsert("resources", row)]
    if isinstance(payload, ref.ResourceRetired):
        return [UpdateWhere("resources", (payload.resource_id,), {"retired": True})]
    if isinstance(payload, ref.AppointmentTypeDefined):  # and Updated: the whole type
        row = {
            "appointment_type_id": payload.appointment_type_id,
            "organization_id": org,
            "data": _data(payload),
            "retired": False,
        }
        return [Upsert("appointment_types", row)]
    if isinstance(payload, ref.AppointmentTypeRetired):
        return [UpdateWhere("appointment_types", (payload.appointment_type_id,), {"retired": True})]
    if isinstance(payload, pat._PatientEvent):
        record = payload.patient.model_dump(mode="json")
        return [
            Upsert(
                "patients",
                {"patient_id": payload.patient_id, "organization_id": org, "record": record},
            )
        ]
    if isinstance(payload, sch.WeeklyHoursSet):
        hours = [h.model_dump(mode="json") for h in payload.hours]
        return [
            Upsert(
                "hours",
                {"resource_id": payload.resource_id, "organization_id": org, "hours": hours},
            )
        ]
    if isinstance(payload, sch.ScheduleExceptionAdded):
        row = {
            "exception_id": payload.exception_id,
            "resource_id": payload.resource_id,
            "organization_id": org,
            "kind": payload.kind,
            "start_at": payload.start,
            "end_at": payload.end,
            "location_id": payload.location_id,
            "removed": False,
        }
        return [Upsert("exceptions", row)]
    if isinstance(payload, sch.ScheduleExceptionRemoved):
        return [UpdateWhere("exceptions", (payload.exception_id,), {"removed": True})]
    if isinstance(payload, days._ResourceDayEvent):
        return _claim(envelope, payload)
    if isinstance(payload, appt._AppointmentEvent):
        return _appointment(envelope, payload)
    return []


def _claim(envelope: Envelope, payload: days._ResourceDayEvent) -> list[Op]:
    key = (payload.resource_id, payload.local_date, payload.appointment_id)
    if isinstance(payload, days.TimeClaimed):
        row = {
            "resource_id": payload.resource_id,
            "local_date": payload.local_date,
            "appointment_id": payload.appointment_id,
            "organization_id": envelope.organization_id,
            "slot_id": slot_id(payload.resource_id, payload.session or str(payload.appointment_id)),
            "start_at": payload.start,
            "end_at": payload.end,
            "seats": payload.seats,
            "capacity": payload.capacity,
            "overbooked": payload.overbooked,
            "held": payload.hold_expires_at is not None,
            "released": False,
        }
        return [Upsert("claims", row)]
    if isinstance(payload, days.ClaimConfirmed):
        return [UpdateWhere("claims", key, {"held": False})]
    if isinstance(payload, days.TimeReleased):
        return [UpdateWhere("claims", key, {"released": True})]
    return []


def _participants(payload: appt._AppointmentTime) -> list[dict[str, str]]:
    return [
        {"kind": p.resource_kind, "resource_id": str(p.resource_id), "role": p.role}
        for p in payload.participants
    ]


def _appointment(envelope: Envelope, payload: appt._AppointmentEvent) -> list[Op]:
    aid = payload.appointment_id
    version = {"version": envelope.aggregate_version}
    if isinstance(payload, appt.AppointmentBooked) and payload.from_hold:
        return [
            UpdateWhere(
                "appointments", (aid,), {"status": "booked", "hold_expires_at": None, **version}
            )
        ]
    if isinstance(payload, (appt.AppointmentHeld, appt.AppointmentBooked)):
        held = isinstance(payload, appt.AppointmentHeld)
        row = {
            "appointment_id": aid,
            "organization_id": envelope.organization_id,
            "patient_id": payload.patient_id,
            "location_id": payload.location_id,
            "appointment_type_id": payload.appointment_type_id,
            "status": "pending" if held else "booked",
            "start_at": payload.start,
            "end_at": payload.end,
            "created_at": envelope.occurred_at,
            "hold_expires_at": payload.expires_at if held else None,  # type: ignore[union-attr]
            "participants": _participants(payload),
            "cancel_reason": None,
            "attendance_confirmed": False,
            **version,
        }
        return [Upsert("appointments", row)]
    if isinstance(payload, appt.AppointmentRescheduled):
        moved = {
            "start_at": payload.start,
            "end_at": payload.end,
            "location_id": payload.location_id,
            "participants": _participants(payload),
        }
        return [UpdateWhere("appointments", (aid,), {**moved, **version})]
    if isinstance(payload, appt.AppointmentCancelled):
        cancelled = {
            "status": "cancelled",
            "hold_expires_at": None,
            "cancel_reason": payload.reason or None,
        }
        return [UpdateWhere("appointments", (aid,), {**cancelled, **version})]
    if isinstance(payload, appt.AppointmentHoldExpired):
        lapsed = {"status": "cancelled", "hold_expires_at": None, "cancel_reason": "hold expired"}
        return [UpdateWhere("appointments", (aid,), {**lapsed, **version})]
    if isinstance(payload, appt.AppointmentAttendanceConfirmed):
        return [UpdateWhere("appointments", (aid,), {"attendance_confirmed": True, **version})]
    if isinstance(payload, appt.AppointmentStatusChanged):
        return [UpdateWhere("appointments", (aid,), {"status": str(payload.status), **version})]
    return [UpdateWhere("appointments", (aid,), version)]


class Tables(Rows):
    """The projection's tables held in memory."""

    def __init__(self) -> None:
        super().__init__(KEYS)

    def replay(self, envelopes: Iterable[Envelope]) -> None:
        self.replay_with(envelopes, plan)
