"""Routes of the availability service: slot search, next available, rebuild."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from uuid import UUID

import httpx
from aiokafka.errors import KafkaError
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import JSONResponse

from clinic.availability.api.deps import NotReadyError, index_of, utc_now
from clinic.availability.api.responses import NextAvailableView, RebuildFigures, SlotsView
from clinic.availability.rebuild import (
    RebuildMetrics,
    rebuild_from_booking,
    rebuild_from_topics,
)
from clinic.availability.search import Query as SlotQuery
from clinic.availability.search import find_slots, next_available
from clinic.availability.store import remember_search
from clinic.platform.kafka import KafkaAccess
from clinic.platform.operations import operations_access
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import Day

router = APIRouter()
TimeOfDay = Literal["morning", "afternoon", "evening"]
BookedBy = Literal["patient", "clinic"]
BOOKED_BY = "Who will book: a patient is refused (403) types only staff may book."


SESSION = (
    "The client's search session: pass the same UUID as X-Correlation-Id when booking, and "
    "the KPIs measure the time from the first search to the booking."
)


def _remember_session(
    request: Request, background: BackgroundTasks, org: UUID, session_id: UUID | None
) -> None:
    """Record a session's first search, after the answer is sent."""
    if session_id is not None:
        database = request.app.state.runtime.database
        background.add_task(remember_search, database, org, session_id, utc_now())


def _for_patient(request: Request, booked_by: str) -> bool:
    """A search made by a patient (``X-Actor-Role: patient``, set by the gateway from the
    token) is a patient's search whatever the query says; staff may search as a patient
    would with ``booked_by=patient``."""
    return booked_by == "patient" or request.headers.get("x-actor-role") == "patient"


@router.get(
    "/organizations/{org}/slots",
    tags=["search"],
    response_model=None,
    responses={200: {"model": SlotsView}, **problems(403, 404, 410)},
)
def slots(
    org: UUID,
    request: Request,
    background: BackgroundTasks,
    appointment_type_id: UUID,
    location_id: Annotated[list[UUID], Query(min_length=1, max_length=50)],
    start_date: Annotated[Day, Query(alias="from")],
    end_date: Annotated[Day, Query(alias="to")],
    provider_id: Annotated[list[UUID], Query(max_length=50)] = [],  # noqa: B006
    times_of_day: Annotated[list[TimeOfDay], Query(max_length=3)] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    booked_by: Annotated[BookedBy, Query(description=BOOKED_BY)] = "clinic",
    session_id: Annotated[UUID | None, Query(description=SESSION)] = None,
) -> JSONResponse:
    """Free start times for an appointment type at one or several locations between two
    local dates (inclusive): every required resource free at once, buffers and seats
    respected, minimum notice and horizon applied. Each slot gives UTC and local times and
    the resources that would be booked."""
    settings = request.app.state.settings
    query = SlotQuery(
        organization_id=org,
        appointment_type_id=appointment_type_id,
        location_ids=tuple(location_id),
        first_day=start_date,
        last_day=end_date,
        now=utc_now(),
        provider_ids=frozenset(provider_id),
        times_of_day=tuple(times_of_day),
        limit=limit,
        step_minutes=settings.slot_step_minutes,
        for_patient=_for_patient(request, booked_by),
    )
    found = find_slots(index_of(request), query)
    _remember_session(request, background, org, session_id)
    return JSONResponse({"slots": [s.view() for s in found], "count": len(found)})


@router.get(
    "/organizations/{org}/next-available",
    tags=["search"],
    response_model=None,
    responses={200: {"model": NextAvailableView}, **problems(403, 404, 410)},
)
def next_free(
    org: UUID,
    request: Request,
    background: BackgroundTasks,
    appointment_type_id: UUID,
    location_id: Annotated[list[UUID], Query(max_length=50)] = [],  # noqa: B006
    provider_id: Annotated[list[UUID], Query(max_length=50)] = [],  # noqa: B006
    times_of_day: Annotated[list[TimeOfDay], Query(max_length=3)] = [],  # noqa: B006
    within_days: Annotated[int, Query(ge=1, le=366)] = 90,
    booked_by: Annotated[BookedBy, Query(description=BOOKED_BY)] = "clinic",
    session_id: Annotated[UUID | None, Query(description=SESSION)] = None,
) -> JSONResponse:
    """The earliest free slot at each location (all the organisation's when none is given),
    and the earliest overall."""
    index = index_of(request)
    locations = tuple(location_id) or tuple(
        loc.id for loc in index.locations.values() if loc.organization_id == org and not loc.retired
    )
    today = utc_now().date()
    query = SlotQuery(
        organization_id=org,
        appointment_type_id=appointment_type_id,
        location_ids=locations,
        first_day=today - dt.timedelta(days=1),
        last_day=today + dt.timedelta(days=within_days),
        now=utc_now(),
        provider_ids=frozenset(provider_id),
        times_of_day=tuple(times_of_day),
        step_minutes=request.app.state.settings.slot_step_minutes,
        for_patient=_for_patient(request, booked_by),
    )
    found = next_available(index, query)
    _remember_session(request, background, org, session_id)
    earliest = min((s for s in found.values() if s), key=lambda s: s.start, default=None)
    return JSONResponse(
        {
            "by_location": {str(k): (v.view() if v else None) for k, v in found.items()},
            "earliest": earliest.view() if earliest else None,
        }
    )


@router.post(
    "/projection/rebuild",
    tags=["operations"],
    response_model=None,
    responses={200: {"model": RebuildFigures}, **problems(401, 403)},
    dependencies=[Depends(operations_access)],
)
async def rebuild(
    request: Request,
    source: Annotated[
        Literal["booking", "topics"],
        Query(
            description="Where the facts come from: booking's event store (its replay API) "
            "or the Kafka topics alone, from their first offset."
        ),
    ] = "booking",
) -> dict[str, Any]:
    """Drop the projection and rebuild it from scratch; returns the figures."""
    runtime = request.app.state.runtime
    settings = request.app.state.settings
    metrics: RebuildMetrics = request.app.state.rebuild_metrics
    outcome = "failed"
    try:
        if source == "topics":
            figures = await rebuild_from_topics(
                runtime.database, KafkaAccess.of(settings), settings.consumer_group
            )
        else:
            figures = await rebuild_from_booking(
                runtime.database, settings.booking_url, settings.consumer_group
            )
        outcome = "ok"
        metrics.seconds.labels("availability").set(figures["seconds"])
        return figures
    except (httpx.HTTPError, KafkaError) as error:
        raise NotReadyError(f"cannot read the {source} to rebuild from: {error!r}") from None
    finally:
        metrics.rebuilds.labels("availability", source, outcome).inc()
