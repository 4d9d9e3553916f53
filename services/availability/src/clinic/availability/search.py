"""Slot search over the in-memory index: the intersection of every required resource's free
time, with buffers, seats, notice and horizon respected; results in UTC and local time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

from clinic.availability.index import (
    Index,
    LocationInfo,
    RequirementInfo,
    ResourceInfo,
    Span,
    StepInfo,
    TypeInfo,
    day_span,
    intersect,
    remove_open,
    union,
)
from clinic.events.free_start import FreeStart, free_start
from clinic.platform.problems import Problem

Option = tuple[StepInfo, RequirementInfo, list[ResourceInfo]]
"""One requirement of one step, and the resources that can fill it at the location."""

TIMES_OF_DAY = {"morning": (6, 12), "afternoon": (12, 17), "evening": (17, 22)}


class SearchError(Problem):
    """A search that cannot be answered: a kind of the platform's problem."""

    status = 422
    slug = "invalid-search"
    title = "Cannot search that"


class NotKnownHereError(SearchError):
    """An id this projection does not hold (or another organisation's: indistinguishable)."""

    status = 404
    slug = "not-found"
    title = "Not known here"


class NotPatientBookableError(SearchError):
    status = 403
    slug = "not-patient-bookable"
    title = "Patients cannot book this appointment type themselves"


class RetiredError(SearchError):
    status = 410
    slug = "retired"
    title = "This appointment type or location is retired"


class InvalidRangeError(SearchError):
    slug = "invalid-range"


class RangeTooLongError(SearchError):
    slug = "range-too-long"


@dataclass(slots=True)
class Slot:
    """A free start. Times are kept as UTC seconds (cheap to make by the hundred) and turned
    into datetimes only when asked for."""

    start_ts: int
    end_ts: int
    location: LocationInfo
    resources: tuple[tuple[str, UUID], ...]
    seats_left: int | None = None

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.start_ts, dt.UTC)

    @property
    def end(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.end_ts, dt.UTC)

    def view(self) -> FreeStart:
        return free_start(
            self.start,
            self.end,
            self.location.tz,
            self.location.id,
            dict(self.resources),
            self.seats_left,
        )


@dataclass(frozen=True)
class Query:
    organization_id: UUID
    appointment_type_id: UUID
    location_ids: tuple[UUID, ...]
    first_day: dt.date
    last_day: dt.date
    now: dt.datetime
    provider_ids: frozenset[UUID] = frozenset()
    times_of_day: tuple[str, ...] = ()
    limit: int = 100
    step_minutes: int = 15
    for_patient: bool = False
    """A patient searching for themself: types only staff may book are not offered."""


def searchable_type(index: Index, query: Query) -> TypeInfo:
    """The type searched for, if this organisation has it and the searcher may book it."""
    kind = appointment_type(index, query.organization_id, query.appointment_type_id)
    if query.for_patient and not kind.patient_bookable:
        raise NotPatientBookableError(f"{kind.name} is booked by the clinic; please call")
    return kind


def appointment_type(index: Index, organization_id: UUID, type_id: UUID) -> TypeInfo:
    kind = index.types.get(type_id)
    if kind is None or kind.organization_id != organization_id:
        raise NotKnownHereError(f"appointment type {type_id} is not known here")
    if kind.retired:
        raise RetiredError(f"appointment type {kind.name} is retired: it takes no bookings")
    return kind


def location(index: Index, organization_id: UUID, location_id: UUID) -> LocationInfo:
    found = index.locations.get(location_id)
    if found is None or found.organization_id != organization_id:
        raise NotKnownHereError(f"location {location_id} is not known here")
    if found.retired:
        raise RetiredError(f"location {found.name} is retired: it takes no bookings")
    return found


