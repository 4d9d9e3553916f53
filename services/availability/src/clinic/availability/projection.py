"""The availability projection as pure data: each booking event becomes row operations on
a handful of tables. The same operations are applied to PostgreSQL by the live consumer, to
memory by a rebuild (then copied out in bulk), and to memory by the property tests, so
"replay equals incremental" is checked on the code that runs.

Each table's rows are keyed by a tuple; operations never read other aggregates' rows, so
the result does not depend on the order in which different aggregates' events arrive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clinic.events import Envelope, EventPayload
from clinic.events import reference as ref
from clinic.events import resource_days as days
from clinic.events import schedules as sched

TABLES: dict[str, tuple[str, ...]] = {
    "locations": ("location_id",),
    "resources": ("resource_id",),
    "appointment_types": ("appointment_type_id",),
    "weekly_hours": ("resource_id",),
    "schedule_exceptions": ("resource_id", "exception_id"),
    "claims": ("resource_id", "local_date", "appointment_id", "role"),
}
"""Every table of the projection and its key columns."""


@dataclass(frozen=True)
class Upsert:
    table: str
    row: dict[str, Any]

    def key(self) -> tuple[Any, ...]:
        row = self.row
        return tuple([row[c] for c in TABLES[self.table]])


@dataclass(frozen=True)
class DeleteWhere:
    """Delete rows whose first key columns equal ``prefix``."""

    table: str
    prefix: tuple[Any, ...]


@dataclass(frozen=True)
class UpdateWhere:
    table: str
    prefix: tuple[Any, ...]
    changes: dict[str, Any]


Op = Upsert | DeleteWhere | UpdateWhere


@dataclass(frozen=True)
class Change:
    """What an event touched, so the in-memory index reloads just that."""

    kind: str  # resource | schedule | claims | type | location | rebuild (reload all)
    id: Any


def storable(value: Any) -> Any:
    """Text as PostgreSQL can store it: NUL (which it refuses) and lone surrogates (which
    UTF-8 cannot carry) become U+FFFD. Booking refuses both, but one bad field from any
    producer must not keep a location, provider or type out of search: it is stored with
    the character replaced, and the rest of the fact kept."""
    if isinstance(value, str):
        if value.isascii():
            return value.replace("\x00", "\ufffd") if "\x00" in value else value
        return "".join("\ufffd" if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items()}
    return value


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
    return [], []


@dataclass
class Tables:
    """The projection held in memory: table -> key -> row, with rows grouped by all key
    columns but the last, so prefix operations (release every claim of an appointment on a
    day) touch only that group."""

    rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = field(
        default_factory=lambda: {name: {} for name in TABLES}
    )
    groups: dict[str, dict[tuple[Any, ...], set[tuple[Any, ...]]]] = field(
        default_factory=lambda: {name: {} for name in TABLES}
    )

    def _keys(self, table: str, prefix: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        width = len(TABLES[table])
        if len(prefix) == width:
            return [prefix] if prefix in self.rows[table] else []
        if len(prefix) == width - 1:
            return list(self.groups[table].get(prefix, ()))
        return [k for k in self.rows[table] if k[: len(prefix)] == prefix]

    def apply(self, ops: Iterable[Op]) -> None:
        rows, groups = self.rows, self.groups
        for op in ops:
            table = rows[op.table]
            if type(op) is Upsert:
                key = op.key()
                table[key] = op.row  # operations own their rows
                group = groups[op.table].get(key[:-1])
                if group is None:
                    groups[op.table][key[:-1]] = {key}
                else:
                    group.add(key)
            elif type(op) is DeleteWhere:
                for key in self._keys(op.table, op.prefix):
                    del table[key]
                    group = groups[op.table].get(key[:-1])
                    if group is not None:
                        group.discard(key)
                        if not group:
                            del groups[op.table][key[:-1]]
            else:
                assert isinstance(op, UpdateWhere)
                for key in self._keys(op.table, op.prefix):
                    table[key] = {**table[key], **op.changes}

    def replay(self, envelopes: Iterable[Envelope]) -> None:
        """Apply events once each by (aggregate_id, aggregate_version), like the consumer."""
        seen: set[tuple[Any, int]] = set()
        for envelope in envelopes:
            key = (envelope.aggregate_id, envelope.aggregate_version)
            if key in seen:
                continue
            seen.add(key)
            self.apply(plan(envelope)[0])
