"""Schedule KPIs, computed from the facts of each appointment's life (the calendar tables,
themselves built from booking's events) and the working time of the free-time index.

Each appointment counts in the period (day, week starting Monday, month, or the whole range:
``all``) of its start's local date at its location; the booking funnel counts holds in the
period they were placed.
An appointment "was booked" once an event made it ``booked`` (directly, or by confirming a
hold); holds that were never confirmed count only in the funnel; appointments entered in
error count nowhere.

Definitions (each is None when its denominator is 0):
- ``no_show_rate``: no-shows / (no-shows + attended), attended = checked in, arrived or
  fulfilled, among booked appointments whose outcome is known.
- ``utilisation``: booked provider minutes / working provider minutes. Booked minutes are
  the providers' minutes of appointments booked, checked in, arrived, fulfilled or no-show
  (a no-show's time was still held); working minutes are the providers' working windows
  (weekly hours and exceptions) at the locations in scope. Not given per appointment type.
- ``lead_time_minutes``: start minus the moment it was booked, median and p90 (nearest
  rank), over booked appointments.
- ``cancellation_rate``: booked appointments later cancelled / booked appointments;
  ``late_cancellation_rate``: those cancelled less than 24 hours before their start.
- ``reschedule_rate``: booked appointments moved at least once / booked appointments.
- ``fill_rate``: of the provider minutes freed by cancellations made before the start, the
  share a later booking of the same provider took again.
- funnel: ``holds_placed``, ``holds_confirmed``, ``holds_lapsed`` (expired unconfirmed),
  ``holds_released`` (cancelled before confirming), and ``search_to_book_minutes`` (median
  and p90) from a session's first search to the booking, where the search passed a
  ``session_id`` and the booking the same UUID as ``X-Correlation-Id``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from clinic.availability.index import Index, day_span
from clinic.availability.search import SearchError

Period = Literal["day", "week", "month", "all"]
GroupBy = Literal["location", "provider", "appointment_type"]
LATE = dt.timedelta(hours=24)
SHOWN = frozenset({"booked", "checked-in", "arrived", "fulfilled", "noshow"})
ATTENDED = frozenset({"checked-in", "arrived", "fulfilled"})
LONGEST_RANGE_DAYS = 366


class InvalidKpiQueryError(SearchError):
    status = 422
    slug = "invalid-kpi-query"
    title = "The KPI query is not valid"


@dataclass(frozen=True)
class KpiQuery:
    organization_id: UUID
    first: dt.date
    last: dt.date
    period: Period = "day"
    location_ids: frozenset[UUID] = frozenset()
    provider_ids: frozenset[UUID] = frozenset()
    type_ids: frozenset[UUID] = frozenset()
    group_by: GroupBy | None = None

    def bucket(self, day: dt.date) -> dt.date:
        """The first day of the period ``day`` counts in (``all``: the query's first day)."""
        return self.first if self.period == "all" else bucket(day, self.period)

    def check(self) -> None:
        if self.last < self.first:
            raise InvalidKpiQueryError("the date range ends before it starts")
        if (self.last - self.first).days >= LONGEST_RANGE_DAYS:
            raise InvalidKpiQueryError(f"KPIs cover at most {LONGEST_RANGE_DAYS} days at once")
        if self.group_by == "appointment_type" and self.provider_ids:
            raise InvalidKpiQueryError("group by type or filter by provider, not both")


@dataclass
class Fact:
    """One appointment's life, as the KPIs need it."""

    id: UUID
    location_id: UUID
    type_id: UUID
    status: str
    start: dt.datetime
    end: dt.datetime
    local_date: dt.date
    held_at: dt.datetime | None = None
    held_local_date: dt.date | None = None
    booked_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    cancel_reason: str | None = None
    rescheduled: bool = False
    booking_correlation: UUID | None = None
    providers: list[tuple[UUID, dt.datetime, dt.datetime]] = field(default_factory=list)

    @property
    def was_booked(self) -> bool:
        return self.booked_at is not None and self.status != "entered-in-error"


def facts_from_rows(
    appointments: Iterable[dict[str, Any]],
    resources: Iterable[dict[str, Any]],
    events: Iterable[dict[str, Any]],
    zones: dict[UUID, ZoneInfo],
) -> list[Fact]:
    """Facts from the calendar tables' rows (as the store or the in-memory model has them)."""
    facts: dict[UUID, Fact] = {}
    for row in appointments:
        tz = zones.get(row["location_id"], ZoneInfo("UTC"))
        facts[row["appointment_id"]] = Fact(
            id=row["appointment_id"],
            location_id=row["location_id"],
            type_id=row["appointment_type_id"],
            status=row["status"],
            start=row["start_at"],
            end=row["end_at"],
            local_date=row["start_at"].astimezone(tz).date(),
            cancelled_at=row["cancelled_at"],
            cancel_reason=row["cancel_reason"],
        )
    for row in resources:
        fact = facts.get(row["appointment_id"])
        if fact is not None and row["resource_kind"] == "provider":
            fact.providers.append((row["resource_id"], row["start_at"], row["end_at"]))
    for row in sorted(events, key=lambda r: (r["appointment_id"], r["version"])):
        fact = facts.get(row["appointment_id"])
        if fact is None:
            continue
        kind = row["event_type"]
        if kind == "Appointment.Held" and fact.held_at is None:
            fact.held_at = row["occurred_at"]
            tz = zones.get(fact.location_id, ZoneInfo("UTC"))
            fact.held_local_date = row["occurred_at"].astimezone(tz).date()
        elif kind == "Appointment.Booked" and fact.booked_at is None:
            fact.booked_at = row["occurred_at"]
            fact.booking_correlation = row.get("correlation_id")
        elif kind == "Appointment.Rescheduled" and fact.booked_at is not None:
            fact.rescheduled = True
    for fact in facts.values():
        fact.providers.sort()
    return list(facts.values())


def bucket(day: dt.date, period: Period) -> dt.date:
    """The first day of the day, week (Monday) or month ``day`` falls in."""
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None


def _minutes(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 60


def _overlapping(
    booked: dict[UUID, list[tuple[Fact, dt.datetime, dt.datetime]]],
    provider: UUID,
    span: tuple[dt.datetime, dt.datetime],
) -> list[tuple[Fact, dt.datetime, dt.datetime]]:
    """The provider's booked shares (sorted by start) that may overlap ``span``: those that
    start before it ends and at most a day before it starts."""
    shares = booked.get(provider, [])
    first = bisect.bisect_left(shares, span[0] - dt.timedelta(days=1), key=lambda s: s[1])
    last = bisect.bisect_left(shares, span[1], lo=first, key=lambda s: s[1])
    return shares[first:last]


def _overlap(a: tuple[dt.datetime, dt.datetime], b: tuple[dt.datetime, dt.datetime]) -> float:
    return max(0.0, _minutes(min(a[1], b[1]) - max(a[0], b[0])))


@dataclass
class _Tally:
    booked: int = 0
    noshow: int = 0
    attended: int = 0
    cancelled: int = 0
    late_cancelled: int = 0
    rescheduled: int = 0
    lead: list[float] = field(default_factory=list)
    booked_minutes: float = 0.0
    working_minutes: float = 0.0
    freed_minutes: float = 0.0
    refilled_minutes: float = 0.0
    holds_placed: int = 0
    holds_confirmed: int = 0
    holds_lapsed: int = 0
    holds_released: int = 0
    search_to_book: list[float] = field(default_factory=list)

    def view(self, with_utilisation: bool) -> dict[str, Any]:
        return {
            "appointments_booked": self.booked,
            "no_show_rate": ratio(self.noshow, self.noshow + self.attended),
            "utilisation": (
                ratio(self.booked_minutes, self.working_minutes) if with_utilisation else None
            ),
            "booked_minutes": round(self.booked_minutes, 3),
            "working_minutes": round(self.working_minutes, 3) if with_utilisation else None,
            "lead_time_minutes": {
                "median": percentile(self.lead, 0.5),
                "p90": percentile(self.lead, 0.9),
            },
            "cancellation_rate": ratio(self.cancelled, self.booked),
            "late_cancellation_rate": ratio(self.late_cancelled, self.booked),
            "reschedule_rate": ratio(self.rescheduled, self.booked),
            "fill_rate": ratio(self.refilled_minutes, self.freed_minutes),
            "funnel": {
                "holds_placed": self.holds_placed,
                "holds_confirmed": self.holds_confirmed,
                "holds_lapsed": self.holds_lapsed,
                "holds_released": self.holds_released,
                "search_to_book_minutes": {
                    "median": percentile(self.search_to_book, 0.5),
                    "p90": percentile(self.search_to_book, 0.9),
                },
            },
        }


def compute(
    facts: Sequence[Fact],
    query: KpiQuery,
    working: dict[tuple[dt.date, UUID, UUID], float],
    sessions: dict[UUID, dt.datetime] | None = None,
) -> list[dict[str, Any]]:
    """The KPIs of ``facts`` (already limited to the query's organisation) per period and
    group. ``working``: (local day, provider, location) -> working minutes."""
    sessions = sessions or {}
    tallies: dict[tuple[dt.date, str | None], _Tally] = defaultdict(_Tally)

    def in_scope(fact: Fact) -> bool:
        return (not query.location_ids or fact.location_id in query.location_ids) and (
            not query.type_ids or fact.type_id in query.type_ids
        )

    def groups(fact: Fact) -> list[tuple[str | None, list[tuple[UUID, dt.datetime, dt.datetime]]]]:
        """(group, the provider shares counted in it) for each group the fact falls in."""
        shares = [p for p in fact.providers if not query.provider_ids or p[0] in query.provider_ids]
        if query.provider_ids and not shares:
            return []
        if query.group_by == "provider":
            return [(str(p[0]), [p]) for p in shares]
        if query.group_by == "location":
            return [(str(fact.location_id), shares)]
        if query.group_by == "appointment_type":
            return [(str(fact.type_id), shares)]
        return [(None, shares)]

    def in_range(day: dt.date | None) -> bool:
        return day is not None and query.first <= day <= query.last

    booked_by_provider: dict[UUID, list[tuple[Fact, dt.datetime, dt.datetime]]] = defaultdict(list)
    for fact in facts:
        if fact.was_booked and fact.status not in ("cancelled", "entered-in-error"):
            for provider, start, end in fact.providers:
                booked_by_provider[provider].append((fact, start, end))

    for shares_of_provider in booked_by_provider.values():
        shares_of_provider.sort(key=lambda share: share[1])
    for fact in facts:
        if not in_scope(fact):
            continue
        for group, shares in groups(fact):
            if in_range(fact.held_local_date):
                tally = tallies[(query.bucket(fact.held_local_date), group)]  # type: ignore[arg-type]
                tally.holds_placed += 1
                if fact.booked_at is not None:
                    tally.holds_confirmed += 1
                elif fact.status == "cancelled" and fact.cancel_reason == "hold expired":
                    tally.holds_lapsed += 1
                elif fact.status == "cancelled":
                    tally.holds_released += 1
            if not fact.was_booked or not in_range(fact.local_date):
                continue
            tally = tallies[(query.bucket(fact.local_date), group)]
            tally.booked += 1
            tally.noshow += fact.status == "noshow"
            tally.attended += fact.status in ATTENDED
            tally.rescheduled += fact.rescheduled
            assert fact.booked_at is not None
            tally.lead.append(_minutes(fact.start - fact.booked_at))
            correlation = fact.booking_correlation
            if correlation is not None and correlation in sessions:
                tally.search_to_book.append(_minutes(fact.booked_at - sessions[correlation]))
            if fact.status in SHOWN:
                tally.booked_minutes += sum(_minutes(end - start) for _, start, end in shares)
            if fact.status == "cancelled" and fact.cancelled_at is not None:
                tally.cancelled += 1
                tally.late_cancelled += fact.start - fact.cancelled_at < LATE
                if fact.cancelled_at < fact.start:
                    for provider, start, end in shares:
                        freed = (max(start, fact.cancelled_at), end)
                        if freed[1] <= freed[0]:
                            continue
                        tally.freed_minutes += _minutes(freed[1] - freed[0])
                        tally.refilled_minutes += sum(
                            _overlap(freed, (s, e))
                            for other, s, e in _overlapping(booked_by_provider, provider, freed)
                            if other.booked_at is not None and other.booked_at > fact.cancelled_at
                        )

    with_utilisation = query.group_by != "appointment_type"
    if with_utilisation:
        for (day, provider, location), minutes in working.items():
            if not query.first <= day <= query.last:
                continue
            if query.location_ids and location not in query.location_ids:
                continue
            if query.provider_ids and provider not in query.provider_ids:
                continue
            group = {"provider": str(provider), "location": str(location)}.get(query.group_by or "")
            tallies[(query.bucket(day), group)].working_minutes += minutes

    return [
        {"period_start": start.isoformat(), "group": group, **tally.view(with_utilisation)}
        for (start, group), tally in sorted(
            tallies.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
        )
    ]


def working_minutes(index: Index, query: KpiQuery) -> dict[tuple[dt.date, UUID, UUID], float]:
    """Each provider's working minutes per local day and location in the query's scope."""
    found: dict[tuple[dt.date, UUID, UUID], float] = {}
    days = [query.first + dt.timedelta(days=n) for n in range((query.last - query.first).days + 1)]
    for location in index.locations.values():
        if location.organization_id != query.organization_id:
            continue
        if query.location_ids and location.id not in query.location_ids:
            continue
        for resource_id in index.by_location.get(location.id, ()):
            resource = index.resources[resource_id]
            if resource.category != "provider":
                continue
            if query.provider_ids and resource_id not in query.provider_ids:
                continue
            for day in days:
                windows = index.windows(resource_id, location, day)
                minutes = sum(_minutes(b - a) for a, b in windows)
                if minutes:
                    found[(day, resource_id, location.id)] = minutes
    return found


def period_bounds(query: KpiQuery, zones: Iterable[ZoneInfo]) -> tuple[dt.datetime, dt.datetime]:
    """UTC instants wide enough to hold every local day of the query in any of ``zones``."""
    zones = list(zones) or [ZoneInfo("UTC")]
    lo = min(day_span(query.first, tz)[0] for tz in zones)
    hi = max(day_span(query.last, tz)[1] for tz in zones)
    return lo, hi


async def load_facts(
    conn: Any, index: Index, query: KpiQuery
) -> tuple[list[Fact], dict[UUID, dt.datetime]]:
    """The facts of the appointments starting in the query's days, or held in them (the
    funnel), of its organisation; and the first search of each session that booked."""
    zones = {
        location.id: location.tz
        for location in index.locations.values()
        if location.organization_id == query.organization_id
    }
    lo, hi = period_bounds(query, zones.values())
    org = query.organization_id
    ids = (
        "SELECT appointment_id FROM appointments WHERE organization_id = %s "
        "AND start_at >= %s AND start_at < %s UNION SELECT appointment_id FROM "
        "appointment_events WHERE organization_id = %s AND event_type = 'Appointment.Held' "
        "AND occurred_at >= %s AND occurred_at < %s"
    )
    params = (org, lo, hi, org, lo, hi)
    tables = {
        "appointments": "appointment_id, location_id, appointment_type_id, status, start_at, "
        "end_at, cancelled_at, cancel_reason",
        "appointment_resources": "appointment_id, resource_id, resource_kind, start_at, end_at",
        "appointment_events": "appointment_id, version, event_type, occurred_at, correlation_id",
    }
    rows: dict[str, list[dict[str, Any]]] = {}
    for table, columns in tables.items():
        cursor = await conn.execute(
            f"SELECT {columns} FROM {table} WHERE appointment_id IN ({ids})", params
        )
        names = [c.strip() for c in columns.split(",")]
        rows[table] = [dict(zip(names, r, strict=True)) for r in await cursor.fetchall()]
    facts = facts_from_rows(
        rows["appointments"], rows["appointment_resources"], rows["appointment_events"], zones
    )
    correlations = [f.booking_correlation for f in facts if f.booking_correlation]
    sessions: dict[UUID, dt.datetime] = {}
    if correlations:
        cursor = await conn.execute(
            "SELECT session_id, first_search_at FROM search_sessions "
            "WHERE organization_id = %s AND session_id = ANY(%s)",
            (org, correlations),
        )
        sessions = {r[0]: r[1] for r in await cursor.fetchall()}
    return facts, sessions


async def kpis(conn: Any, index: Index, query: KpiQuery) -> dict[str, Any]:
    query.check()
    facts, sessions = await load_facts(conn, index, query)
    return {
        "organization_id": str(query.organization_id),
        "from": query.first.isoformat(),
        "to": query.last.isoformat(),
        "period": query.period,
        "group_by": query.group_by,
        "buckets": compute(facts, query, working_minutes(index, query), sessions),
    }
