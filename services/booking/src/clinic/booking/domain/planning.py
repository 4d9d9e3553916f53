"""The booking decision, as a pure function: given an appointment type, a start, the
candidate resources with their schedules and days, decide which resource fills each
requirement and which minutes each one gives up, or say which rule forbids it.

No I/O and no clock: the caller passes ``now`` and a function that returns a loaded
``ResourceDay`` (or None when the day has no claims yet).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from clinic.booking.domain.errors import (
    BookingError,
    InvalidTimeError,
    NoResourceAvailableError,
    OutsideWorkingHoursError,
    SlotTakenError,
    TooFarAheadError,
    TooSoonError,
)
from clinic.booking.domain.reference import AppointmentType, Resource
from clinic.booking.domain.resource_day import ResourceDay, check_claim
from clinic.booking.domain.schedule import Schedule
from clinic.booking.domain.timezones import as_utc, local_dates, zone
from clinic.booking.domain.values import (
    Category,
    Claim,
    Interval,
    Participant,
    Requirement,
    covered,
)

DayLoader = Callable[[UUID, dt.date], ResourceDay | None]


@dataclass(frozen=True)
class Candidate:
    resource: Resource
    schedule: Schedule | None


@dataclass(frozen=True)
class PlannedClaim:
    resource_id: UUID
    category: Category
    time_zone: str
    overbooking_allowance: int
    claim: Claim
    local_dates: tuple[dt.date, ...]

    def participant(self) -> Participant:
        return Participant(
            resource_id=self.resource_id,
            category=self.category,
            role=self.claim.role,
            start=self.claim.start,
            end=self.claim.end,
            local_dates=self.local_dates,
        )


@dataclass(frozen=True)
class Plan:
    start: dt.datetime
    end: dt.datetime
    claims: tuple[PlannedClaim, ...]

    @property
    def participants(self) -> tuple[Participant, ...]:
        return tuple(c.participant() for c in self.claims)


@dataclass(frozen=True)
class Visit:
    """What is being decided: one appointment of ``appointment_type`` at a location."""

    appointment_id: UUID
    appointment_type: AppointmentType
    location_id: UUID
    location_time_zone: str
    start: dt.datetime
    hold_expires_at: dt.datetime | None = None
    allow_overbooking: bool = False


def check_policy(appointment_type: AppointmentType, start: dt.datetime, now: dt.datetime) -> None:
    """Minimum notice and maximum horizon of the appointment type."""
    if start < now:
        raise InvalidTimeError(f"{start.isoformat()} is in the past")
    if start < now + appointment_type.minimum_notice:
        raise TooSoonError(
            f"{appointment_type.name} needs {_minutes(appointment_type.minimum_notice)} minutes' "
            "notice",
            earliest=(now + appointment_type.minimum_notice).isoformat(),
        )
    if start > now + appointment_type.maximum_horizon:
        raise TooFarAheadError(
            f"{appointment_type.name} can be booked at most "
            f"{appointment_type.maximum_horizon.days} days ahead",
            latest=(now + appointment_type.maximum_horizon).isoformat(),
        )


def _minutes(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 60)


def working(candidate: Candidate, interval: Interval, location_id: UUID, time_zone: str) -> bool:
    """Whether the resource works at the location for the whole interval."""
    if candidate.schedule is None:
        return False
    windows: list[Interval] = []
    for day in local_dates(interval.start, interval.end, zone(time_zone)):
        windows += candidate.schedule.windows(day, location_id, time_zone)
    # Windows of consecutive days may touch at midnight: covered() merges them first.
    return covered(windows, interval)


def plan_visit(
    visit: Visit,
    candidates: dict[tuple[int, int], list[Candidate]],
    days: DayLoader,
    now: dt.datetime,
) -> Plan:
    """Choose a resource for every requirement of every step, or raise the rule that fails.

    ``candidates[(step, requirement)]`` lists who may fill that requirement, in preference
    order (a named resource is a list of one). Each chosen claim is checked against the live
    claims on every local day its blocked time touches, and against the plan's own claims.
    """
    kind = visit.appointment_type
    start = as_utc(visit.start)  # every instant of the plan in UTC (see as_utc)
    end = start + kind.duration
    chosen: list[PlannedClaim] = []
    for step_index, step in enumerate(kind.steps):
        step_start = start + dt.timedelta(minutes=step.offset_minutes)
        step_end = step_start + dt.timedelta(minutes=step.duration_minutes)
        for requirement_index, requirement in enumerate(step.requirements):
            options = candidates.get((step_index, requirement_index), [])
            claim = Claim(
                appointment_id=visit.appointment_id,
                role=requirement.role,
                start=step_start,
                end=step_end,
                blocked_from=step_start - kind.buffer_before,
                blocked_until=step_end + kind.buffer_after,
                seats=1,
                session=(f"{kind.id}@{start.isoformat()}" if kind.is_group_session else None),
                capacity=kind.seats,
                hold_expires_at=visit.hold_expires_at,
            )
            chosen.append(_choose(visit, requirement, options, claim, chosen, days, now))
    return Plan(start=start, end=end, claims=tuple(chosen))


def _choose(
    visit: Visit,
    requirement: Requirement,
    options: list[Candidate],
    claim: Claim,
    chosen: list[PlannedClaim],
    days: DayLoader,
    now: dt.datetime,
) -> PlannedClaim:
    if not options:
        raise NoResourceAvailableError(
            f"no {requirement.category} can fill '{requirement.role}' at this location",
            role=requirement.role,
        )
    failures: list[BookingError] = []
    ranked = _rank(options, claim, days, now)
    for candidate in ranked:
        try:
            planned = _try(visit, candidate, claim, chosen, days, now)
        except BookingError as error:
            failures.append(error)
            continue
        return planned
    if len(options) == 1:
        raise failures[0]
    reasons = sorted({type(f).slug for f in failures})
    raise NoResourceAvailableError(
        f"none of the {len(options)} resources that can fill '{requirement.role}' is free "
        f"at {claim.start.isoformat()}",
        role=requirement.role,
        reasons=reasons,
    ) from None


def _rank(
    options: list[Candidate], claim: Claim, days: DayLoader, now: dt.datetime
) -> list[Candidate]:
    """Prefer a resource already running the same group session, then the least busy that
    day, then a stable order, so pools share the load."""
    if len(options) == 1:
        return options

    def key(candidate: Candidate) -> tuple[int, int, str]:
        resource = candidate.resource
        dates = local_dates(claim.blocked_from, claim.blocked_until, zone(resource.time_zone))
        live = [c for d in dates if (day := days(resource.id, d)) for c in day.live_claims(now)]
        in_session = claim.session is not None and any(c.session == claim.session for c in live)
        return (0 if in_session else 1, len(live), str(resource.id))

    return sorted(options, key=key)


def _try(
    visit: Visit,
    candidate: Candidate,
    claim: Claim,
    chosen: list[PlannedClaim],
    days: DayLoader,
    now: dt.datetime,
) -> PlannedClaim:
    resource = candidate.resource
    step = Interval(claim.start, claim.end)
    if not working(candidate, step, visit.location_id, visit.location_time_zone):
        raise OutsideWorkingHoursError(
            f"{resource.name} does not work at this location from {claim.start.isoformat()} "
            f"to {claim.end.isoformat()}",
            resource_id=str(resource.id),
        )
    dates = tuple(local_dates(claim.blocked_from, claim.blocked_until, zone(resource.time_zone)))
    existing: list[Claim] = []
    for local_date in dates:
        day = days(resource.id, local_date)
        if day is not None:
            existing += day.claims.values()
    for planned in chosen:  # one resource cannot fill two overlapping roles of one visit
        if planned.resource_id == resource.id and planned.claim.blocked.overlaps(claim.blocked):
            raise SlotTakenError(
                f"{resource.name} already fills '{planned.claim.role}' at that time",
                resource_id=str(resource.id),
            )
    overbooked = check_claim(
        existing,
        claim,
        now,
        resource.overbooking_allowance,
        visit.allow_overbooking and resource.category == Category.PROVIDER,
    )
    if overbooked:
        claim = Claim(**{**claim.__dict__, "overbooked": True})
    return PlannedClaim(
        resource_id=resource.id,
        category=resource.category,
        time_zone=resource.time_zone,
        overbooking_allowance=resource.overbooking_allowance,
        claim=claim,
        local_dates=dates,
    )
