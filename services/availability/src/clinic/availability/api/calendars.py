"""Routes of the calendars: a resource's days (a provider's, room's or device's day or
week), a location's day, a patient's appointments."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Query, Request, Response

from clinic.availability import calendar
from clinic.availability.api.deps import index_of, utc_now
from clinic.availability.api.responses import (
    LocationDayView,
    PatientCalendarView,
    ResourceCalendarView,
)
from clinic.availability.calendar import Filters
from clinic.events.appointments import AppointmentStatus
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import Day, Instant

router = APIRouter(tags=["calendars"])
Statuses = Annotated[
    list[AppointmentStatus], Query(max_length=10, description="Only these statuses.")
]
TypeIds = Annotated[
    list[UUID],
    Query(alias="appointment_type_id", max_length=20, description="Only these types."),
]


def _json(view: dict[str, Any]) -> Response:
    """The view as JSON; its appointments come rendered by PostgreSQL."""
    return Response(orjson.dumps(view), media_type="application/json")


def _filters(status: list[AppointmentStatus], types: list[UUID]) -> Filters:
    return Filters(frozenset(str(s) for s in status), frozenset(types))


@router.get(
    "/organizations/{org}/calendars/resources/{resource_id}",
    response_model=None,
    responses={200: {"model": ResourceCalendarView}, **problems(404)},
)
async def resource_calendar(
    org: UUID,
    resource_id: UUID,
    request: Request,
    first: Annotated[Day, Query(alias="from", description="The first local day.")],
    last: Annotated[
        Day | None, Query(alias="to", description="The last local day (default: from).")
    ] = None,
    status: Statuses = [],  # noqa: B006
    appointment_type_id: TypeIds = [],  # noqa: B006
) -> Response:
    """A provider's, room's or device's days, up to 31 (``from`` alone: a day view; seven
    days: a week view): each day's appointments (every status, with type and participants),
    the free time between them at each location it works at, and its blocked time, in the
    zone its days are cut in, each time also as the UTC instant."""
    index = index_of(request)
    async with request.app.state.runtime.database.pool.connection() as conn:
        view = await calendar.resource_calendar(
            conn,
            index,
            org,
            resource_id,
            first,
            last or first,
            _filters(status, appointment_type_id),
            utc_now(),
        )
    return _json(view)


@router.get(
    "/organizations/{org}/calendars/locations/{location_id}",
    response_model=None,
    responses={200: {"model": LocationDayView}, **problems(404)},
)
async def location_day(
    org: UUID,
    location_id: UUID,
    request: Request,
    date: Annotated[Day, Query(description="The local day at the location.")],
    status: Statuses = [],  # noqa: B006
    appointment_type_id: TypeIds = [],  # noqa: B006
) -> Response:
    """A location's day: every provider, room and device working there (or holding an
    appointment there that day) side by side, each with its appointments, free and blocked
    time, in the location's local time."""
    index = index_of(request)
    async with request.app.state.runtime.database.pool.connection() as conn:
        view = await calendar.location_day(
            conn, index, org, location_id, date, _filters(status, appointment_type_id), utc_now()
        )
    return _json(view)


@router.get(
    "/organizations/{org}/calendars/patients/{patient_id}",
    response_model=None,
    responses={200: {"model": PatientCalendarView}, **problems()},
)
async def patient_calendar(
    org: UUID,
    patient_id: UUID,
    request: Request,
    since: Annotated[
        Instant | None, Query(alias="from", description="Only those ending after this instant.")
    ] = None,
    until: Annotated[
        Instant | None, Query(alias="to", description="Only those starting before this instant.")
    ] = None,
    status: Statuses = [],  # noqa: B006
    appointment_type_id: TypeIds = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="The next_cursor of the previous page.")
    ] = None,
) -> Response:
    """A patient's appointments by start, a page at a time (an unknown patient has none:
    availability holds no patient records)."""
    async with request.app.state.runtime.database.pool.connection() as conn:
        view = await calendar.patient_appointments(
            conn,
            org,
            patient_id,
            since,
            until,
            _filters(status, appointment_type_id),
            limit,
            cursor,
        )
    return _json(view)