def find_slots(index: Index, query: Query) -> list[Slot]:
    kind = searchable_type(index, query)
    locations = [location(index, query.organization_id, lid) for lid in query.location_ids]
    if query.last_day < query.first_day:
        raise InvalidRangeError("the date range ends before it starts")
    if (query.last_day - query.first_day).days > 92:
        raise RangeTooLongError("search at most 93 days at once")
    slots: list[Slot] = []
    for place in locations:
        for slot in _slots_at(index, kind, place, query):
            slots.append(slot)
            if len(slots) >= query.limit and len(locations) == 1:
                break
    slots.sort(key=lambda s: (s.start_ts, s.location.id))
    return slots[: query.limit]


def next_available(index: Index, query: Query) -> dict[UUID, Slot | None]:
    """The earliest slot at each location, looking ahead day by day to the horizon."""
    kind = searchable_type(index, query)
    found: dict[UUID, Slot | None] = {}
    for location_id in query.location_ids:
        place = location(index, query.organization_id, location_id)
        first: Slot | None = None
        day = query.first_day
        while day <= query.last_day and first is None:
            week = Query(
                **{
                    **query.__dict__,
                    "first_day": day,
                    "last_day": min(query.last_day, day + dt.timedelta(days=6)),
                    "limit": 1,
                    "location_ids": (location_id,),
                }
            )
            first = next(_slots_at(index, kind, place, week), None)
            day += dt.timedelta(days=7)
        found[location_id] = first
    return found


def _slots_at(index: Index, kind: TypeInfo, place: LocationInfo, query: Query) -> Iterator[Slot]:
    options: list[Option] = []
    for step in kind.steps:
        for requirement in step.requirements:
            pool = index.candidates(requirement, place.id)
            if requirement.category == "provider" and query.provider_ids:
                pool = [r for r in pool if r.id in query.provider_ids]
            if not pool:
                return
            options.append((step, requirement, pool))
    earliest = query.now + kind.minimum_notice
    latest = query.now + kind.maximum_horizon
    tz = place.tz
    grid = query.step_minutes * 60
    day = query.first_day
    while day <= query.last_day:
        lo, hi = day_span(day, tz)
        lo, hi = max(lo, earliest), min(hi - dt.timedelta(seconds=1), latest)
        if lo <= hi:
            yield from _day(
                index, kind, place, options, day, _ts(lo, up=True), _ts(hi), grid, query
            )
        day += dt.timedelta(days=1)


def _ts(value: dt.datetime, up: bool = False) -> int:
    """UTC seconds; ``up`` rounds a fraction of a second up (never before ``value``)."""
    seconds = value.timestamp()
    whole = int(seconds)
    return whole + 1 if up and whole < seconds else whole


def _valid(
    index: Index,
    kind: TypeInfo,
    place: LocationInfo,
    step: StepInfo,
    resource: ResourceInfo,
    day: dt.date,
    lo: int,
    hi: int,
    now: dt.datetime,
) -> list[tuple[int, int]]:
    """Starts of the visit (not of the step), in UTC seconds, at which ``resource`` can do
    ``step`` on ``day``, clipped to [lo, hi]. The unclipped answer is cached until the
    resource's schedule or claims change, or until the next hold in it expires."""
    # Integer keys: hashing a UUID runs Python code, hashing its int does not.
    key = (kind.id.int, resource.id.int, place.id.int, day.toordinal(), step.offset, step.duration)
    version = index.versions.get(resource.id, 0)
    cached = index.valid_cache.get(key)
    if cached is not None and cached[0] == version and now < cached[1]:
        spans: list[tuple[int, int]] = cached[2]
    else:
        found, expires = _valid_day(index, kind, place, step, resource, day, now)
        spans = [(_ts(a, up=True), _ts(b)) for a, b in found]
        spans = [(a, b) for a, b in spans if a <= b]
        index.remember_valid(key, (version, expires, spans))
    if not spans or (lo <= spans[0][0] and spans[-1][1] <= hi):
        return spans
    return intersect(spans, [(lo, hi)])


