"""Schedule KPIs, counted by PostgreSQL from the facts of each appointment's life (the
calendar tables, themselves built from booking's events), with the working time of the
free-time index. ``kpi_reference`` computes the same definitions one appointment at a time
in memory; the property tests hold the two equal.

Each appointment counts in the period (day, week starting Monday, month, or the whole range:
``all``) of its start's local date at its location; the booking funnel counts holds in the
period they were placed.
An appointment "was booked" once an event made it ``booked`` (directly, or by confirming a
hold); holds that were never confirmed count only in the funnel; appointments entered in
error count nowhere.

Definitions (each is None when its denominator is 0):
- ``no_show_rate``: no-shows / (no-shows + attended), attended = checked in, arrived or
  fulfilled, among booked appointments whose outcome is known.
- reminder effectiveness, among the same appointments (outcome known: no-show or attended):
  ``confirmed_appointments``, those whose attendance the patient confirmed before the
  start (answering a reminder, or telling the clinic: whoever recorded it), and
  ``unconfirmed_appointments``, the others; ``no_show_rate_confirmed``: no-shows among the
  confirmed / ``confirmed_appointments``; ``no_show_rate_unconfirmed``: no-shows among the
  others / ``unconfirmed_appointments``.
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

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import psycopg

from clinic.availability.index import Index
from clinic.availability.search import SearchError
from clinic.availability.views import minutes

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


def in_minutes(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 60


@dataclass
class Figures:
    """What one period (and group) counts; its ``view`` gives the KPIs."""

    booked: int = 0
    noshow: int = 0
    attended: int = 0
    cancelled: int = 0
    late_cancelled: int = 0
    rescheduled: int = 0
    lead_median: float | None = None
    lead_p90: float | None = None
    booked_minutes: float = 0.0
    working_minutes: float = 0.0
    freed_minutes: float = 0.0
    refilled_minutes: float = 0.0
    holds_placed: int = 0
    holds_confirmed: int = 0
    holds_lapsed: int = 0
    holds_released: int = 0
    search_median: float | None = None
    search_p90: float | None = None
    confirmed: int = 0
    """Of ``noshow + attended``: those whose attendance was confirmed."""
    confirmed_noshow: int = 0
    """Of ``noshow``: those whose attendance was confirmed."""

    def view(self, with_utilisation: bool) -> dict[str, Any]:
        return {
            "appointments_booked": self.booked,
            "no_show_rate": ratio(self.noshow, self.noshow + self.attended),
            "confirmed_appointments": self.confirmed,
            "unconfirmed_appointments": self.noshow + self.attended - self.confirmed,
            "no_show_rate_confirmed": ratio(self.confirmed_noshow, self.confirmed),
            "no_show_rate_unconfirmed": ratio(
                self.noshow - self.confirmed_noshow,
                self.noshow + self.attended - self.confirmed,
            ),
            "utilisation": (
                ratio(self.booked_minutes, self.working_minutes) if with_utilisation else None
            ),
            "booked_minutes": round(self.booked_minutes, 3),
            "working_minutes": round(self.working_minutes, 3) if with_utilisation else None,
            "lead_time_minutes": {"median": self.lead_median, "p90": self.lead_p90},
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
                    "median": self.search_median,
                    "p90": self.search_p90,
                },
            },
        }


Buckets = dict[tuple[dt.date, str | None], Figures]


def buckets(
    counted: Buckets, query: KpiQuery, working: dict[tuple[dt.date, UUID, UUID], float]
) -> list[dict[str, Any]]:
    """The KPIs per period and group: ``counted`` with the working minutes (local day,
    provider, location) in scope added (not per appointment type: a provider's working
    time belongs to no type)."""
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
            key = (query.bucket(day), group)
            counted.setdefault(key, Figures()).working_minutes += minutes
    return [
        {"period_start": start.isoformat(), "group": group, **figures.view(with_utilisation)}
        for (start, group), figures in sorted(
            counted.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
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
                minutes = sum(in_minutes(b - a) for a, b in windows)
                if minutes:
                    found[(day, resource_id, location.id)] = minutes
    return found


# ---------------------------------------------------------------------- counting in SQL


def _bucket_sql(column: str, period: Period) -> str:
    """The first day of the period the local date ``column`` counts in."""
    return {
        "day": column,
        "week": f"({column} - (extract(isodow FROM {column})::int - 1))",
        "month": f"date_trunc('month', {column})::date",
        "all": "%(first)s::date",
    }[period]


def _refilled(each_share: bool) -> str:
    """Provider minutes freed by the fact ``f`` (cancelled before its start) that
    appointments booked after the cancellation hold: in the share ``s`` of the outer query
    (``each_share``), or in all the fact's provider shares. A share is freed from its start
    or the cancellation, whichever is later."""
    freed_from = "greatest(s.start_at, f.cancelled_at)"
    overlap = minutes(f"least(o.end_at, s.end_at) - greatest(o.start_at, {freed_from})")
    near = (
        "o.resource_id = s.resource_id AND o.resource_kind = 'provider' "
        f"AND o.start_at >= {freed_from} - interval '1 day' AND o.start_at < s.end_at "
        f"AND o.end_at > {freed_from}"
    )
    booked_after = (
        "x.appointment_id = o.appointment_id AND x.status NOT IN ('cancelled', "
        "'entered-in-error') AND x.first_booked_at > f.cancelled_at"
    )
    if each_share:
        return f"""(SELECT COALESCE(sum({overlap}), 0) FROM appointment_resources o
            JOIN appointments x ON {booked_after} WHERE {near})"""
    return f"""(SELECT COALESCE(sum({overlap}), 0) FROM appointment_resources s
        JOIN appointment_resources o ON {near} JOIN appointments x ON {booked_after}
        WHERE s.appointment_id = f.appointment_id AND s.resource_kind = 'provider'
          AND s.end_at > {freed_from})"""


def kpi_sql(query: KpiQuery) -> str:
    """One statement counting every figure per period and group, from the facts derived
    beside each appointment (``views``): appointments by the local date of their start,
    holds by the local date they were placed."""
    scope = ""
    if query.location_ids:
        scope += " AND a.location_id = ANY(%(locations)s)"
    if query.type_ids:
        scope += " AND a.appointment_type_id = ANY(%(types)s)"
    freeing = "f.was_booked AND f.freed_minutes > 0"
    if query.group_by == "provider" or query.provider_ids:
        # Counted through its provider shares: once per provider (grouped), or only with the
        # chosen providers' minutes (filtered); a fact without any counts nowhere.
        providers = " AND s.resource_id = ANY(%(providers)s)" if query.provider_ids else ""
        group = "s.resource_id::text" if query.group_by == "provider" else _group(query)
        counted = f"""SELECT f.*, {group} AS grp,
            sum({minutes("s.end_at - s.start_at")}) AS minutes,
            sum(CASE WHEN {freeing} AND s.end_at > greatest(s.start_at, f.cancelled_at)
                THEN {minutes("s.end_at - greatest(s.start_at, f.cancelled_at)")}
                ELSE 0 END) AS freed,
            sum(CASE WHEN {freeing} AND s.end_at > greatest(s.start_at, f.cancelled_at)
                THEN {_refilled(each_share=True)} ELSE 0 END) AS refilled
        FROM facts f JOIN appointment_resources s ON s.appointment_id = f.appointment_id
        WHERE s.resource_kind = 'provider'{providers}
        GROUP BY {", ".join(f"f.{c}" for c in FACT_COLUMNS)}, grp"""
    else:
        counted = f"""SELECT f.*, {_group(query)} AS grp, f.provider_minutes AS minutes,
            CASE WHEN {freeing} THEN f.freed_minutes ELSE 0 END AS freed,
            CASE WHEN {freeing} THEN {_refilled(each_share=False)} ELSE 0 END AS refilled
        FROM facts f"""
    held = _bucket_sql("held_local_date", query.period)
    started = _bucket_sql("local_date", query.period)
    attended = ", ".join(f"'{s}'" for s in sorted(ATTENDED))
    shown = ", ".join(f"'{s}'" for s in sorted(SHOWN))
    return f"""
