"""Routes for appointments: holds, bookings, confirmation, rescheduling, cancellation, the
patient's confirmation that they will come, the steps of the visit, and the calendar's
history (who owns which minute, and why)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from clinic.booking.api.answers import answer
from clinic.booking.api.deps import (
    BookingsDep,
    ExpectedVersionDep,
    Org,
    RequestIdDep,
    entity_tag,
)
from clinic.booking.api.responses import (
    AppointmentHistoryView,
    AppointmentView,
    OwnerView,
    ResourceDayView,
)
from clinic.booking.api.schemas import (
    CancelRequest,
    EnterInErrorRequest,
    HoldRequest,
    RescheduleRequest,
    ReserveRequest,
)
from clinic.booking.commands import (
    Arrive,
    ChangeStatus,
    CheckIn,
    Complete,
    ConfirmAppointment,
    ConfirmAttendance,
    MarkNoShow,
)
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import Day, Instant

router = APIRouter()

CURRENT_VERSION: dict[int | str, dict[str, Any]] = {
    200: {
        "model": AppointmentView,
        "headers": {
            "ETag": {
                "description": "The appointment's version (``version``) as a strong entity tag, "
                'e.g. "8": send it as ``If-Match`` to act only on this version.',
                "schema": {"type": "string"},
            }
        },
    }
}
"""The answer of a route on one appointment: the appointment, its version as ``ETag``."""


@router.post(
    "/organizations/{org}/holds",
    status_code=201,
    tags=["appointments"],
    response_model=None,
    responses={201: {"model": AppointmentView}, **problems(400, 403, 404, 409)},
)
def hold(
    org: Org,
    body: HoldRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Hold time for a patient (status ``pending``). The hold blocks the time until it is
    confirmed or expires; an expired hold frees its time for the next command by itself."""
    start = bookings.queries.instant(
        org, body.start, body.local_start, location_id=body.location_id
    )
    command = body.to_command(org, request_id, start)
    return answer(request, bookings, command, claimed=body.booked_by)


