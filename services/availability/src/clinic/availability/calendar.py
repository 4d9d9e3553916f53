"""Calendars: what is booked, and what is free or blocked between, for a resource over some
days, for a location's day (every provider, room and device side by side) and for a patient.

Appointments come from the calendar tables as the JSON stored beside each one's row
(``views``), read with SQL by resource, location or patient and passed to the body as they
are; the resources, working windows, exceptions and live claims between them come from the
in-memory free-time index. Every time is given as the UTC instant and in the local time of
the place it is at.

An appointment belongs to the local day its start falls on (in the zone of the calendar's
resource or location), so a week across a daylight saving change shows each appointment
once, at the local time it was booked for. Patients are ids only: availability holds no
personal data.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
import psycopg

from clinic.availability.index import (
    Index,
    LocationInfo,
    ResourceInfo,
    Span,
    day_span,
    union,
)
from clinic.availability.search import NotKnownHereError, SearchError
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


# Free time starts and ends where appointments do, on the same few instants across every
# column of a day: formatting each once is most of the saving.
@functools.lru_cache(maxsize=8192)
def utc(value: dt.datetime) -> str:
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    return value.isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=8192)
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


# ---------------------------------------------------------------------- appointments

# Appointments come as the JSON views stored beside their rows (see views.py), joined in
# PostgreSQL into one array per column or day.
IN_ORDER = "ORDER BY a.start_at, a.appointment_id"
NONE = orjson.Fragment(b"[]")


def _array(views: str) -> orjson.Fragment:
    """Views joined with commas, as a JSON array."""
    return orjson.Fragment(f"[{views}]")


async def appointments_by_day(
    conn: psycopg.AsyncConnection,
    organization_id: UUID,
    resource_id: UUID,
    tz: ZoneInfo,
    lo: dt.datetime,
    hi: dt.datetime,
    filters: Filters,
) -> dict[dt.date, orjson.Fragment]:
    """A resource's appointments starting between ``lo`` and ``hi``, by local day in ``tz``."""
    where, params = filters.sql()
    query = (
        f"SELECT (a.start_at AT TIME ZONE %s)::date, string_agg(a.view, ',' {IN_ORDER}) "
        "FROM appointments a WHERE a.organization_id = %s "
        "AND a.start_at >= %s AND a.start_at < %s "
        "AND a.appointment_id IN (SELECT r.appointment_id FROM appointment_resources r "
        f"WHERE r.resource_id = %s AND r.start_at >= %s AND r.start_at < %s){where} GROUP BY 1"
    )
    # A resource's share starts at or after its appointment's start, and within a day of it.
    share_until = hi + LONGEST_VISIT
    cursor = await conn.execute(
        query, [tz.key, organization_id, lo, hi, resource_id, lo, share_until, *params]
    )
    return {day: _array(views) for day, views in await cursor.fetchall()}


async def appointments_by_resource(
    conn: psycopg.AsyncConnection,
    organization_id: UUID,
    location_id: UUID,
    lo: dt.datetime,
    hi: dt.datetime,
    filters: Filters,
) -> dict[UUID, orjson.Fragment]:
    """A location's appointments starting between ``lo`` and ``hi``, by resource held."""
    where, params = filters.sql()
    # An appointment shows in the column of each resource it holds.
    query = (
        f"SELECT r.resource_id, string_agg(a.view, ',' {IN_ORDER}) "
        "FROM appointments a CROSS JOIN unnest(a.held_by) AS r(resource_id) "
        "WHERE a.organization_id = %s AND a.location_id = %s "
        f"AND a.start_at >= %s AND a.start_at < %s{where} GROUP BY r.resource_id"
    )
    cursor = await conn.execute(query, [organization_id, location_id, lo, hi, *params])
    return {resource: _array(views) for resource, views in await cursor.fetchall()}


# ---------------------------------------------------------------------- views


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
    appointments: orjson.Fragment,
    now: dt.datetime,
    locations: Sequence[LocationInfo],
) -> dict[str, Any]:
    """One resource's local day: its appointments starting that day (rendered), and the
    free and blocked time at ``locations`` (where it works that day)."""
    lo, hi = day_span(day, tz)
    claimed = [(c.blocked_from, c.blocked_until) for c in index.busy(resource.id, lo, hi, now)]
    free = [
        (start, end, location)
        for location in locations
        for start, end in free_time(index.windows(resource.id, location, day), claimed)
    ]
    free.sort(key=lambda span: span[0])
    places = {location.id: str(location.id) for location in locations}
    blocked = sorted(
        (e for e in index.exceptions.get(resource.id, ()) if e.kind != "extra"),
        key=lambda e: e.start,
    )
    return {
        "date": day.isoformat(),
        "appointments": appointments,
        "free": [
            {
                "start": utc(start),
                "end": utc(end),
                "local_start": local(start, location.tz),
                "local_end": local(end, location.tz),
                "location_id": places[location.id],
            }
            for start, end, location in free
        ],
        "blocked": [
            _span(max(e.start, lo), min(e.end, hi), tz)
            | {"kind": e.kind, "location_id": str(e.location_id) if e.location_id else None}
            for e in blocked
            if e.start < hi and e.end > lo
        ],
    }


def free_time(windows: list[Span], claimed: list[tuple[dt.datetime, dt.datetime]]) -> list[Span]:
    """Working ``windows`` (sorted, apart) minus the ``claimed`` time: the free pieces that
    last, in one pass (a day's claims cut its windows into many pieces)."""
    busy = union(claimed)
    free: list[Span] = []
    first = 0
    for lo, hi in windows:
        while first < len(busy) and busy[first][1] <= lo:
            first += 1
        cursor = lo
        for taken_from, taken_until in busy[first:]:
            if taken_from >= hi:
                break
            if taken_from > cursor:
                free.append((cursor, taken_from))
            cursor = max(cursor, taken_until)
        if cursor < hi:
            free.append((cursor, hi))
    return free


def _span(start: dt.datetime, end: dt.datetime, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "start": utc(start),
        "end": utc(end),
        "local_start": local(start, zone),
        "local_end": local(end, zone),
    }


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
    by_day = await appointments_by_day(conn, organization_id, resource.id, tz, lo, hi, filters)
    locations = [index.locations[i] for i in sorted(resource.location_ids) if i in index.locations]
    return {
        "resource": resource_view(resource),
        "days": [
            resource_day(index, resource, d, tz, by_day.get(d, NONE), now, locations)
            for d in days(first, last)
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
    by_resource = await appointments_by_resource(
        conn, organization_id, location.id, lo, hi, filters
    )
    resource_ids = set(index.by_location.get(location.id, ())) | by_resource.keys()
    resources = sorted(
        (index.resources[r] for r in resource_ids if r in index.resources),
        key=lambda r: (r.category, r.name, str(r.id)),
    )
    columns = []
    for resource in resources:
        theirs = by_resource.get(resource.id, NONE)
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
        f"SELECT a.start_at, a.appointment_id, a.view FROM appointments a "
        f"WHERE {' AND '.join(clauses)}{where}{paging} {IN_ORDER} LIMIT %s"
    )
    found = await conn.execute(query, [*values, *params, *cursor_params, limit + 1])
    page, following = split_page(await found.fetchall(), limit, lambda row: (row[0], row[1]))
    return {
        "patient_id": str(patient_id),
        "appointments": _array(",".join(row[2] for row in page)),
        "next_cursor": following,
    }