WITH facts AS (
    SELECT {", ".join(f"a.{c}" for c in FACT_COLUMNS[:-3])},
        a.first_booked_at IS NOT NULL AND a.status <> 'entered-in-error' AS was_booked,
        {minutes("a.start_at - a.first_booked_at")} AS lead,
        {minutes("a.first_booked_at - q.first_search_at")} AS search_to_book
    FROM appointments a LEFT JOIN search_sessions q
        ON q.organization_id = a.organization_id AND q.session_id = a.booking_correlation
    WHERE a.organization_id = %(org)s{scope} AND (
        a.local_date BETWEEN %(first)s AND %(last)s
        OR a.held_local_date BETWEEN %(first)s AND %(last)s)
),
counted AS ({counted})
SELECT {started}, grp, count(*),
    count(*) FILTER (WHERE status = 'noshow'),
    count(*) FILTER (WHERE status IN ({attended})),
    count(*) FILTER (WHERE status = 'cancelled' AND cancelled_at IS NOT NULL),
    count(*) FILTER (WHERE status = 'cancelled' AND cancelled_at IS NOT NULL
                     AND start_at - cancelled_at < %(late)s),
    count(*) FILTER (WHERE rescheduled),
    percentile_disc(0.5) WITHIN GROUP (ORDER BY lead),
    percentile_disc(0.9) WITHIN GROUP (ORDER BY lead),
    COALESCE(sum(minutes) FILTER (WHERE status IN ({shown})), 0),
    sum(freed), sum(refilled),
    percentile_disc(0.5) WITHIN GROUP (ORDER BY search_to_book),
    percentile_disc(0.9) WITHIN GROUP (ORDER BY search_to_book),
    0, 0, 0, 0,
    count(*) FILTER (WHERE attendance_confirmed_at IS NOT NULL
                     AND status IN ('noshow', {attended})),
    count(*) FILTER (WHERE attendance_confirmed_at IS NOT NULL AND status = 'noshow')