@router.post(
    "/organizations/{org}/appointments",
    status_code=201,
    tags=["appointments"],
    response_model=None,
    responses={201: {"model": AppointmentView}, **problems(400, 403, 404, 409)},
)
def book(
    org: Org,
    body: ReserveRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Book directly. 409 with ``alternatives`` when the time is taken."""
    start = bookings.queries.instant(
        org, body.start, body.local_start, location_id=body.location_id
    )
    command = body.to_command(org, request_id, start)
    return answer(request, bookings, command, claimed=body.booked_by)


@router.get(
    "/organizations/{org}/appointments/{appointment_id}",
    tags=["appointments"],
    response_model=None,
    responses={**CURRENT_VERSION, **problems(404)},
)
def get_appointment(
    org: Org, appointment_id: UUID, bookings: BookingsDep, response: Response
) -> dict[str, Any]:
    """The appointment as it is now; ``ETag`` is its version, which a command's ``If-Match``
    names to change only this version."""
    view = bookings.queries.get_appointment(org, appointment_id)
    response.headers["ETag"] = entity_tag(view["version"])
    return view


@router.get(
    "/organizations/{org}/appointments/{appointment_id}/history",
    tags=["appointments"],
    response_model=None,
    responses={200: {"model": AppointmentHistoryView}, **problems(404)},
)
def get_appointment_history(
    org: Org, appointment_id: UUID, bookings: BookingsDep
) -> dict[str, Any]:
    """Every event of the appointment in order, with who asked for it and what it was after:
    the answer to "what happened to this appointment?"."""
    return bookings.queries.appointment_history(org, appointment_id)


@router.post(
    "/organizations/{org}/appointments/{appointment_id}/confirm",
    tags=["appointments"],
    response_model=None,
    responses={**CURRENT_VERSION, **problems(400, 404, 409, 412)},
)
def confirm(
    org: Org,
    appointment_id: UUID,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    expected_version: ExpectedVersionDep,
    request: Request,
) -> JSONResponse:
    """Turn a hold into a booking (409 ``hold-expired`` when it is too late)."""
    command = ConfirmAppointment(
        organization_id=org,
        request_id=request_id,
        appointment_id=appointment_id,
        expected_version=expected_version,
    )
    return answer(request, bookings, command)


@router.post(
    "/organizations/{org}/appointments/{appointment_id}/reschedule",
    tags=["appointments"],
    response_model=None,
    responses={**CURRENT_VERSION, **problems(400, 403, 404, 409, 412)},
)
def reschedule(
    org: Org,
    appointment_id: UUID,
    body: RescheduleRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    expected_version: ExpectedVersionDep,
    request: Request,
) -> JSONResponse:
    """Move every claim of the appointment at once, or nothing."""
    start = bookings.queries.instant(
        org, body.start, body.local_start, appointment_id=appointment_id
    )
    command = body.to_command(org, request_id, appointment_id, start, expected_version)
    return answer(request, bookings, command, claimed=body.actor)


@router.post(
    "/organizations/{org}/appointments/{appointment_id}/cancel",
    tags=["appointments"],
    response_model=None,
    responses={**CURRENT_VERSION, **problems(400, 404, 409, 412)},
)
def cancel(
    org: Org,
    appointment_id: UUID,
    body: CancelRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    expected_version: ExpectedVersionDep,
    request: Request,
) -> JSONResponse:
    """Cancel by the patient (subject to the type's cut-off) or by the clinic."""
    command = body.to_command(org, request_id, appointment_id, expected_version)
    return answer(request, bookings, command, claimed=body.by)


@router.post(
    "/organizations/{org}/appointments/{appointment_id}/entered-in-error",
    tags=["appointments"],
    response_model=None,
    responses={**CURRENT_VERSION, **problems(400, 403, 404, 409, 412)},
)
def enter_in_error(
    org: Org,
    appointment_id: UUID,
    body: EnterInErrorRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    expected_version: ExpectedVersionDep,
    request: Request,
) -> JSONResponse:
    """Strike out an appointment recorded by mistake (FHIR ``entered-in-error``): its time
    is given back, and it never counts as a visit, a cancellation or a no-show."""
    command = body.to_command(org, request_id, appointment_id, expected_version)
    return answer(request, bookings, command)


def _status_route(
    path: str, command: type[ChangeStatus] | type[ConfirmAttendance], doc: str
) -> None:
    """A route whose command needs only the appointment (and who asks)."""

    def change(
        org: Org,
        appointment_id: UUID,
        bookings: BookingsDep,
        request_id: RequestIdDep,
        expected_version: ExpectedVersionDep,
        request: Request,
    ) -> JSONResponse:
        asked = command(
            organization_id=org,
            request_id=request_id,
            appointment_id=appointment_id,
            expected_version=expected_version,
        )
        return answer(request, bookings, asked)

    change.__doc__ = doc
    router.add_api_route(
        f"/organizations/{{org}}/appointments/{{appointment_id}}/{path}",
        change,
        methods=["POST"],
        tags=["appointments"],
        name=command.name,
        response_model=None,
        responses={**CURRENT_VERSION, **problems(400, 403, 404, 409, 412)},
    )


_status_route(
    "confirm-attendance",
    ConfirmAttendance,
    """The patient confirmed they will come (FHIR: the patient participant ``accepted``; the
    status stays ``booked``): from a reminder's link or SMS reply (acting as the patient), or
    told to the front desk. Only for a booked appointment before its start (409
    ``invalid-status-transition`` otherwise). A confirmation already recorded answers 200 with
    the appointment as it is, recording nothing new. ``attendance_confirmed_by`` is the side
    of the acting party (``X-Actor-Role``).""",
)
_status_route("check-in", CheckIn, "The patient checked in (FHIR ``checked-in``).")
_status_route("arrive", Arrive, "The patient arrived (FHIR ``arrived``).")
_status_route("complete", Complete, "The visit happened (FHIR ``fulfilled``).")
_status_route("no-show", MarkNoShow, "The patient did not come (FHIR ``noshow``).")


@router.get(
    "/organizations/{org}/resources/{resource_id}/days/{local_date}",
    tags=["calendar"],
    response_model=None,
    responses={200: {"model": ResourceDayView}, **problems(404)},
)
def get_resource_day(
    org: Org, resource_id: UUID, local_date: Day, bookings: BookingsDep
) -> dict[str, Any]:
    """Why is this time taken? Every claim on the resource's local day with the appointment
    and the event that made it, the working windows, and the day's full event history."""
    return bookings.queries.resource_day(org, resource_id, local_date)


@router.get(
    "/organizations/{org}/resources/{resource_id}/owner",
    tags=["calendar"],
    response_model=None,
    responses={200: {"model": OwnerView}, **problems(404)},
)
def who_owns(
    org: Org,
    resource_id: UUID,
    bookings: BookingsDep,
    at: Annotated[Instant, Query(description="An instant with its offset.")],
) -> dict[str, Any]:
    """Which appointment (and which event) owns the minute at ``at``."""
    return bookings.queries.who_owns(org, resource_id, at)
