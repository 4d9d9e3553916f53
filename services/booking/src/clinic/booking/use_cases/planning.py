"""Deciding time: which resources can take a visit at a start, the claims that puts on their
days, and the free starts to offer when a time is refused."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from clinic.booking.decision import Attempt
from clinic.booking.domain.errors import BookingError, InvalidRequestError
from clinic.booking.domain.planning import Candidate, Plan, Visit, check_policy, plan_visit
from clinic.booking.domain.reference import AppointmentType, Location, Organization, Resource
from clinic.booking.domain.resource_day import ResourceDay, resource_day_id
from clinic.booking.domain.schedule import Schedule, schedule_id
from clinic.booking.domain.timezones import zone
from clinic.booking.domain.values import Category, Requirement
from clinic.events.free_start import FreeStart, free_start

Days = dict[UUID, ResourceDay | None]


@dataclass(frozen=True)
class Context:
    """The reference data a visit is decided against."""

    organization: Organization
    kind: AppointmentType
    location: Location


def context(
    attempt: Attempt, organization_id: UUID, appointment_type_id: UUID, location_id: UUID
) -> Context:
    get = attempt.reference.get
    return Context(
        get(Organization, organization_id, organization_id, "organization"),
        get(AppointmentType, appointment_type_id, organization_id, "appointment type"),
        get(Location, location_id, organization_id, "location"),
    )


def candidates(
    attempt: Attempt, ctx: Context, preferred: dict[str, UUID]
) -> dict[tuple[int, int], list[Candidate]]:
    """For each requirement of each step, the resources that could fill it. A preference
    for a role the type does not have is refused, not ignored."""
    roles = {r.role for step in ctx.kind.steps for r in step.requirements}
    unknown = sorted(set(preferred) - roles)
    if unknown:
        raise InvalidRequestError(
            f"{ctx.kind.name} has no role {', '.join(unknown)}; "
            f"its roles are {', '.join(sorted(roles))}"
        )
    return {
        (s, r): _pool(attempt, ctx.organization, requirement, ctx.location.id, preferred)
        for s, step in enumerate(ctx.kind.steps)
        for r, requirement in enumerate(step.requirements)
    }


def _pool(
    attempt: Attempt,
    organization: Organization,
    requirement: Requirement,
    location_id: UUID,
    preferred: dict[str, UUID],
) -> list[Candidate]:
    wanted = requirement.resource_id or preferred.get(requirement.role)
    entries = organization.pool(requirement, location_id, only=wanted)
    if wanted is not None and not entries:
        raise InvalidRequestError(
            f"resource {wanted} cannot fill '{requirement.role}' at this location"
        )
    org = organization.id
    return [
        Candidate(
            attempt.reference.get(Resource, entry.resource_id, org, "resource"),
            attempt.reference.maybe(Schedule, schedule_id(entry.resource_id), org),
        )
        for entry in entries
    ]


def day_loader(
    attempt: Attempt, days: Days, hold: bool = True
) -> Callable[[UUID, dt.date], ResourceDay | None]:
    """Loads resource days into ``days``; ``hold``: for a decision that may change them."""

    def load(resource_id: UUID, local_date: dt.date) -> ResourceDay | None:
        day_id = resource_day_id(resource_id, local_date)
        if day_id not in days:
            days[day_id] = attempt.day(day_id) if hold else attempt.maybe(day_id)
        return days[day_id]

    return load


def plan(
    attempt: Attempt,
    ctx: Context,
    appointment_id: UUID,
    start: dt.datetime,
    preferred: dict[str, UUID],
    days: Days,
    hold_expires_at: dt.datetime | None,
    allow_overbooking: bool,
) -> Plan:
    visit = Visit(
        appointment_id=appointment_id,
        appointment_type=ctx.kind,
        location_id=ctx.location.id,
        location_time_zone=ctx.location.time_zone,
        start=start,
        hold_expires_at=hold_expires_at,
        allow_overbooking=allow_overbooking,
    )
    found = candidates(attempt, ctx, preferred)
    return plan_visit(visit, found, day_loader(attempt, days), attempt.now)


def apply_plan(
    attempt: Attempt, chosen: Plan, organization_id: UUID, days: Days, allow_overbooking: bool
) -> list[ResourceDay]:
    """Put the plan's claims on the resource days (opening the days nobody used yet)."""
    touched: dict[UUID, ResourceDay] = {}
    for planned in chosen.claims:
        for local_date in planned.local_dates:
            day_id = resource_day_id(planned.resource_id, local_date)
            day = days.get(day_id)
            if day is None:
                day = ResourceDay(
                    resource_id=planned.resource_id,
                    local_date=local_date,
                    organization_id=organization_id,
                )
                days[day_id] = day
            day.claim(
                planned.claim,
                attempt.now,
                planned.overbooking_allowance,
                allow_overbooking and planned.category == Category.PROVIDER,
            )
            touched[day_id] = day
    return list(touched.values())


def alternatives(
    attempt: Attempt,
    ctx: Context,
    around: dt.datetime,
    preferred: dict[str, UUID],
    wanted: int,
    ignoring: UUID | None = None,
    step_minutes: int = 15,
    days_ahead: int = 7,
) -> list[FreeStart]:
    """The next ``wanted`` free starts after ``around`` (a UTC instant; same type, location
    and preferences), in the shape availability's search gives a free start."""
    found: list[FreeStart] = []
    days: Days = {}
    pools = candidates(attempt, ctx, preferred)
    loader = day_loader(attempt, days, hold=False)
    now = attempt.now
    tz = zone(ctx.location.time_zone)
    cursor = max(around, now + ctx.kind.minimum_notice)
    cursor = cursor.replace(second=0, microsecond=0)
    cursor += dt.timedelta(minutes=(-cursor.minute) % step_minutes)
    limit = around + dt.timedelta(days=days_ahead)
    while cursor <= limit and len(found) < wanted:
        if cursor != around:
            visit = Visit(
                appointment_id=ignoring or uuid.UUID(int=0),
                appointment_type=ctx.kind,
                location_id=ctx.location.id,
                location_time_zone=ctx.location.time_zone,
                start=cursor,
            )
            try:
                check_policy(ctx.kind, cursor, now)
                chosen = plan_visit(visit, pools, loader, now)
            except BookingError:
                pass
            else:
                found.append(
                    free_start(
                        chosen.start,
                        chosen.end,
                        tz,
                        ctx.location.id,
                        {c.claim.role: c.resource_id for c in chosen.claims},
                    )
                )
        cursor += dt.timedelta(minutes=step_minutes)
    return found
