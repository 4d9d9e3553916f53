"""Free-time search: the slots an appointment type can be booked at, and the next free time.

Availability answers both from its index of free time; a patient's token searches as a
patient (types only staff book are refused). Every slot names the resources that would be
booked, with their names, so a client can show "Dr Weber, Tue 9:00" and book it as it is.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from clinic.gateway.api.answers import caller_of, json_answer, passed_on
from clinic.gateway.api.names import ResourceNames
from clinic.gateway.api.views import NextAvailableView, SlotsPage
from clinic.platform.paging import decode_position, encode_position
from clinic.platform.problem_handlers import problems
from clinic.platform.problems import Problem
from clinic.platform.strict import Day

router = APIRouter(prefix="/v1", tags=["search"])
PartOfDay = Literal["morning", "afternoon", "evening"]
MAX_SLOTS = 1000


class InvalidPageTokenError(Problem):
    status = 422
    slug = "invalid-page-token"
    title = "The page token is not one this API gave"


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        offset = decode_position("slots", token)
        if not 0 < offset < MAX_SLOTS:
            raise ValueError(offset)
        return offset
    except ValueError:
        raise InvalidPageTokenError(
            "give back the next_page_token of the previous page, with the same query"
        ) from None


def _token(offset: int) -> str:
    return encode_position("slots", offset)


@router.get(
    "/slots",
    response_model=SlotsPage,
    responses={**problems(403, 404, 410)},
    summary="Search free times",
)
async def search_slots(
    request: Request,
    appointment_type_id: UUID,
    location_id: Annotated[list[UUID], Query(min_length=1, max_length=50)],
    start_date: Annotated[Day, Query(alias="from", description="First local date searched.")],
    end_date: Annotated[Day, Query(alias="to", description="Last local date (inclusive).")],
    provider_id: Annotated[list[UUID], Query(max_length=50)] = [],  # noqa: B006
    times_of_day: Annotated[list[PartOfDay], Query(max_length=3)] = [],  # noqa: B006
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """Free start times for an appointment type at one or more locations between two local
    dates, earliest first: every resource it needs free at once, buffers, seats, notice and
    horizon respected. Pages of ``page_size`` (at most 200; 1,000 slots in all per query):
    pass ``next_page_token`` with the same query for the next."""
    caller = caller_of(request, "slots.search")
    offset = _offset(page_token)
    params: dict[str, Any] = {
        "appointment_type_id": str(appointment_type_id),
        "location_id": [str(v) for v in location_id],
        "from": start_date.isoformat(),
        "to": end_date.isoformat(),
        "provider_id": [str(v) for v in provider_id],
        "times_of_day": times_of_day,
        "limit": min(MAX_SLOTS, offset + page_size + 1),
    }
    reply = await caller.get(
        caller.services.availability, f"/organizations/{caller.org}/slots", params
    )
    if not reply.ok:
        return passed_on(caller, reply)
    found = reply.json()["slots"]
    page = found[offset : offset + page_size]
    more = len(found) > offset + page_size and offset + page_size < MAX_SLOTS
    names = await ResourceNames.of(request).names(caller)
    for slot in page:
        slot["resource_names"] = {role: names.get(rid) for role, rid in slot["resources"].items()}
    return json_answer(
        {"slots": page, "next_page_token": _token(offset + page_size) if more else None}
    )


@router.get(
    "/slots/next-available",
    response_model=NextAvailableView,
    responses={**problems(403, 404, 410)},
    summary="Next free time",
)
async def next_available(
    request: Request,
    appointment_type_id: UUID,
    location_id: Annotated[list[UUID], Query(max_length=50)] = [],  # noqa: B006
    provider_id: Annotated[list[UUID], Query(max_length=50)] = [],  # noqa: B006
    times_of_day: Annotated[list[PartOfDay], Query(max_length=3)] = [],  # noqa: B006
    within_days: Annotated[int, Query(ge=1, le=366)] = 90,
) -> Response:
    """The earliest free time at each location (every location of the organisation when
    none is named), and the earliest of all; with ``provider_id``, that provider's next free
    time (what a provider card shows)."""
    caller = caller_of(request, "slots.next_available")
    params: dict[str, Any] = {
        "appointment_type_id": str(appointment_type_id),
        "location_id": [str(v) for v in location_id],
        "provider_id": [str(v) for v in provider_id],
        "times_of_day": times_of_day,
        "within_days": within_days,
    }
    reply = await caller.get(
        caller.services.availability, f"/organizations/{caller.org}/next-available", params
    )
    if not reply.ok:
        return passed_on(caller, reply)
    body = reply.json()
    names = await ResourceNames.of(request).names(caller)
    for slot in [*body["by_location"].values(), body["earliest"]]:
        if slot is not None:
            slot["resource_names"] = {r: names.get(rid) for r, rid in slot["resources"].items()}
    return json_answer(body)
