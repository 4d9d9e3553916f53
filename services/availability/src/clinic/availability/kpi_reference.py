"""The KPIs' definitions (``clinic.availability.kpis``) computed one appointment at a time,
in memory, from the calendar tables' rows: the reference the SQL that serves them is held
equal to by the property tests, and the plainest reading of each definition."""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from clinic.availability.kpis import (
    ATTENDED,
    LATE,
    SHOWN,
    Figures,
    KpiQuery,
    buckets,
    in_minutes,
    percentile,
)


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
    attendance_confirmed: bool = False
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
        elif kind == "Appointment.AttendanceConfirmed":
            fact.attendance_confirmed = True
    for fact in facts.values():
        fact.providers.sort()
    return list(facts.values())


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
    return max(0.0, in_minutes(min(a[1], b[1]) - max(a[0], b[0])))


@dataclass
class _Tally(Figures):
    """Figures, with the values the percentiles are taken from."""

    lead: list[float] = field(default_factory=list)
    search_to_book: list[float] = field(default_factory=list)

    def figures(self) -> Figures:
        self.lead_median, self.lead_p90 = percentile(self.lead, 0.5), percentile(self.lead, 0.9)
        self.search_median = percentile(self.search_to_book, 0.5)
        self.search_p90 = percentile(self.search_to_book, 0.9)
        return self


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
            mine: dict[UUID, list[tuple[UUID, dt.datetime, dt.datetime]]] = {}
            for share in shares:
                mine.setdefault(share[0], []).append(share)
            return [(str(provider), theirs) for provider, theirs in mine.items()]
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
            if fact.attendance_confirmed and (fact.status == "noshow" or fact.status in ATTENDED):
                tally.confirmed += 1
                tally.confirmed_noshow += fact.status == "noshow"
            tally.rescheduled += fact.rescheduled
            assert fact.booked_at is not None
            tally.lead.append(in_minutes(fact.start - fact.booked_at))
            correlation = fact.booking_correlation
            if correlation is not None and correlation in sessions:
                tally.search_to_book.append(in_minutes(fact.booked_at - sessions[correlation]))
            if fact.status in SHOWN:
                tally.booked_minutes += sum(in_minutes(end - start) for _, start, end in shares)
            if fact.status == "cancelled" and fact.cancelled_at is not None:
                tally.cancelled += 1
                tally.late_cancelled += fact.start - fact.cancelled_at < LATE
                if fact.cancelled_at < fact.start:
                    for provider, start, end in shares:
                        freed = (max(start, fact.cancelled_at), end)
                        if freed[1] <= freed[0]:
                            continue
                        tally.freed_minutes += in_minutes(freed[1] - freed[0])
                        tally.refilled_minutes += sum(
                            _overlap(freed, (s, e))
                            for other, s, e in _overlapping(booked_by_provider, provider, freed)
                            if other.booked_at is not None and other.booked_at > fact.cancelled_at
                        )

    return buckets({key: tally.figures() for key, tally in tallies.items()}, query, working)