def _valid_day(
    index: Index,
    kind: TypeInfo,
    place: LocationInfo,
    step: StepInfo,
    resource: ResourceInfo,
    day: dt.date,
    now: dt.datetime,
) -> tuple[list[Span], dt.datetime]:
    lo, hi = day_span(day, place.tz)
    # A copy: the cached window lists must never be extended in place.
    windows = [
        *index.windows(resource.id, place, day),
        *index.windows(resource.id, place, day + dt.timedelta(days=1)),
    ]
    spans = [(w_lo - step.offset, w_hi - step.offset - step.duration) for w_lo, w_hi in windows]
    spans = intersect(union(s for s in spans if s[0] <= s[1]), [(lo, hi - _TICK)])
    never = dt.datetime.max.replace(tzinfo=dt.UTC)
    if not spans:
        return [], never
    before, after = kind.buffer_before, kind.buffer_after
    claims = index.busy(
        resource.id,
        spans[0][0] + step.offset - before,
        spans[-1][1] + step.offset + step.duration + after,
        now,
    )
    holes = [
        (
            c.blocked_from - step.offset - step.duration - after,
            c.blocked_until - step.offset + before,
        )
        for c in claims
    ]
    expires = min((c.hold_expires_at for c in claims if c.hold_expires_at), default=never)
    return remove_open(spans, holes), expires


_TICK = dt.timedelta(microseconds=1)


def _offset(ts: int, place: LocationInfo) -> int:
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    offset = place.tz.utcoffset(moment.replace(tzinfo=None))
    return int(offset.total_seconds()) if offset is not None else 0


def _grid(span: tuple[int, int], step: int, place: LocationInfo) -> Iterator[tuple[int, int]]:
    """(start, local offset) on the grid of local wall-clock time within ``span``."""
    lo, hi = span
    offset = _offset(lo, place)
    if _offset(hi, place) != offset:  # a daylight saving change inside: go piece by piece
        middle = (lo + hi) // 2
        if middle == lo:
            yield from _grid((lo, lo), step, place) if hi == lo else ()
            return
        yield from _grid((lo, middle), step, place)
        yield from _grid((middle + 1, hi), step, place)
        return
    start = lo + (-(lo + offset)) % step
    while start <= hi:
        yield start, offset
        start += step


def _day(
    index: Index,
    kind: TypeInfo,
    place: LocationInfo,
    options: list[Option],
    day: dt.date,
    lo: int,
    hi: int,
    step: int,
    query: Query,
) -> Iterator[Slot]:
    slots = list(_new_visits(index, kind, place, options, day, lo, hi, step, query))
    if kind.seats > 1:
        slots += _open_sessions(index, kind, place, options, lo, hi, query)
        slots.sort(key=lambda s: s.start_ts)
    yield from slots


