"""Value objects of the booking domain. Immutable; instants are aware UTC datetimes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from clinic.events.appointments import AppointmentStatus


class Category(StrEnum):
    PROVIDER = "provider"
    ROOM = "room"
    DEVICE = "device"


# Appointment statuses are FHIR R4 Appointment.status, one to one: the domain uses the
# contract's enumeration rather than a copy of it.
Status = AppointmentStatus


SINCE_RELEASE = {"since_release": True}
"""Marks a field a value object gained after its first release (see ``commands.digest``)."""


class Actor(StrEnum):
    PATIENT = "patient"
    CLINIC = "clinic"
    SYSTEM = "system"


class ExceptionKind(StrEnum):
    LEAVE = "leave"
    HOLIDAY = "holiday"
    BLOCKED = "blocked"
    EXTRA = "extra"


@dataclass(frozen=True, order=True)
class Interval:
    """Half-open [start, end) between two UTC instants."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("interval bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"interval ends ({self.end}) at or before it starts ({self.start})")

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval) -> bool:
        return self.start <= other.start and other.end <= self.end

    @property
    def duration(self) -> dt.timedelta:
        return self.end - self.start


def merge(intervals: list[Interval]) -> list[Interval]:
    """Sorted union: overlapping or touching intervals become one."""
    merged: list[Interval] = []
    for interval in sorted(intervals):
        if merged and interval.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, interval.end))
        else:
            merged.append(interval)
    return merged


def subtract(intervals: list[Interval], holes: list[Interval]) -> list[Interval]:
    result = merge(intervals)
    for hole in merge(holes):
        next_result: list[Interval] = []
        for interval in result:
            if not interval.overlaps(hole):
                next_result.append(interval)
                continue
            if interval.start < hole.start:
                next_result.append(Interval(interval.start, hole.start))
            if hole.end < interval.end:
                next_result.append(Interval(hole.end, interval.end))
        result = next_result
    return result


def covered(windows: list[Interval], wanted: Interval) -> bool:
    return any(window.contains(wanted) for window in merge(windows))


@dataclass(frozen=True)
class WeeklyHours:
    """A resource works at ``location_id`` on ``weekday`` (0 = Monday) from ``start`` to ``end``
    local wall-clock time, between the effective dates (inclusive; None = open)."""

    location_id: UUID
    weekday: int
    start: dt.time
    end: dt.time
    effective_from: dt.date | None = None
    effective_until: dt.date | None = None

    def applies_on(self, day: dt.date, location_id: UUID | None = None) -> bool:
        if day.weekday() != self.weekday:
            return False
        if location_id is not None and location_id != self.location_id:
            return False
        if self.effective_from is not None and day < self.effective_from:
            return False
        return self.effective_until is None or day <= self.effective_until


@dataclass(frozen=True)
class ScheduleException:
    """Leave, a holiday or blocked time removes working time; ``extra`` adds one-off hours
    at ``location_id``. Bounds are UTC instants (converted from local time when created)."""

    id: UUID
    kind: ExceptionKind
    start: dt.datetime
    end: dt.datetime
    location_id: UUID | None = None
    reason: str = ""

    @property
    def interval(self) -> Interval:
        return Interval(self.start, self.end)


@dataclass(frozen=True)
class Requirement:
    """One resource a step needs: a named resource, or any of a pool (a provider with a
    specialty, a room or device of a kind) at the appointment's location."""

    role: str
    category: Category
    resource_id: UUID | None = None
    kind: str | None = None
    specialty: str | None = None

    def accepts(self, category: Category, kind: str, specialties: tuple[str, ...]) -> bool:
        if category != self.category:
            return False
        if self.kind is not None and kind != self.kind:
            return False
        return self.specialty is None or self.specialty in specialties


@dataclass(frozen=True)
class Step:
    """Part of a visit: starts ``offset_minutes`` after the appointment starts. Steps with
    the same offset run in parallel; a later offset runs after (nurse, then physician)."""

    name: str
    offset_minutes: int
    duration_minutes: int
    requirements: tuple[Requirement, ...]


@dataclass(frozen=True)
class Contact:
    system: str  # phone | email | sms
    value: str
    use: str | None = field(default=None, metadata=SINCE_RELEASE)  # home | work | mobile | ...


@dataclass(frozen=True)
class Reminder:
    """One reminder of a type's plan: ``before_minutes`` before the start, by ``channel``
    (None: the patient's preferred one)."""

    before_minutes: int
    channel: str | None = None


@dataclass(frozen=True)
class PatientText:
    """What patients read about an appointment type in one language."""

    name: str
    description: str = ""
    preparation: str = ""


@dataclass(frozen=True)
class Address:
    lines: tuple[str, ...] = ()
    city: str = ""
    district: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = ""


@dataclass(frozen=True)
class Identifier:
    """An identifier another system gave a patient, e.g. an EMR's MRN: (system URI, value)."""

    system: str
    value: str


@dataclass(frozen=True)
class Claim:
    """An appointment's hold on part of one resource's day."""

    appointment_id: UUID
    role: str
    start: dt.datetime
    end: dt.datetime
    blocked_from: dt.datetime
    blocked_until: dt.datetime
    seats: int = 1
    session: str | None = None
    capacity: int = 1
    hold_expires_at: dt.datetime | None = None
    overbooked: bool = False

    @property
    def blocked(self) -> Interval:
        return Interval(self.blocked_from, self.blocked_until)

    def live(self, now: dt.datetime) -> bool:
        """A hold whose expiry has passed no longer owns its time: no timer needed."""
        return self.hold_expires_at is None or self.hold_expires_at > now


@dataclass(frozen=True)
class Participant:
    resource_id: UUID
    category: Category
    role: str
    start: dt.datetime
    end: dt.datetime
    local_dates: tuple[dt.date, ...] = field(default=())
