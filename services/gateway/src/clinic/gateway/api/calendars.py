"""Calendars for the front desk and providers: a location's day, and a provider's, room's or
device's days (one day, or a week). Availability builds them from booking's facts; they name
patients (by id) and are audited as patient data. A clinic role limited to some locations
sees only those locations: another location's calendar is a 404, and a provider's days show
only the appointments at the caller's locations.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from clinic.gateway.access import NotFoundError, check_location
from clinic.gateway.api.answers import Caller, Target, audited, caller_of, json_answer, read
from clinic.gateway.api.views import LocationDayView, ResourceCalendarView
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import Day

router = APIRouter(prefix="/v1", tags=["calendars"])
StatusFilter = Literal[
    "booked", "arrived", "fulfilled", "cancelled", "noshow", "checked-in", "pending", "proposed"
]
Statuses = Annotated[list[StatusFilter], Query(max_length=10)]


@router.get(
    "/locations/{location_id}/calendar",
    response_model=LocationDayView,
    responses={**problems(404)},
    summary="A location's day",
)
async def location_day(
    request: Request,
    location_id: UUID,
    date: Day,
    status: Statuses = [],  # noqa: B006
    appointment_type_id: UUID | None = None,
) -> Response:
    """Every provider, room and device of the location on one local date: appointments
    (held ones with their expiry), free and blocked time, side by side."""
    caller = caller_of(request, "calendars.location")
    check_location(caller.principal, location_id, f"location {location_id}")
    params: dict[str, Any] = {"date": date.isoformat(), "status": status}
    if appointment_type_id is not None:
        params["appointment_type_id"] = str(appointment_type_id)
    reply = await caller.get(
        caller.services.availability,
        f"/organizations/{caller.org}/calendars/locations/{location_id}",
        params,
    )
    return await read(caller, reply, Target((location_id,)))


def _resource_route(path: str, category: str, noun: str) -> None:
    async def calendar(
        request: Request,
        resource_id: UUID,
        date: Day,
        days: Annotated[int, Query(ge=1, le=31, description="1: the day; 7: a week.")] = 1,
        status: Statuses = [],  # noqa: B006
        appointment_type_id: UUID | None = None,
    ) -> Response:
        caller = caller_of(request, "calendars.resource")
        return await _resource_calendar(
            caller, resource_id, category, date, days, status, appointment_type_id
        )

    calendar.__doc__ = (
        f"A {noun}'s days from ``date``: its appointments, free and blocked time, in its "
        "time zone (``days=7`` for a week)."
    )
    calendar.__name__ = f"{category}_calendar"
    router.get(
        f"/{path}/{{resource_id}}/calendar",
        response_model=ResourceCalendarView,
        responses={**problems(404)},
        summary=f"A {noun}'s calendar",
    )(calendar)


async def _resource_calendar(
    caller: Caller,
    resource_id: UUID,
    category: str,
    date: dt.date,
    days: int,
    status: Sequence[str],
    appointment_type_id: UUID | None,
) -> Response:
    last = date + dt.timedelta(days=days - 1)
    params: dict[str, Any] = {"from": date.isoformat(), "to": last.isoformat(), "status": status}
    if appointment_type_id is not None:
        params["appointment_type_id"] = str(appointment_type_id)
    reply = await caller.get(
        caller.services.availability,
        f"/organizations/{caller.org}/calendars/resources/{resource_id}",
        params,
    )
    target = Target((resource_id,))
    if not reply.ok:
        return await read(caller, reply, target)
    body = reply.json()
    if body["resource"]["category"] != category:
        raise NotFoundError(f"{category} {resource_id} is not found")
    if caller.principal.location_ids is not None:
        for day in body["days"]:
            day["appointments"] = [
                a
                for a in day["appointments"]
                if caller.principal.may_see_location(UUID(a["location_id"]))
            ]
    return await audited(caller, json_answer(body), target)


_resource_route("providers", "provider", "provider")
_resource_route("rooms", "room", "room")
_resource_route("devices", "device", "device")
