"""The availability projection as pure data: each booking event becomes row operations on
a handful of tables. The same operations are applied to PostgreSQL by the live consumer, to
memory by a rebuild (then copied out in bulk), and to memory by the property tests, so
"replay equals incremental" is checked on the code that runs.

Each table's rows are keyed by a tuple; operations never read other aggregates' rows, so
the result does not depend on the order in which different aggregates' events arrive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from clinic.events import Envelope, EventPayload
from clinic.events import appointments as appt
from clinic.events import reference as ref
from clinic.events import resource_days as days
from clinic.events import schedules as sched
from clinic.platform.rows import DeleteWhere, Op, Rows, UpdateWhere, Upsert, storable

TABLES: dict[str, tuple[str, ...]] = {
    "locations": ("location_id",),
    "resources": ("resource_id",),
    "appointment_types": ("appointment_type_id",),
    "weekly_hours": ("resource_id",),
    "schedule_exceptions": ("resource_id", "exception_id"),
    "claims": ("resource_id", "local_date", "appointment_id", "role"),
    "appointments": ("appointment_id",),
    "appointment_resources": ("appointment_id", "role"),
    "appointment_events": ("appointment_id", "version"),
}
"""Every table of the projection and its key columns. The first six are the free-time index's
(kept in memory); the last three the calendars' (read with SQL): one row per appointment as
it stands, the resources it holds, and one row per fact of its life (for the KPIs)."""


@dataclass(frozen=True)
class Change:
    """What an event touched, so the in-memory index reloads just that."""

    kind: str  # resource | schedule | claims | type | location | rebuild (reload all)
    id: Any


def plan(envelope: Envelope) -> tuple[list[Op], list[Change]]:
    """The row operations one event makes, with reference text in a storable form."""
    ops, changes = _plan(envelope)
    if envelope.type.split(".", 1)[0] in TEXT_CARRYING:
        ops = [Upsert(op.table, storable(op.row)) if isinstance(op, Upsert) else op for op in ops]
    return ops, changes


TEXT_CARRYING = frozenset({"Location", "Resource", "AppointmentType"})
"""Aggregates whose events carry free text (names, kinds, specialties, preparation)."""


def _plan(envelope: Envelope) -> tuple[list[Op], list[Change]]:
    """The row operations for one event (none for events availability does not need)."""
    payload: EventPayload = envelope.typed_payload()
    org = envelope.organization_id
    if isinstance(payload, ref.LocationRegistered):
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
        ], [Change("location", payload.location_id)]
    if isinstance(payload, ref.LocationRetired):
        return [UpdateWhere("locations", (payload.location_id,), {"retired": True})], [
            Change("location", payload.location_id)
        ]
    if isinstance(payload, ref.ResourceRegistered):
        return [
            Upsert(
                "resources",
                {
                    "resource_id": payload.resource_id,
                    "organization_id": org,
                    "category": payload.category,
                    "name": payload.name,
                    "kind": payload.kind,
                    "specialties": list(payload.specialties),
                    "location_ids": list(payload.location_ids),
                    "time_zone": payload.time_zone,
                    "retired": False,
                    "languages": list(payload.languages),
                },
            )
        ], [Change("resource", payload.resource_id)]
    if isinstance(payload, ref.ResourceRetired):
        return [UpdateWhere("resources", (payload.resource_id,), {"retired": True})], [
            Change("resource", payload.resource_id)
        ]
    if isinstance(payload, ref.AppointmentTypeDefined):
        definition = payload.model_dump(mode="json", exclude={"appointment_type_id", "name"})
        return [
            Upsert(
                "appointment_types",
                {
                    "appointment_type_id": payload.appointment_type_id,
                    "organization_id": org,
                    "name": payload.name,
                    "definition": definition,
                    "retired": False,
                },
            )
        ], [Change("type", payload.appointment_type_id)]
    if isinstance(payload, ref.AppointmentTypeRetired):
        return [
            UpdateWhere("appointment_types", (payload.appointment_type_id,), {"retired": True})
        ], [Change("type", payload.appointment_type_id)]
    if isinstance(payload, sched.WeeklyHoursSet):
        hours = [h.model_dump(mode="json") for h in payload.hours]
        return [Upsert("weekly_hours", {"resource_id": payload.resource_id, "hours": hours})], [
            Change("schedule", payload.resource_id)
        ]
    if isinstance(payload, sched.ScheduleExceptionAdded):
        return [
            Upsert(
                "schedule_exceptions",
                {
                    "resource_id": payload.resource_id,
                    "exception_id": payload.exception_id,
                    "kind": payload.kind,
                    "starts_at": payload.start,
                    "ends_at": payload.end,
                    "location_id": payload.location_id,
                },
            )
        ], [Change("schedule", payload.resource_id)]
    if isinstance(payload, sched.ScheduleExceptionRemoved):
        return [DeleteWhere("schedule_exceptions", (payload.resource_id, payload.exception_id))], [
            Change("schedule", payload.resource_id)
        ]
    if isinstance(payload, days.TimeClaimed):
        return [
            Upsert(
                "claims",
                {
                    "resource_id": payload.resource_id,
                    "local_date": payload.local_date,
                    "appointment_id": payload.appointment_id,
                    "role": payload.role,
                    "starts_at": payload.start,
                    "ends_at": payload.end,
                    "blocked_from": payload.blocked_from,
                    "blocked_until": payload.blocked_until,
                    "seats": payload.seats,
                    "session": payload.session,
                    "capacity": payload.capacity,
                    "hold_expires_at": payload.hold_expires_at,
                },
            )
        ], [Change("claims", payload.resource_id)]
    if isinstance(payload, days.ClaimConfirmed):
        prefix = (payload.resource_id, payload.local_date, payload.appointment_id)
        return [UpdateWhere("claims", prefix, {"hold_expires_at": None})], [
            Change("claims", payload.resource_id)
        ]
    if isinstance(payload, days.TimeReleased):
        prefix = (payload.resource_id, payload.local_date, payload.appointment_id)
        return [DeleteWhere("claims", prefix)], [Change("claims", payload.resource_id)]
    if isinstance(payload, appt._AppointmentEvent):
        return _appointment(envelope, payload), []
    return [], []


def _appointment(envelope: Envelope, payload: appt._AppointmentEvent) -> list[Op]:
    """The calendars' rows for one appointment event, and its fact for the KPIs."""
    aid = payload.appointment_id
    fact = Upsert(
        "appointment_events",
        {
            "appointment_id": aid,
            "version": envelope.aggregate_version,
            "organization_id": envelope.organization_id,
            "event_type": envelope.type,
            "occurred_at": envelope.occurred_at,
            "actor_role": envelope.actor.role if envelope.actor else None,
            "status": _status_after(payload),
            "correlation_id": envelope.correlation_id,
        },
    )
    ops: list[Op] = [fact]
    version = {"version": envelope.aggregate_version}
    if isinstance(payload, appt.AppointmentBooked) and payload.from_hold:
        ops.append(
            UpdateWhere(
                "appointments", (aid,), {"status": "booked", "hold_expires_at": None, **version}
            )
        )
    elif isinstance(payload, (appt.AppointmentHeld, appt.AppointmentBooked)):
        held = isinstance(payload, appt.AppointmentHeld)
        ops.append(
            Upsert(
                "appointments",
                {
                    "appointment_id": aid,
                    "organization_id": envelope.organization_id,
                    "location_id": payload.location_id,
                    "appointment_type_id": payload.appointment_type_id,
                    "patient_id": payload.patient_id,
                    "status": "pending" if held else "booked",
                    "start_at": payload.start,
                    "end_at": payload.end,
                    "hold_expires_at": payload.expires_at if held else None,  # type: ignore[union-attr]
                    "booked_at": envelope.occurred_at,
                    "cancelled_at": None,
                    "cancelled_by": None,
                    "cancel_reason": None,
                    "attendance_confirmed_at": None,
                    **version,
                },
            )
        )
        ops += _participants(envelope, payload)
    elif isinstance(payload, appt.AppointmentRescheduled):
        ops.append(
            UpdateWhere(
                "appointments",
                (aid,),
                {"start_at": payload.start, "end_at": payload.end, **version},
            )
        )
        ops += _participants(envelope, payload)
    elif isinstance(payload, appt.AppointmentCancelled):
        ops.append(
            UpdateWhere(
                "appointments",
                (aid,),
                {
                    "status": "cancelled",
                    "hold_expires_at": None,
                    "cancelled_at": envelope.occurred_at,
                    "cancelled_by": str(payload.cancelled_by),
                    "cancel_reason": payload.reason,
                    **version,
                },
            )
        )
    elif isinstance(payload, appt.AppointmentHoldExpired):
        ops.append(
            UpdateWhere(
                "appointments",
                (aid,),
                {
                    "status": "cancelled",
                    "hold_expires_at": None,
                    "cancelled_at": payload.expired_at,
                    "cancelled_by": "system",
                    "cancel_reason": "hold expired",
                    **version,
                },
            )
        )
    elif isinstance(payload, appt.AppointmentStatusChanged):
        ops.append(UpdateWhere("appointments", (aid,), {"status": str(payload.status), **version}))
    elif isinstance(payload, appt.AppointmentAttendanceConfirmed):
        ops.append(
            UpdateWhere(
                "appointments",
                (aid,),
                {"attendance_confirmed_at": payload.confirmed_at, **version},
            )
        )
    return ops


