"""How schedules perform: utilisation, no-shows, lead times and the search-to-book funnel,
per day, week or month, from availability. No patient appears in them. A clinic admin limited
to some locations sees those locations' figures only."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from clinic.gateway.access import check_location
from clinic.gateway.api.answers import caller_of, passed_on
from clinic.gateway.api.views import KpisView
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import Day

router = APIRouter(prefix="/v1", tags=["kpis"])
Ids = Annotated[list[UUID], Query(max_length=50)]


@router.get("/kpis", response_model=KpisView, responses={**problems(404)}, summary="Schedule KPIs")
async def schedule_kpis(
    request: Request,
    start_date: Annotated[Day, Query(alias="from")],
    end_date: Annotated[Day, Query(alias="to")],
    period: Literal["day", "week", "month", "all"] = "day",
    location_id: Ids = [],  # noqa: B006
    provider_id: Ids = [],  # noqa: B006
    appointment_type_id: Ids = [],  # noqa: B006
    group_by: Literal["location", "provider", "appointment_type"] | None = None,
) -> Response:
    """KPIs between two local dates in buckets of ``period``, optionally per location,
    provider or type. Without ``location_id``, a location-limited admin gets their own."""
    caller = caller_of(request, "kpis.get")
    allowed = caller.principal.location_ids
    for location in location_id:
        check_location(caller.principal, location, f"location {location}")
    locations = location_id or (sorted(allowed) if allowed is not None else [])
    params: dict[str, Any] = {
        "from": start_date.isoformat(),
        "to": end_date.isoformat(),
        "period": period,
        "location_id": [str(v) for v in locations],
        "provider_id": [str(v) for v in provider_id],
        "appointment_type_id": [str(v) for v in appointment_type_id],
    }
    if group_by is not None:
        params["group_by"] = group_by
    reply = await caller.get(
        caller.services.availability, f"/organizations/{caller.org}/kpis", params
    )
    return passed_on(caller, reply)
