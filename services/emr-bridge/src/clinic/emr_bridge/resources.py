"""Which FHIR resources an event changes, each written again from the projection's rows, and
versioned (pure).

After an event's row operations are applied, every resource it may have changed
(``affected``) is written again (``render``); when its content differs from the stored
version, the new content becomes the next version (``revision``): ``meta.versionId`` counts
the resource's versions from 1, ``meta.lastUpdated`` is when booking recorded the fact. A
resource that no longer exists (a busy Slot whose claims were all released, blocked time
that was removed) gets a version that marks it deleted: a read answers 410 Gone, its history
keeps every version.

Which FHIR resource a booking thing becomes:

- an organisation -> Organization; a clinic location -> Location;
- a provider -> Practitioner and PractitionerRole; a room -> Location (physical type room,
  part of its clinic); a device -> Device; each resource -> Schedule (same id);
- an appointment type -> HealthcareService; a patient -> Patient; an appointment ->
  Appointment (``pending`` while held);
- an appointment's claim on a resource's day -> a busy Slot (``busy-tentative`` while held;
  one Slot per group session, shared by its appointments); blocked time, leave and holidays
  -> ``busy-unavailable`` Slots. Free time is not a stored Slot: it is availability's answer
  at the moment asked, which ``Appointment/$find`` gives.

The same functions serve the live consumer (over rows it loads, ``store.snapshot``) and the
property tests (over the whole projection in memory).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from clinic.emr_bridge import fhir
from clinic.emr_bridge.projection import Tables, plan
from clinic.events import Envelope, EventPayload
from clinic.events import appointments as appt
from clinic.events import patients as pat
from clinic.events import reference as ref
from clinic.events import resource_days as days
from clinic.events import schedules as sch

Ref = tuple[str, str]
"""(resource type, id)."""

RESOURCE_KINDS = ("Practitioner", "PractitionerRole", "Location", "Device", "Schedule")
"""What a booking resource (provider, room or device) may show as."""


class State(Protocol):
    """Rows of the projection's tables, by key or by a column's value."""

    def row(self, table: str, key: tuple[Any, ...]) -> dict[str, Any] | None: ...

    def where(self, table: str, column: str, value: Any) -> list[dict[str, Any]]: ...


@dataclass
class Snapshot:
    """Some or all rows of the projection (``State``)."""

    rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = field(default_factory=dict)

    def row(self, table: str, key: tuple[Any, ...]) -> dict[str, Any] | None:
        return self.rows.get(table, {}).get(key)

    def where(self, table: str, column: str, value: Any) -> list[dict[str, Any]]:
        return [r for r in self.rows.get(table, {}).values() if r.get(column) == value]

    def add(self, table: str, key: tuple[Any, ...], row: dict[str, Any]) -> None:
        self.rows.setdefault(table, {})[key] = row


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


# -- which resources an event changes ------------------------------------------------------------


def affected(envelope: Envelope, state: State) -> list[Ref]:
    """The resources ``envelope`` may have changed, read after its operations were applied
    (a renamed appointment type shows in its appointments; a released claim's Slot is found
    from the claim)."""
    payload: EventPayload = envelope.typed_payload()
    if isinstance(payload, ref.OrganizationRegistered):
        return [("Organization", str(envelope.organization_id))]
    if isinstance(payload, (ref.LocationRegistered, ref.LocationRetired)):
        return [("Location", str(payload.location_id))]
    if isinstance(payload, (ref.ResourceRegistered, ref.ResourceRetired)):
        return [(kind, str(payload.resource_id)) for kind in RESOURCE_KINDS]
    if isinstance(payload, (ref.AppointmentTypeDefined, ref.AppointmentTypeRetired)):
        type_id = payload.appointment_type_id
        ids = sorted(
            str(r["appointment_id"])
            for r in state.where("appointments", "appointment_type_id", type_id)
        )
        return [("HealthcareService", str(type_id))] + [("Appointment", a) for a in ids]
    if isinstance(payload, pat._PatientEvent):
        return [("Patient", str(payload.patient_id))]
    if isinstance(payload, appt._AppointmentEvent):
        return [("Appointment", str(payload.appointment_id))]
    if isinstance(payload, sch.WeeklyHoursSet):
        return [("Schedule", str(payload.resource_id))]
    if isinstance(payload, (sch.ScheduleExceptionAdded, sch.ScheduleExceptionRemoved)):
        return [("Slot", str(payload.exception_id))]
    if isinstance(payload, days._ResourceDayEvent):
        key = (payload.resource_id, payload.local_date, payload.appointment_id)
        claim = state.row("claims", key)
        return [("Slot", str(claim["slot_id"]))] if claim else []
    return []


# -- writing a resource from the rows ------------------------------------------------------------


def render(
    reference: Ref, state: State, version: int, at: dt.datetime
) -> tuple[UUID, dict[str, Any]] | None:
    """The organisation and the resource as the rows show it now, or None when the rows
    hold no such resource."""
    kind, rid = reference
    key = _uuid(rid)
    if key is None:
        return None
    if kind == "Organization":
        row = state.row("organizations", (key,))
        if row is None:
            return None
        event = ref.OrganizationRegistered.model_validate(row["data"])
        return row["organization_id"], fhir.organization(event, version, at)
    if kind == "HealthcareService":
        row = state.row("appointment_types", (key,))
        if row is None:
            return None
        kind_event = ref.AppointmentTypeDefined.model_validate(row["data"])
        org = row["organization_id"]
        return org, fhir.healthcare_service(kind_event, org, version, at, row["retired"])
    if kind == "Patient":
        row = state.row("patients", (key,))
        if row is None:
            return None
        record = pat.PatientRecord.model_validate(row["record"])
        org = row["organization_id"]
        return org, fhir.patient(key, record, org, version, at)
    if kind == "Appointment":
        return _appointment(key, state, version, at)
    if kind == "Slot":
        return _slot(rid, state, version, at)
    if kind == "Location":
        row = state.row("locations", (key,))
        if row is not None:
            place = ref.LocationRegistered.model_validate(row["data"])
            org = row["organization_id"]
            return org, fhir.location(place, org, version, at, row["retired"])
    return _resource(kind, key, state, version, at)


def _resource(
    kind: str, key: UUID, state: State, version: int, at: dt.datetime
) -> tuple[UUID, dict[str, Any]] | None:
    row = state.row("resources", (key,))
    if row is None:
        return None
    event = ref.ResourceRegistered.model_validate(row["data"])
    org, retired, category = row["organization_id"], row["retired"], row["category"]
    if kind == "Schedule":
        hours = state.row("hours", (key,))
        return org, fhir.schedule(event, hours["hours"] if hours else [], version, at, retired)
    if kind == "Practitioner" and category == "provider":
        return org, fhir.practitioner(event, version, at, retired)
    if kind == "PractitionerRole" and category == "provider":
        return org, fhir.practitioner_role(event, org, version, at, retired)
    if kind == "Location" and category == "room":
        return org, fhir.room(event, org, version, at, retired)
    if kind == "Device" and category == "device":
        return org, fhir.device(event, org, version, at, retired)
    return None


def _appointment(
    key: UUID, state: State, version: int, at: dt.datetime
) -> tuple[UUID, dict[str, Any]] | None:
    row = state.row("appointments", (key,))
    if row is None:
        return None
    kind = state.row("appointment_types", (row["appointment_type_id"],))
    data = kind["data"] if kind else {}
    appointment = fhir.AppointmentState(
        appointment_id=key,
        organization_id=row["organization_id"],
        patient_id=row["patient_id"],
        location_id=row["location_id"],
        appointment_type_id=row["appointment_type_id"],
        type_name=str(data.get("name") or ""),
        status=row["status"],
        start=row["start_at"],
        end=row["end_at"],
        created=row["created_at"],
        participants=tuple(
            (p["kind"], UUID(p["resource_id"]), p["role"]) for p in row["participants"]
        ),
        cancellation_reason=row["cancel_reason"],
        attendance_confirmed=row["attendance_confirmed"],
        specialty=data.get("specialty"),
    )
    return row["organization_id"], fhir.appointment(appointment, version, at)


BLOCKING = {"leave": "Leave", "holiday": "Holiday", "blocked": "Blocked time"}


def _slot(
    rid: str, state: State, version: int, at: dt.datetime
) -> tuple[UUID, dict[str, Any]] | None:
    blocked = state.row("exceptions", (UUID(rid),))
    if blocked is not None:
        if blocked["removed"] or blocked["kind"] not in BLOCKING:
            return None
        return blocked["organization_id"], fhir.slot(
            rid,
            blocked["resource_id"],
            "busy-unavailable",
            blocked["start_at"],
            blocked["end_at"],
            version,
            at,
            comment=BLOCKING[blocked["kind"]],
        )
    claims = [c for c in state.where("claims", "slot_id", rid) if not c["released"]]
    if not claims:
        return None
    first = claims[0]
    taken = sum(c["seats"] for c in claims)
    capacity = max(c["capacity"] for c in claims)
    status = "busy" if any(not c["held"] for c in claims) else "busy-tentative"
    comment = f"{taken} of {capacity} seats taken" if capacity > 1 else None
    return first["organization_id"], fhir.slot(
        rid,
        first["resource_id"],
        status,
        min(c["start_at"] for c in claims),
        max(c["end_at"] for c in claims),
        version,
        at,
        overbooked=any(c["overbooked"] for c in claims),
        comment=comment,
    )


# -- versions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """One version of a resource; ``body`` None marks it deleted."""

    resource_type: str
    id: str
    organization_id: UUID
    version: int
    last_updated: dt.datetime
    body: dict[str, Any] | None

    @property
    def ref(self) -> Ref:
        return (self.resource_type, self.id)


def content(body: dict[str, Any]) -> dict[str, Any]:
    """A resource without its ``meta``: what a new version must change."""
    return {k: v for k, v in body.items() if k != "meta"}


def revision(
    reference: Ref, state: State, current: Version | None, at: dt.datetime
) -> Version | None:
    """The next version of ``reference`` when the rows changed it, else None."""
    number = current.version + 1 if current else 1
    rendered = render(reference, state, number, at)
    if rendered is None:
        if current is None or current.body is None:
            return None
        return Version(*reference, current.organization_id, number, at, None)
    org, body = rendered
    before = current.body if current is not None else None
    if before is not None and content(before) == content(body):
        return None
    return Version(*reference, org, number, at, body)


@dataclass
class Resources:
    """Every resource's versions, in memory (the tests' model of the stored ones)."""

    current: dict[Ref, Version] = field(default_factory=dict)
    history: dict[Ref, list[Version]] = field(default_factory=dict)

    def add(self, version: Version) -> None:
        self.current[version.ref] = version
        self.history.setdefault(version.ref, []).append(version)


def replay(envelopes: Iterable[Envelope]) -> tuple[Tables, Resources]:
    """The projection and its resources from ``envelopes``, each applied once by
    (aggregate, version), as the consumer does."""
    tables, resources = Tables(), Resources()
    state = Snapshot(tables.rows)
    seen: set[tuple[UUID, int]] = set()
    for envelope in envelopes:
        key = (envelope.aggregate_id, envelope.aggregate_version)
        if key in seen:
            continue
        seen.add(key)
        tables.apply(plan(envelope))
        for reference in affected(envelope, state):
            version = revision(
                reference, state, resources.current.get(reference), envelope.occurred_at
            )
            if version is not None:
                resources.add(version)
    return tables, resources
