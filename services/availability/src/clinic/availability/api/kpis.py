"""Route of the schedule KPIs (definitions: ``clinic.availability.kpis``)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request

from clinic.availability import kpis
from clinic.availability.api.deps import index_of
from clinic.availability.api.responses import KpiView
from clinic.availability.kpis import GroupBy, KpiQuery, Period
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import Day

router = APIRouter(tags=["kpis"])


@router.get(
    "/organizations/{org}/kpis",
    response_model=None,
    responses={200: {"model": KpiView}, **problems()},
)
async def schedule_kpis(
    org: UUID,
    request: Request,
    first: Annotated[Day, Query(alias="from", description="The first local day.")],
    last: Annotated[Day, Query(alias="to", description="The last local day (at most 366).")],
    period: Annotated[Period, Query(description="Buckets: day, week, month, or all.")] = "day",
    location_id: Annotated[list[UUID], Query(max_length=50)] = [],  # noqa: B006
    provider_id: Annotated[list[UUID], Query(max_length=50)] = [],  # noqa: B006
    appointment_type_id: Annotated[list[UUID], Query(max_length=50)] = [],  # noqa: B006
    group_by: Annotated[GroupBy | None, Query(description="One bucket per group.")] = None,
) -> dict[str, Any]:
    """No-show rate (also of appointments whose attendance the patient confirmed and of
    the others: how well reminders work), utilisation, lead time, cancellation and
    late-cancellation rates, reschedule rate, fill rate of freed time and the booking
    funnel, per period and optionally per location, provider or appointment type. The
    definitions are in the description of each field and in ``clinic.availability.kpis``."""
    query = KpiQuery(
        organization_id=org,
        first=first,
        last=last,
        period=period,
        location_ids=frozenset(location_id),
        provider_ids=frozenset(provider_id),
        type_ids=frozenset(appointment_type_id),
        group_by=group_by,
    )
    index = index_of(request)
    async with request.app.state.runtime.database.pool.connection() as conn:
        return await kpis.kpis(conn, index, query)