def _status_after(payload: appt._AppointmentEvent) -> str | None:
    if isinstance(payload, appt.AppointmentHeld):
        return "pending"
    if isinstance(payload, appt.AppointmentBooked):
        return "booked"
    if isinstance(payload, (appt.AppointmentCancelled, appt.AppointmentHoldExpired)):
        return "cancelled"
    if isinstance(payload, appt.AppointmentStatusChanged):
        return str(payload.status)
    return None  # rescheduled, attendance confirmed: the status stays


def _participants(envelope: Envelope, payload: appt._AppointmentTime) -> list[Op]:
    """The resources an appointment holds, replaced as a whole (a reschedule may change
    who, not only when)."""
    return [
        DeleteWhere("appointment_resources", (payload.appointment_id,)),
        *(
            Upsert(
                "appointment_resources",
                {
                    "appointment_id": payload.appointment_id,
                    "role": p.role,
                    "organization_id": envelope.organization_id,
                    "resource_id": p.resource_id,
                    "resource_kind": p.resource_kind,
                    "start_at": p.start,
                    "end_at": p.end,
                },
            )
            for p in payload.participants
        ),
    ]


class Tables(Rows):
    """The projection held in memory (see ``clinic.platform.rows.Rows``)."""

    def __init__(self) -> None:
        super().__init__(TABLES)

    def replay(self, envelopes: Iterable[Envelope]) -> None:
        """Apply events once each by (aggregate_id, aggregate_version), like the consumer."""
        self.replay_with(envelopes, lambda envelope: plan(envelope)[0])