def _new_visits(
    index: Index,
    kind: TypeInfo,
    place: LocationInfo,
    options: list[Option],
    day: dt.date,
    lo: int,
    hi: int,
    step: int,
    query: Query,
) -> Iterator[Slot]:
    per_option: list[list[tuple[ResourceInfo, list[tuple[int, int]]]]] = []
    together: list[tuple[int, int]] | None = None
    for visit_step, _, pool in options:
        valid = [
            (r, _valid(index, kind, place, visit_step, r, day, lo, hi, query.now)) for r in pool
        ]
        valid = [(r, v) for r, v in valid if v]
        any_member = union(s for _, v in valid for s in v)
        together = any_member if together is None else intersect(together, any_member)
        if not together:
            return
        per_option.append(valid)
    assert together is not None
    assign = _Assigner(options, per_option)
    duration = int(kind.duration.total_seconds())
    seats = kind.seats if kind.seats > 1 else None
    hours = [TIMES_OF_DAY[n] for n in query.times_of_day]
    for span in together:
        for start, offset in _grid(span, step, place):
            if hours and not any(a <= (start + offset) // 3600 % 24 < b for a, b in hours):
                continue
            chosen = assign(start)
            if chosen is not None:
                yield Slot(start, start + duration, place, chosen, seats)


class _Assigner:
    """Picks, for increasing start times, the first resource of each requirement whose valid
    starts contain the time (pointers only move forward), never one resource for two
    overlapping roles."""

    def __init__(
        self,
        options: list[Option],
        per_option: list[list[tuple[ResourceInfo, list[tuple[int, int]]]]],
    ) -> None:
        self.offsets = [
            (int(s.offset.total_seconds()), int(s.duration.total_seconds())) for s, _, _ in options
        ]
        self.options = options
        self.per_option = per_option
        self.pointers = [[0] * len(valid) for valid in per_option]
        seen: dict[UUID, int] = {}
        for valid in per_option:
            for resource, _ in valid:
                seen[resource.id] = seen.get(resource.id, 0) + 1
        self.shared = {rid for rid, count in seen.items() if count > 1}

    def __call__(self, start: int) -> tuple[tuple[str, UUID], ...] | None:
        chosen: list[tuple[str, UUID]] = []
        taken: list[tuple[UUID, int, int]] = []
        shared = self.shared
        for n, valid in enumerate(self.per_option):
            requirement = self.options[n][1]
            pointers = self.pointers[n]
            pick = None
            for m, (resource, spans) in enumerate(valid):
                i = pointers[m]
                size = len(spans)
                while i < size and spans[i][1] < start:
                    i += 1
                pointers[m] = i
                if i == size or spans[i][0] > start:
                    continue
                if shared and resource.id in shared:
                    offset, length = self.offsets[n]
                    s_lo = start + offset
                    s_hi = s_lo + length
                    if any(r == resource.id and a < s_hi and s_lo < b for r, a, b in taken):
                        continue
                    taken.append((resource.id, s_lo, s_hi))
                pick = resource
                break
            if pick is None:
                return None
            chosen.append((requirement.role, pick.id))
        return tuple(chosen)


def _open_sessions(
    index: Index,
    kind: TypeInfo,
    place: LocationInfo,
    options: list[Option],
    lo_ts: int,
    hi_ts: int,
    query: Query,
) -> list[Slot]:
    """Group sessions of this type that started filling and still have seats: joining one
    needs, for every role, a resource already hosting that session with a seat left."""
    prefix = f"{kind.id}@"
    lo = dt.datetime.fromtimestamp(lo_ts, dt.UTC)
    hi = dt.datetime.fromtimestamp(hi_ts, dt.UTC)
    hosts: dict[dt.datetime, dict[str, tuple[UUID, int]]] = {}
    for visit_step, requirement, pool in options:
        for resource in pool:
            claims = index.busy(
                resource.id,
                lo + visit_step.offset,
                hi + visit_step.offset + kind.duration,
                query.now,
            )
            sessions: dict[str, list[int]] = {}
            starts: dict[str, dt.datetime] = {}
            capacity: dict[str, int] = {}
            for claim in claims:
                if (
                    claim.session
                    and claim.session.startswith(prefix)
                    and claim.role == requirement.role
                ):
                    sessions.setdefault(claim.session, []).append(claim.seats)
                    starts[claim.session] = claim.start - visit_step.offset
                    capacity[claim.session] = claim.capacity
            for key, seats in sessions.items():
                left = capacity[key] - sum(seats)
                if left > 0 and lo <= starts[key] <= hi:
                    hosts.setdefault(starts[key], {})[requirement.role] = (resource.id, left)
    roles = [r.role for _, r, _ in options]
    slots = []
    for start, by_role in hosts.items():
        if set(by_role) != set(roles):
            continue
        if query.times_of_day and not _in_times(start, place, query.times_of_day):
            continue
        slots.append(
            Slot(
                _ts(start),
                _ts(start + kind.duration),
                place,
                tuple((role, by_role[role][0]) for role in roles),
                min(left for _, left in by_role.values()),
            )
        )
    return slots


def _in_times(start: dt.datetime, place: LocationInfo, names: tuple[str, ...]) -> bool:
    hour = start.astimezone(place.tz).hour
    return any(TIMES_OF_DAY[n][0] <= hour < TIMES_OF_DAY[n][1] for n in names)
