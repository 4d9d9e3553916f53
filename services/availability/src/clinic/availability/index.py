"""The in-memory free-time index: reference data, working windows and live claims per
resource, built from the projection tables and kept current from the change feed.

Search works on intervals of valid start times rather than on a grid of candidate times:
for each resource the valid starts are its working windows (shifted by the step's offset and
shortened by its duration) minus the starts whose blocked time (buffers included) would
overlap a live claim; a requirement's valid starts are the union over its pool, and a visit's
the intersection over its requirements. Only then are slot times enumerated.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

from clinic.availability.projection import Tables

UTC = dt.UTC
Span = tuple[dt.datetime, dt.datetime]  # closed range of valid start instants
T = TypeVar("T", dt.datetime, int)


@dataclass(frozen=True)
class LocationInfo:
    id: UUID
    organization_id: UUID
    name: str
    time_zone: str
    retired: bool = False

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class ResourceInfo:
    id: UUID
    organization_id: UUID
    category: str
    name: str
    kind: str
    specialties: frozenset[str]
    location_ids: frozenset[UUID]
    retired: bool = False
    time_zone: str = "UTC"
    """The zone its days are cut in (booking's ResourceDay)."""


@dataclass(frozen=True)
class RequirementInfo:
    role: str
    category: str
    resource_id: UUID | None
    kind: str | None
    specialty: str | None

    def accepts(self, resource: ResourceInfo) -> bool:
        if resource.category != self.category:
            return False
        if self.resource_id is not None and resource.id != self.resource_id:
            return False
        if self.kind is not None and resource.kind != self.kind:
            return False
        return self.specialty is None or self.specialty in resource.specialties


@dataclass(frozen=True)
class StepInfo:
    offset: dt.timedelta
    duration: dt.timedelta
    requirements: tuple[RequirementInfo, ...]


@dataclass(frozen=True)
class TypeInfo:
    id: UUID
    organization_id: UUID
    name: str
    steps: tuple[StepInfo, ...]
    buffer_before: dt.timedelta
    buffer_after: dt.timedelta
    seats: int
    minimum_notice: dt.timedelta
    maximum_horizon: dt.timedelta
    patient_bookable: bool
    retired: bool = False

    @functools.cached_property
    def duration(self) -> dt.timedelta:
        return max(s.offset + s.duration for s in self.steps)


@dataclass(frozen=True)
class HoursInfo:
    location_id: UUID
    weekday: int
    start: dt.time
    end: dt.time
    effective_from: dt.date | None
    effective_until: dt.date | None


@dataclass(frozen=True)
class ExceptionInfo:
    kind: str
    start: dt.datetime
    end: dt.datetime
    location_id: UUID | None


@dataclass(frozen=True)
class ClaimInfo:
    appointment_id: UUID
    role: str
    start: dt.datetime
    blocked_from: dt.datetime
    blocked_until: dt.datetime
    seats: int
    session: str | None
    capacity: int
    hold_expires_at: dt.datetime | None

    def live(self, now: dt.datetime) -> bool:
        return self.hold_expires_at is None or self.hold_expires_at > now


# ------------------------------------------------------------------------- time


def exists(local: dt.datetime, tz: ZoneInfo) -> bool:
    aware = local.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def boundary(day: dt.date, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    """A schedule boundary as an instant: inside a DST gap it moves to the first real
    instant after the gap; a repeated time takes its first occurrence."""
    local = dt.datetime.combine(day, at)
    if exists(local, tz):
        return local.replace(tzinfo=tz, fold=0).astimezone(UTC)
    instant = local.replace(tzinfo=tz, fold=1).astimezone(UTC).replace(second=0, microsecond=0)
    while instant.astimezone(tz).replace(tzinfo=None) < local:
        instant += dt.timedelta(minutes=1)
    return instant


def day_span(day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time()).replace(tzinfo=tz).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).replace(tzinfo=tz)
    return start, end.astimezone(UTC)


def union(spans: Iterable[tuple[T, T]]) -> list[tuple[T, T]]:
    merged: list[tuple[T, T]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def intersect(a: list[tuple[T, T]], b: list[tuple[T, T]]) -> list[tuple[T, T]]:
    out: list[tuple[T, T]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def remove_open(spans: list[Span], holes: list[tuple[dt.datetime, dt.datetime]]) -> list[Span]:
    """``spans`` (closed) minus the open intervals ``holes``."""
    result = spans
    for h_lo, h_hi in sorted(holes):
        next_result: list[Span] = []
        for lo, hi in result:
            if hi <= h_lo or lo >= h_hi:
                next_result.append((lo, hi))
                continue
            if lo <= h_lo:
                next_result.append((lo, h_lo))
            if h_hi <= hi:
                next_result.append((h_hi, hi))
        result = next_result
    return result


# ------------------------------------------------------------------------- the index


@dataclass
class Index:
    locations: dict[UUID, LocationInfo] = field(default_factory=dict)
    resources: dict[UUID, ResourceInfo] = field(default_factory=dict)
    types: dict[UUID, TypeInfo] = field(default_factory=dict)
    hours: dict[UUID, tuple[HoursInfo, ...]] = field(default_factory=dict)
    exceptions: dict[UUID, tuple[ExceptionInfo, ...]] = field(default_factory=dict)
    claims: dict[UUID, tuple[ClaimInfo, ...]] = field(default_factory=dict)
    by_location: dict[UUID, tuple[UUID, ...]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _starts: dict[UUID, list[dt.datetime]] = field(default_factory=dict)
    versions: dict[UUID, int] = field(default_factory=dict)
    valid_cache: dict[Any, tuple[int, dt.datetime, list[Any]]] = field(default_factory=dict)
    _longest: dict[UUID, dt.timedelta] = field(default_factory=dict)
    _windows: dict[tuple[UUID, UUID, dt.date], list[tuple[dt.datetime, dt.datetime]]] = field(
        default_factory=dict
    )

    # ---------------------------------------------------------------- building

    @classmethod
    def build(cls, tables: Tables) -> Index:
        index = cls()
        index.replace(tables, None)
        return index

    def replace(self, tables: Tables, resource_ids: set[UUID] | None) -> None:
        """Take rows from ``tables``: everything (``resource_ids`` None), or the reference
        rows plus the schedules and claims of ``resource_ids`` (a partial reload)."""
        rows = tables.rows
        with self.lock:
            for row in rows["locations"].values():
                self.locations[row["location_id"]] = LocationInfo(
                    row["location_id"],
                    row["organization_id"],
                    row["name"],
                    row["time_zone"],
                    bool(row.get("retired")),
                )
            for row in rows["resources"].values():
                self.resources[row["resource_id"]] = ResourceInfo(
                    row["resource_id"],
                    row["organization_id"],
                    row["category"],
                    row["name"],
                    row["kind"],
                    frozenset(row["specialties"]),
                    frozenset(row["location_ids"]),
                    bool(row.get("retired")),
                    row["time_zone"],
                )
            for row in rows["appointment_types"].values():
                self.types[row["appointment_type_id"]] = _type(row)
            hours: dict[UUID, list[HoursInfo]] = {}
            for row in rows["weekly_hours"].values():
                hours[row["resource_id"]] = [_hours(h) for h in row["hours"]]
            exceptions: dict[UUID, list[ExceptionInfo]] = {}
            for row in rows["schedule_exceptions"].values():
                exceptions.setdefault(row["resource_id"], []).append(
                    ExceptionInfo(row["kind"], row["starts_at"], row["ends_at"], row["location_id"])
                )
            claims: dict[UUID, dict[tuple[UUID, str], ClaimInfo]] = {}
            for row in rows["claims"].values():
                claims.setdefault(row["resource_id"], {})[(row["appointment_id"], row["role"])] = (
                    ClaimInfo(
                        row["appointment_id"],
                        row["role"],
                        row["starts_at"],
                        row["blocked_from"],
                        row["blocked_until"],
                        row["seats"],
                        row["session"],
                        row["capacity"],
                        row["hold_expires_at"],
                    )
                )
            ids = resource_ids if resource_ids is not None else set(self.resources)
            if resource_ids is None:
                self.hours, self.exceptions, self.claims = {}, {}, {}
                self._windows = {}
            stale = set()
            for resource_id in ids:
                new_hours = tuple(hours.get(resource_id, ()))
                new_exceptions = tuple(exceptions.get(resource_id, ()))
                if (self.hours.get(resource_id), self.exceptions.get(resource_id)) != (
                    new_hours,
                    new_exceptions,
                ):
                    stale.add(resource_id)
                self.hours[resource_id] = new_hours
                self.exceptions[resource_id] = new_exceptions
                ordered = tuple(
                    sorted(claims.get(resource_id, {}).values(), key=lambda c: c.blocked_from)
                )
                self.claims[resource_id] = ordered
                self._starts[resource_id] = [c.blocked_from for c in ordered]
                self.versions[resource_id] = self.versions.get(resource_id, 0) + 1
                self._longest[resource_id] = max(
                    (c.blocked_until - c.blocked_from for c in ordered), default=dt.timedelta()
                )
            if stale and resource_ids is not None:
                self._windows = {k: v for k, v in self._windows.items() if k[0] not in stale}
            by_location: dict[UUID, list[UUID]] = {}
            for resource in self.resources.values():
                if resource.retired:
                    continue  # in no pool any more
                for location_id in resource.location_ids:
                    by_location.setdefault(location_id, []).append(resource.id)
            self.by_location = {k: tuple(sorted(v)) for k, v in by_location.items()}

    # ---------------------------------------------------------------- per resource

    def windows(
        self, resource_id: UUID, location: LocationInfo, day: dt.date
    ) -> list[tuple[dt.datetime, dt.datetime]]:
        """Working windows of a resource at a location on a local day (UTC, merged)."""
        key = (resource_id, location.id, day)
        cached = self._windows.get(key)
        if cached is not None:
            return cached
        tz = location.tz
        spans = []
        for rule in self.hours.get(resource_id, ()):
            if rule.location_id != location.id or rule.weekday != day.weekday():
                continue
            if rule.effective_from and day < rule.effective_from:
                continue
            if rule.effective_until and day > rule.effective_until:
                continue
            start, end = boundary(day, rule.start, tz), boundary(day, rule.end, tz)
            if end > start:
                spans.append((start, end))
        lo, hi = day_span(day, tz)
        holes = []
        for exception in self.exceptions.get(resource_id, ()):
            if exception.kind == "extra":
                if (
                    exception.location_id == location.id
                    and exception.start < hi
                    and exception.end > lo
                ):
                    spans.append((max(exception.start, lo), min(exception.end, hi)))
            elif exception.location_id in (None, location.id):
                holes.append((exception.start, exception.end))
        windows = remove_open(union(spans), holes)
        windows = [(a, b) for a, b in windows if b > a]
        if len(self._windows) > 200_000:
            self._windows.clear()
        self._windows[key] = windows
        return windows

    def remember_valid(self, key: Any, value: tuple[int, dt.datetime, list[Any]]) -> None:
        if len(self.valid_cache) > 500_000:
            self.valid_cache.clear()
        self.valid_cache[key] = value

    def busy(
        self, resource_id: UUID, lo: dt.datetime, hi: dt.datetime, now: dt.datetime
    ) -> list[ClaimInfo]:
        """Live claims of a resource whose blocked time overlaps [lo, hi). Claims are sorted
        by blocked_from and none blocks longer than the resource's longest claim, so a
        bisection finds the few that can overlap."""
        claims = self.claims.get(resource_id, ())
        if not claims:
            return []
        starts = self._starts.get(resource_id)
        if starts is None or len(starts) != len(claims):  # a reload is between its two writes
            starts = [c.blocked_from for c in claims]
        first = bisect.bisect_left(starts, lo - self._longest.get(resource_id, dt.timedelta()))
        last = bisect.bisect_left(starts, hi, first)
        return [c for c in claims[first:last] if c.blocked_until > lo and c.live(now)]

    def candidates(self, requirement: RequirementInfo, location_id: UUID) -> list[ResourceInfo]:
        return [
            self.resources[r]
            for r in self.by_location.get(location_id, ())
            if requirement.accepts(self.resources[r])
        ]


def _type(row: dict[str, Any]) -> TypeInfo:
    d = row["definition"]
    minutes = dt.timedelta(minutes=1)
    return TypeInfo(
        id=row["appointment_type_id"],
        organization_id=row["organization_id"],
        name=row["name"],
        steps=tuple(
            StepInfo(
                offset=s["offset_minutes"] * minutes,
                duration=s["duration_minutes"] * minutes,
                requirements=tuple(
                    RequirementInfo(
                        r["role"],
                        r["category"],
                        UUID(r["resource_id"]) if r.get("resource_id") else None,
                        r.get("kind"),
                        r.get("specialty"),
                    )
                    for r in s["requirements"]
                ),
            )
            for s in d["steps"]
        ),
        buffer_before=d["buffer_before_minutes"] * minutes,
        buffer_after=d["buffer_after_minutes"] * minutes,
        seats=d["seats"],
        minimum_notice=d["minimum_notice_minutes"] * minutes,
        maximum_horizon=dt.timedelta(days=d["maximum_horizon_days"]),
        patient_bookable=d["patient_bookable"],
        retired=bool(row.get("retired")),
    )


def _hours(h: dict[str, Any]) -> HoursInfo:
    return HoursInfo(
        UUID(h["location_id"]) if isinstance(h["location_id"], str) else h["location_id"],
        h["weekday"],
        dt.time.fromisoformat(h["start"]),
        dt.time.fromisoformat(h["end"]),
        dt.date.fromisoformat(h["effective_from"]) if h.get("effective_from") else None,
        dt.date.fromisoformat(h["effective_until"]) if h.get("effective_until") else None,
    )
