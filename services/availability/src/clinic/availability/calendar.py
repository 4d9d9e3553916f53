"""Calendars: what is booked, and what is free or blocked between, for a resource over some
days, for a location's day (every provider, room and device side by side) and for a patient.

Appointments come from the calendar tables (one row per appointment as it stands, and the
resources it holds), read with SQL by resource, location or patient; names, time zones,
working windows, exceptions and live claims come from the in-memory free-time index. Every
time is given as the UTC instant and in the local time of the place it is at.

An appointment belongs to the local day its start falls on (in the zone of the calendar's
resource or location), so a week across a daylight saving change shows each appointment
once, at the local time it was booked for. Patients are ids only: availability holds no
personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg

from clinic.availability.index import Index, LocationInfo, ResourceInfo, day_span, remove_open
from clinic.availability.search import NotKnownHereError, SearchError
from clinic.availability.store import CALENDAR_COLUMNS
from clinic.platform.paging import after, split_page

LONGEST_RANGE_DAYS = 31
LONGEST_VISIT = dt.timedelta(days=1)
"""A visit's steps all start within a day of its start (types' steps are offset by at most
a day)."""


class InvalidCalendarRangeError(SearchError):
    status = 422
    slug = "invalid-range"
    title = "The calendar's date range is not valid"


@dataclass(frozen=True)
class Filters:
    """Only appointments of these statuses and types (empty: all)."""

    statuses: frozenset[str] = frozenset()
    type_ids: frozenset[UUID] = frozenset()

    def sql(self, alias: str = "a") -> tuple[str, list[Any]]:
        where, params = "", list[Any]()
        if self.statuses:
            where += f" AND {alias}.status = ANY(%s)"
            params.append(sorted(self.statuses))
        if self.type_ids:
            where += f" AND {alias}.appointment_type_id = ANY(%s)"
            params.append(sorted(self.type_ids))
        return where, params


def utc(value: dt.datetime) -> str:
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


def local(value: dt.datetime, tz: ZoneInfo) -> str:
    return value.astimezone(tz).isoformat()


def check_range(first: dt.date, last: dt.date) -> None:
    if last < first:
        raise InvalidCalendarRangeError("the date range ends before it starts")
    if (last - first).days >= LONGEST_RANGE_DAYS:
        raise InvalidCalendarRangeError(f"a calendar shows at most {LONGEST_RANGE_DAYS} days")


def known_resource(index: Index, organization_id: UUID, resource_id: UUID) -> ResourceInfo:
    found = index.resources.get(resource_id)
    if found is None or found.organization_id != organization_id:
        raise NotKnownHereError(f"resource {resource_id} is not known here")
    return found


def known_location(index: Index, organization_id: UUID, location_id: UUID) -> LocationInfo:
    found = index.locations.get(location_id)
    if found is None or found.organization_id != organization_id:
        raise NotKnownHereError(f"location {location_id} is not known here")
    return found


# ---------------------------------------------------------------------- reading rows

APPOINTMENT_NAMES = tuple(c for c in CALENDAR_COLUMNS["appointments"] if c != "organization_id")
APPOINTMENT_COLUMNS = ", ".join(f"a.{name}" for name in APPOINTMENT_NAMES)


async def appointments_of_resources(
    conn: psycopg.AsyncConnection,
    organization_id: UUID,
    resource_ids: Sequence[UUID],
    lo: dt.datetime,
    hi: dt.datetime,
    filters: Filters,
) -> list[dict[str, Any]]:
    """Appointments starting between ``lo`` and ``hi`` that hold any of ``resource_ids``."""
    where, params = filters.sql()
    query = (
        f"SELECT {APPOINTMENT_COLUMNS} FROM appointments a WHERE a.organization_id = %s "
        "AND a.start_at >= %s AND a.start_at < %s "
        "AND a.appointment_id IN (SELECT r.appointment_id FROM appointment_resources r "
        "WHERE r.resource_id = ANY(%s) AND r.start_at >= %s AND r.start_at < %s)"
        f"{where} ORDER BY a.start_at, a.appointment_id"
    )
    # A resource's share starts at or after its appointment's start, and within a day of it.
    share_until = hi + LONGEST_VISIT
    return await _with_participants(
        conn, query, [organization_id, lo, hi, list(resource_ids), lo, share_until, *params]
    )


async def appointments_at_location(
    conn: psycopg.AsyncConnection,
    organization_id: UUID,
    location_id: UUID,
    lo: dt.datetime,
    hi: dt.datetime,
    filters: Filters,
) -> list[dict[str, Any]]:
    where, params = filters.sql()
    query = (
        f"SELECT {APPOINTMENT_COLUMNS} FROM appointments a WHERE a.organization_id = %s "
        f"AND a.location_id = %s AND a.start_at >= %s AND a.start_at < %s{where} "
        "ORDER BY a.start_at, a.appointment_id"
    )
    return await _with_participants(conn, query, [organization_id, location_id, lo, hi, *params])


async def _with_participants(
    conn: psycopg.AsyncConnection, query: str, params: list[Any]
) -> list[dict[str, Any]]:
    rows = await (await conn.execute(query, params)).fetchall()
    names = APPOINTMENT_NAMES
    found = [dict(zip(names, row, strict=True)) for row in rows]
    if not found:
        return []
    held = await (
        await conn.execute(
            "SELECT appointment_id, role, resource_id, resource_kind, start_at, end_at "
            "FROM appointment_resources WHERE appointment_id = ANY(%s) ORDER BY start_at, role",
            ([a["appointment_id"] for a in found],),
        )
    ).fetchall()
    by_appointment: dict[UUID, list[tuple[Any, ...]]] = {}
    for row in held:
        by_appointment.setdefault(row[0], []).append(row)
    for appointment in found:
        appointment["participants"] = by_appointment.get(appointment["appointment_id"], [])
    return found


# ---------------------------------------------------------------------- views


def appointment_view(index: Index, row: dict[str, Any]) -> dict[str, Any]:
    location = index.locations.get(row["location_id"])
    tz = location.tz if location else ZoneInfo("UTC")
    kind = index.types.get(row["appointment_type_id"])
    return {
        "id": str(row["appointment_id"]),
        "status": row["status"],
        "appointment_type": {
            "id": str(row["appointment_type_id"]),
            "name": kind.name if kind else None,
        },
        "location_id": str(row["location_id"]),
        "patient_id": str(row["patient_id"]),
        "start": utc(row["start_at"]),
        "end": utc(row["end_at"]),
        "local_start": local(row["start_at"], tz),
        "local_end": local(row["end_at"], tz),
        "hold_expires_at": utc(row["hold_expires_at"]) if row["hold_expires_at"] else None,
        "cancellation": (
            {
                "by": row["cancelled_by"],
                "reason": row["cancel_reason"],
                "at": utc(row["cancelled_at"]),
            }
            if row["cancelled_at"]
            else None
        ),
        "participants": [
            {
                "resource_id": str(resource_id),
                "name": _name(index, resource_id),
                "role": role,
                "kind": resource_kind,
                "start": utc(start),
                "end": utc(end),
            }
            for _, role, resource_id, resource_kind, start, end in row["participants"]
        ],
        "version": row["version"],
    }


def _name(index: Index, resource_id: UUID) -> str | None:
    resource = index.resources.get(resource_id)
    return resource.name if resource else None


def resource_view(resource: ResourceInfo) -> dict[str, Any]:
    return {
        "id": str(resource.id),
        "name": resource.name,
        "category": resource.category,
        "kind": resource.kind,
        "time_zone": resource.time_zone,
        "retired": resource.retired,
    }


def resource_day(
    index: Index,
    resource: ResourceInfo,
    day: dt.date,
    tz: ZoneInfo,
    appointments: list[dict[str, Any]],
    now: dt.datetime,
    locations: Sequence[LocationInfo],
) -> dict[str, Any]:
    """One resource's local day: its appointments starting that day, and the free and
    blocked time at ``locations`` (where it works that day)."""
    lo, hi = day_span(day, tz)
    mine = [a for a in appointments if lo <= a["start_at"] < hi]
    claimed = [(c.blocked_from, c.blocked_until) for c in index.busy(resource.id, lo, hi, now)]
    free = []
    for location in locations:
        for start, end in remove_open(index.windows(resource.id, location, day), claimed):
            if end > start:
                free.append(_span(start, end, location))
    blocked = [
        {**_span(max(e.start, lo), min(e.end, hi), None, tz), "kind": e.kind}
        | {"location_id": str(e.location_id) if e.location_id else None}
        for e in index.exceptions.get(resource.id, ())
        if e.kind != "extra" and e.start < hi and e.end > lo
    ]
    return {
        "date": day.isoformat(),
        "appointments": [appointment_view(index, a) for a in mine],
        "free": sorted(free, key=lambda s: s["start"]),
        "blocked": sorted(blocked, key=lambda s: s["start"]),
    }


def _span(
    start: dt.datetime,
    end: dt.datetime,
    location: LocationInfo | None,
    tz: ZoneInfo | None = None,
) -> dict[str, Any]:
    zone = location.tz if location else (tz or ZoneInfo("UTC"))
    span: dict[str, Any] = {
        "start": utc(start),
        "end": utc(end),
        "local_start": local(start, zone),
        "local_end": local(end, zone),
    }
    if location is not None:
        span["location_id"] = str(location.id)
    return span


def days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


async def resource_calendar(
    conn: psycopg.AsyncConnection,
    index: Index,
    organization_id: UUID,
    resource_id: UUID,
    first: dt.date,
    last: dt.date,
    filters: Filters,
    now: dt.datetime,
) -> dict[str, Any]:
    """A provider's, room's or device's days (one for a day view, seven for a week), in the
    zone its days are cut in."""
    check_range(first, last)
    resource = known_resource(index, organization_id, resource_id)
    tz = ZoneInfo(resource.time_zone)
    lo, _ = day_span(first, tz)
    _, hi = day_span(last, tz)
    rows = await appointments_of_resources(conn, organization_id, [resource.id], lo, hi, filters)
    locations = [index.locations[i] for i in sorted(resource.location_ids) if i in index.locations]
    return {
        "resource": resource_view(resource),
        "days": [
            resource_day(index, resource, d, tz, rows, now, locations) for d in days(first, last)
        ],
    }


async def location_day(
    conn: psycopg.AsyncConnection,
    index: Index,
    organization_id: UUID,
    location_id: UUID,
    day: dt.date,
    filters: Filters,
    now: dt.datetime,
) -> dict[str, Any]:
    """Every provider, room and device of a location side by side for one local day: those
    working there, and any other holding an appointment there that day."""
    location = known_location(index, organization_id, location_id)
    lo, hi = day_span(day, location.tz)
    rows = await appointments_at_location(conn, organization_id, location.id, lo, hi, filters)
    resource_ids = set(index.by_location.get(location.id, ()))
    for row in rows:
        resource_ids.update(p[2] for p in row["participants"])
    resources = sorted(
        (index.resources[r] for r in resource_ids if r in index.resources),
        key=lambda r: (r.category, r.name, str(r.id)),
    )
    by_resource: dict[UUID, list[dict[str, Any]]] = {}
    for row in rows:
        for resource_id in {p[2] for p in row["participants"]}:
            by_resource.setdefault(resource_id, []).append(row)
    columns = []
    for resource in resources:
        theirs = by_resource.get(resource.id, [])
        column = resource_day(index, resource, day, location.tz, theirs, now, [location])
        columns.append({"resource": resource_view(resource), **column})
    return {
        "location": {
            "id": str(location.id),
            "name": location.name,
            "time_zone": location.time_zone,
            "retired": location.retired,
        },
        "date": day.isoformat(),
        "resources": columns,
    }


async def patient_appointments(
    conn: psycopg.AsyncConnection,
    index: Index,
    organization_id: UUID,
    patient_id: UUID,
    since: dt.datetime | None,
    until: dt.datetime | None,
    filters: Filters,
    limit: int,
    cursor: str | None,
) -> dict[str, Any]:
    """A patient's appointments by start, a page at a time."""
    where, params = filters.sql()
    clauses = ["a.organization_id = %s", "a.patient_id = %s"]
    values: list[Any] = [organization_id, patient_id]
    if since is not None:
        clauses.append("a.end_at > %s")
        values.append(since)
    if until is not None:
        clauses.append("a.start_at < %s")
        values.append(until)
    paging, cursor_params = after(cursor, "a.start_at", "a.appointment_id")
    query = (
        f"SELECT {APPOINTMENT_COLUMNS} FROM appointments a WHERE {' AND '.join(clauses)}"
        f"{where}{paging} ORDER BY a.start_at, a.appointment_id LIMIT %s"
    )
    rows = await _with_participants(conn, query, [*values, *params, *cursor_params, limit + 1])
    page, following = split_page(rows, limit, lambda a: (a["start_at"], a["appointment_id"]))
    return {
        "patient_id": str(patient_id),
        "appointments": [appointment_view(index, a) for a in page],
        "next_cursor": following,
    }
