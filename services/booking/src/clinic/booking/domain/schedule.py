"""A resource's working time: weekly hours per location and exceptions."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import itertools
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from clinic.booking.domain.acting import BookingAggregate
from clinic.booking.domain.errors import InvalidRequestError, NotFoundError
from clinic.booking.domain.timezones import boundary_to_utc, day_bounds, zone
from clinic.booking.domain.values import (
    ExceptionKind,
    Interval,
    ScheduleException,
    WeeklyHours,
    merge,
    subtract,
)

SCHEDULE_NAMESPACE = uuid5(NAMESPACE_URL, "https://clinic.example/booking/schedule")
WINDOWS_CACHED = 4096  # days x locations of one schedule version kept in memory


@functools.lru_cache(maxsize=16384)
def schedule_id(resource_id: UUID) -> UUID:
    return uuid5(SCHEDULE_NAMESPACE, str(resource_id))


def check_weekly_hours(hours: tuple[WeeklyHours, ...]) -> None:
    for rule in hours:
        if not 0 <= rule.weekday <= 6:
            raise InvalidRequestError(f"weekday {rule.weekday} is not 0 (Monday) to 6 (Sunday)")
        if rule.end <= rule.start:
            raise InvalidRequestError(
                f"working hours end ({rule.end}) before they start ({rule.start})"
            )
        if (
            rule.effective_from
            and rule.effective_until
            and rule.effective_until < rule.effective_from
        ):
            raise InvalidRequestError("effective_until is before effective_from")
    by_day: dict[tuple[object, int], list[WeeklyHours]] = {}
    for rule in hours:
        by_day.setdefault((rule.location_id, rule.weekday), []).append(rule)
    for rules in by_day.values():
        ordered = sorted(rules, key=lambda r: r.start)
        for first, second in itertools.pairwise(ordered):
            if second.start < first.end and _effective_overlap(first, second):
                raise InvalidRequestError(
                    f"working hours {first.start}-{first.end} and {second.start}-{second.end} "
                    "overlap on the same weekday"
                )


def _effective_overlap(a: WeeklyHours, b: WeeklyHours) -> bool:
    a_from, b_from = a.effective_from or dt.date.min, b.effective_from or dt.date.min
    a_until, b_until = a.effective_until or dt.date.max, b.effective_until or dt.date.max
    return a_from <= b_until and b_from <= a_until


class Schedule(BookingAggregate):
    """One per resource (id derived from the resource id)."""

    @staticmethod
    def create_id(resource_id: UUID) -> UUID:
        return schedule_id(resource_id)

    @event("Created")
    def __init__(self, resource_id: UUID, organization_id: UUID) -> None:
        self.resource_id = resource_id
        self.organization_id = organization_id
        self.weekly_hours: tuple[WeeklyHours, ...] = ()
        self.exceptions: dict[UUID, ScheduleException] = {}

    def set_weekly_hours(self, hours: tuple[WeeklyHours, ...]) -> None:
        check_weekly_hours(hours)
        self._weekly_hours_set(hours=tuple(hours))

    @event("WeeklyHoursSet")
    def _weekly_hours_set(self, hours: tuple[WeeklyHours, ...]) -> None:
        self.weekly_hours = tuple(hours)

    def add_exception(self, exception: ScheduleException) -> None:
        if exception.end <= exception.start:
            raise InvalidRequestError("an exception must end after it starts")
        if exception.kind == ExceptionKind.EXTRA and exception.location_id is None:
            raise InvalidRequestError("extra hours need the location they are worked at")
        self._exception_added(exception=exception)

    @event("ExceptionAdded")
    def _exception_added(self, exception: ScheduleException) -> None:
        self.exceptions[exception.id] = exception

    def remove_exception(self, exception_id: UUID) -> None:
        if exception_id not in self.exceptions:
            raise NotFoundError("schedule exception", exception_id)
        self._exception_removed(exception_id=exception_id)

    @event("ExceptionRemoved")
    def _exception_removed(self, exception_id: UUID) -> None:
        del self.exceptions[exception_id]

    def __deepcopy__(self, memo: dict[int, Any]) -> Schedule:
        """A copy without the kept windows: each copy keeps its own."""
        copied = object.__new__(type(self))
        memo[id(self)] = copied
        for name, value in self.__dict__.items():
            if name != "_windows":
                copied.__dict__[name] = copy.deepcopy(value, memo)
        return copied

    def windows(self, day: dt.date, location_id: UUID, time_zone: str) -> list[Interval]:
        """When the resource works at ``location_id`` on local ``day``, as UTC intervals.

        Every booking of a day asks again, so a schedule keeps what it worked out, by its
        version: any event that changes it moves the version on, so nothing kept for an
        older version is ever read again."""
        kept: dict[tuple[int, dt.date, UUID, str], tuple[Interval, ...]]
        kept = self.__dict__.setdefault("_windows", {})
        key = (self.version, day, location_id, time_zone)
        found = kept.get(key)
        if found is None:
            found = tuple(self._compute_windows(day, location_id, time_zone))
            if len(kept) >= WINDOWS_CACHED:
                kept.clear()
            kept[key] = found
        return list(found)

    def _compute_windows(self, day: dt.date, location_id: UUID, time_zone: str) -> list[Interval]:
        return working_windows(
            self.weekly_hours, tuple(self.exceptions.values()), day, location_id, time_zone
        )


def working_windows(
    hours: tuple[WeeklyHours, ...],
    exceptions: tuple[ScheduleException, ...],
    day: dt.date,
    location_id: UUID,
    time_zone: str,
) -> list[Interval]:
    tz = zone(time_zone)
    windows: list[Interval] = []
    for rule in hours:
        if rule.applies_on(day, location_id):
            start, end = boundary_to_utc(day, rule.start, tz), boundary_to_utc(day, rule.end, tz)
            if end > start:
                windows.append(Interval(start, end))
    bounds = Interval(*day_bounds(day, tz))
    for exception in exceptions:
        if (
            exception.kind == ExceptionKind.EXTRA
            and exception.location_id == location_id
            and exception.interval.overlaps(bounds)
        ):
            windows.append(
                Interval(max(exception.start, bounds.start), min(exception.end, bounds.end))
            )
    # Leave, holidays and blocked time without a location close every location; with one,
    # only that location (a clinic closed for the day leaves its doctors' other clinics open).
    holes = [
        e.interval
        for e in exceptions
        if e.kind != ExceptionKind.EXTRA and e.location_id in (None, location_id)
    ]
    return subtract(merge(windows), holes)