FROM counted WHERE was_booked AND local_date BETWEEN %(first)s AND %(last)s GROUP BY 1, 2
UNION ALL
SELECT {held}, grp, 0, 0, 0, 0, 0, 0, NULL, NULL, 0, 0, 0, NULL, NULL,
    count(*),
    count(*) FILTER (WHERE first_booked_at IS NOT NULL),
    count(*) FILTER (WHERE first_booked_at IS NULL AND status = 'cancelled'
                     AND cancel_reason = 'hold expired'),
    count(*) FILTER (WHERE first_booked_at IS NULL AND status = 'cancelled'
                     AND cancel_reason IS DISTINCT FROM 'hold expired'),
    0, 0
FROM counted WHERE held_local_date BETWEEN %(first)s AND %(last)s GROUP BY 1, 2
"""


FACT_COLUMNS = (
    "appointment_id",
    "location_id",
    "appointment_type_id",
    "status",
    "start_at",
    "cancelled_at",
    "cancel_reason",
    "local_date",
    "held_local_date",
    "first_booked_at",
    "rescheduled",
    "provider_minutes",
    "freed_minutes",
    "attendance_confirmed_at",
    "was_booked",
    "lead",
    "search_to_book",
)
"""The columns of ``facts`` in ``kpi_sql``: the appointment's, then the three it works out."""


def _group(query: KpiQuery) -> str:
    return {
        "location": "f.location_id::text",
        "appointment_type": "f.appointment_type_id::text",
    }.get(query.group_by or "", "NULL::text")


COUNTED = (
    "booked",
    "noshow",
    "attended",
    "cancelled",
    "late_cancelled",
    "rescheduled",
    "lead_median",
    "lead_p90",
    "booked_minutes",
    "freed_minutes",
    "refilled_minutes",
    "search_median",
    "search_p90",
    "holds_placed",
    "holds_confirmed",
    "holds_lapsed",
    "holds_released",
    "confirmed",
    "confirmed_noshow",
)
"""The figures ``kpi_sql`` counts, in the order of its columns after period and group."""
SUMMED = frozenset(COUNTED) - {"lead_median", "lead_p90", "search_median", "search_p90"}
"""Those a period's visits and holds (separate rows) both give; the others come once."""


async def count(conn: psycopg.AsyncConnection, query: KpiQuery) -> Buckets:
    """The figures of the query's appointments and holds, per period and group."""
    params = {
        "org": query.organization_id,
        "first": query.first,
        "last": query.last,
        "locations": sorted(query.location_ids),
        "types": sorted(query.type_ids),
        "providers": sorted(query.provider_ids),
        "late": LATE,
    }
    async with conn.transaction():
        # One statement over many rows, planned in a millisecond: compiling it (JIT) would
        # take longer than running it; its sorts (the percentiles) fit in memory.
        await conn.execute("SET LOCAL jit = off")
        await conn.execute("SET LOCAL work_mem = '64MB'")
        found = await conn.execute(kpi_sql(query), params)
        rows = await found.fetchall()
    counted: Buckets = {}
    for start, group, *values in rows:
        figures = counted.setdefault((start, group), Figures())
        for name, value in zip(COUNTED, values, strict=True):
            if value is not None:  # a bucket's holds and visits come in separate rows
                setattr(figures, name, getattr(figures, name) + value if name in SUMMED else value)
    return counted


async def kpis(conn: psycopg.AsyncConnection, index: Index, query: KpiQuery) -> dict[str, Any]:
    query.check()
    return {
        "organization_id": str(query.organization_id),
        "from": query.first.isoformat(),
        "to": query.last.isoformat(),
        "period": query.period,
        "group_by": query.group_by,
        "buckets": buckets(await count(conn, query), query, working_minutes(index, query)),
    }
