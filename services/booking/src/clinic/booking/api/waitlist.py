"""Routes for the waitlist: patients waiting for earlier time."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from clinic.booking.api.answers import answer
from clinic.booking.api.deps import BookingsDep, Org, RequestIdDep
from clinic.booking.api.responses import WaitlistEntryView
from clinic.booking.api.schemas import JoinWaitlistRequest, LeaveWaitlistRequest
from clinic.platform.problem_handlers import problems

router = APIRouter()


@router.post(
    "/organizations/{org}/waitlist",
    status_code=201,
    tags=["waitlist"],
    response_model=None,
    responses={201: {"model": WaitlistEntryView}, **problems(400, 403, 404)},
)
def join_waitlist(
    org: Org,
    body: JoinWaitlistRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """A patient waits for earlier time of an appointment type. The clinic ranks the entry
    (``priority``, 1 most urgent .. 9 least, default 5; a patient may not set another,
    ``staff-only``) and names the ISO weekdays the patient can come (``weekdays``, empty:
    any day): who is offered freed time first, and on which days."""
    return answer(request, bookings, body.to_command(org, request_id))


@router.get(
    "/organizations/{org}/waitlist/{entry_id}",
    tags=["waitlist"],
    response_model=None,
    responses={200: {"model": WaitlistEntryView}, **problems(404)},
)
def get_waitlist_entry(org: Org, entry_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.queries.get_waitlist_entry(org, entry_id)


@router.post(
    "/organizations/{org}/waitlist/{entry_id}/leave",
    tags=["waitlist"],
    response_model=None,
    responses={200: {"model": WaitlistEntryView}, **problems(400, 404, 409)},
)
def leave_waitlist(
    org: Org,
    entry_id: UUID,
    body: LeaveWaitlistRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    return answer(request, bookings, body.to_command(org, request_id, entry_id))
