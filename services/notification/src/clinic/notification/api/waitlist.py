"""Who is waiting: the waitlist as notification keeps it to offer freed time, in the order
patients joined, paged."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from psycopg.rows import dict_row

from clinic.notification.api.responses import WaitlistPage
from clinic.platform.paging import after, split_page
from clinic.platform.problem_handlers import problems

router = APIRouter()

COLUMNS = (
    "entry_id, patient_id, appointment_type_id, location_ids, earliest, latest, times_of_day, "
    "weekdays, provider_id, priority, joined_at, active"
)


@router.get(
    "/organizations/{org}/waitlist",
    tags=["waitlist"],
    response_model=WaitlistPage,
    responses={**problems(422)},
)
async def waitlist(
    org: UUID,
    request: Request,
    active: Annotated[bool, Query(description="Only those still waiting (false: all).")] = True,
    location_id: UUID | None = None,
    patient_id: UUID | None = None,
    appointment_type_id: UUID | None = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """The organisation's waitlist entries in the order patients joined (offers go by
    priority first, then this order). An organisation this service does not know has none."""
    conditions: list[str] = ["organization_id = %s"]
    values: list[Any] = [org]
    if active:
        conditions.append("active")
    for column, value in (("patient_id", patient_id), ("appointment_type_id", appointment_type_id)):
        if value is not None:
            conditions.append(f"{column} = %s")
            values.append(value)
    if location_id is not None:
        conditions.append("location_ids @> %s::jsonb")
        values.append(f'["{location_id}"]')
    cursor_condition, cursor_values = after(page_token, "joined_at", "entry_id")
    query = (
        f"SELECT {COLUMNS} FROM waitlist WHERE {' AND '.join(conditions)}{cursor_condition} "
        "ORDER BY joined_at, entry_id LIMIT %s"
    )
    database = request.app.state.runtime.database
    async with database.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, [*values, *cursor_values, page_size + 1])
        rows = await cur.fetchall()
    page, following = split_page(rows, page_size, lambda r: (r["joined_at"], r["entry_id"]))
    return {"entries": list(page), "next_page_token": following}
