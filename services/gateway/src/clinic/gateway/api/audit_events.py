"""The access audit, for organisation admins: who read which patient's data and who changed
what, through this API, newest first."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from clinic.gateway import audit
from clinic.gateway.api.answers import caller_of, json_answer
from clinic.gateway.api.views import AuditEventsPage
from clinic.gateway.principal import Role
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import Instant

router = APIRouter(prefix="/v1", tags=["audit"])


@router.get(
    "/audit-events",
    response_model=AuditEventsPage,
    responses={**problems(403)},
    summary="The access audit",
)
async def audit_events(
    request: Request,
    actor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    role: Role | None = None,
    operation: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    target_id: UUID | None = None,
    patient_id: UUID | None = None,
    outcome: Annotated[int | None, Query(ge=100, le=599)] = None,
    since: Instant | None = None,
    until: Instant | None = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Every read of patient data and every change asked through the API: who (subject,
    role, app), what (operation, route, the ids named), the outcome, the client's address
    and the trace id. Filter by any of them; ``since``/``until`` bound the time."""
    caller = caller_of(request, "audit.list")
    wanted = audit.AuditFilter(
        organization_id=caller.org,
        actor=actor,
        role=str(role) if role else None,
        operation=operation,
        target_id=target_id,
        patient_id=patient_id,
        outcome=outcome,
        since=since,
        until=until,
    )
    async with caller.database.transaction() as conn:
        items, following = await audit.query(conn, wanted, page_size, page_token)
    return json_answer({"audit_events": items, "next_page_token": following})
