"""Holds, bookings and everything that happens to an appointment afterwards.

Booking decides every one of them; the gateway checks who may ask (the role, the caller's
locations, a patient's own appointments), makes the caller the command's actor, and answers
a repeated ``Idempotency-Key`` with the first answer.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from clinic.gateway.access import check_location, check_patient, patient_for
from clinic.gateway.api.answers import (
    Caller,
    Target,
    caller_of,
    command,
    read,
)
from clinic.gateway.api.docs import APPOINTMENT, IDEMPOTENCY_KEY, IF_MATCH, OPERATIONS
from clinic.gateway.api.schemas import (
    BookingRequest,
    EmptyRequest,
    HoldRequest,
    ReasonRequest,
    RescheduleRequest,
    Reservation,
)
from clinic.gateway.api.views import AppointmentHistoryView, AppointmentView
from clinic.gateway.principal import Role
from clinic.gateway.upstream import Reply
from clinic.platform.problem_handlers import problems

router = APIRouter(prefix="/v1", tags=["appointments"])

IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", description=IDEMPOTENCY_KEY)]
IfMatch = Annotated[str | None, Header(alias="If-Match", description=IF_MATCH)]


async def visible_appointment(caller: Caller, appointment_id: UUID) -> Reply:
    """The appointment as booking has it, when the caller may see it (else booking's 404,
    or the same 404 for another location's or another patient's)."""
    reply = await caller.get(
        caller.services.booking, f"/organizations/{caller.org}/appointments/{appointment_id}"
    )
    if reply.ok:
        body = reply.json()
        what = f"appointment {appointment_id}"
        check_location(caller.principal, UUID(body["location_id"]), what)
        check_patient(caller.principal, UUID(body["patient_id"]), what)
    return reply


async def _reserve(request: Request, operation: str, path: str, body: Reservation) -> Response:
    caller = caller_of(request, operation)
    patient_id = patient_for(caller.principal, body.patient_id)
    check_location(caller.principal, body.location_id, f"location {body.location_id}")
    forwarded = {**body.forwarded(), "patient_id": str(patient_id)}
    target = Target((body.location_id, body.appointment_type_id), patient_id)
    return await command(
        caller,
        caller.services.booking,
        "POST",
        f"/organizations/{caller.org}/{path}",
        forwarded,
        target,
        created="/v1/appointments/{id}",
    )


@router.post(
    "/holds",
    status_code=201,
    response_model=AppointmentView,
    responses={**problems(403, 404, 409)},
    summary="Hold a time",
)
async def hold(request: Request, body: HoldRequest, idempotency_key: IdempotencyKey) -> Response:
    """Hold a free time for a few minutes while the patient finishes (an appointment in
    status ``pending`` until then); confirm it with ``POST /v1/appointments/{id}/confirm``.
    A hold that runs out frees its time by itself. A taken time is a 409 with the nearest
    ``alternatives``."""
    return await _reserve(request, "holds.create", "holds", body)


@router.post(
    "/appointments",
    status_code=201,
    response_model=AppointmentView,
    responses={**problems(403, 404, 409)},
    summary="Book an appointment",
)
async def book(request: Request, body: BookingRequest, idempotency_key: IdempotencyKey) -> Response:
    """Book a time outright. Every resource the appointment type needs must be free at once
    (409 ``slot-taken`` with ``alternatives`` otherwise); working hours, buffers, notice and
    horizon apply. A patient books for themself, and only types patients may book."""
    return await _reserve(request, "appointments.create", "appointments", body)


@router.get(
    "/appointments/{appointment_id}",
    response_model=AppointmentView,
    responses={**problems(404)},
    summary="Get an appointment",
)
async def get_appointment(request: Request, appointment_id: UUID) -> Response:
    """The appointment as it stands, with its version as ``ETag`` (send it as ``If-Match``
    on a change to be sure nobody changed it meanwhile)."""
    caller = caller_of(request, "appointments.get")
    reply = await visible_appointment(caller, appointment_id)
    return await read(caller, reply, _target(appointment_id, reply))


@router.get(
    "/appointments/{appointment_id}/history",
    response_model=AppointmentHistoryView,
    responses={**problems(404)},
    summary="An appointment's history",
)
async def get_history(request: Request, appointment_id: UUID) -> Response:
    """Every event of the appointment in order: what happened, when, who asked (user, role,
    channel) and the trace of the request: why this time is taken."""
    caller = caller_of(request, "appointments.history")
    seen = await visible_appointment(caller, appointment_id)
    if not seen.ok:
        return await read(caller, seen, Target((appointment_id,)))
    reply = await caller.get(
        caller.services.booking,
        f"/organizations/{caller.org}/appointments/{appointment_id}/history",
    )
    return await read(caller, reply, _target(appointment_id, seen))


def _target(appointment_id: UUID, reply: Reply) -> Target:
    if not reply.ok:
        return Target((appointment_id,))
    body = reply.json()
    return Target((appointment_id,), UUID(body["patient_id"]))


async def _change(
    request: Request,
    operation: str,
    appointment_id: UUID,
    action: str,
    body: dict[str, object] | None,
) -> Response:
    caller = caller_of(request, operation)
    target = Target((appointment_id,))
    if caller.principal.role == Role.PATIENT or caller.principal.location_ids is not None:
        # Only a caller who may not see every appointment of the organisation pays for a
        # look first; booking itself refuses another organisation's ids.
        seen = await visible_appointment(caller, appointment_id)
        if not seen.ok:
            return await read(caller, seen, target)
        target = _target(appointment_id, seen)
    return await command(
        caller,
        caller.services.booking,
        "POST",
        f"/organizations/{caller.org}/appointments/{appointment_id}/{action}",
        body,
        target,
    )


CHANGE_PROBLEMS = problems(403, 404, 409, 412)


@router.post(
    "/appointments/{appointment_id}/confirm",
    response_model=AppointmentView,
    responses={**CHANGE_PROBLEMS},
    summary="Book a held time",
)
async def confirm(
    request: Request,
    appointment_id: UUID,
    idempotency_key: IdempotencyKey,
    if_match: IfMatch = None,
    body: EmptyRequest | None = None,
) -> Response:
    """Turn a hold into a booking (409 ``hold-expired`` when it ran out and the time went to
    someone else)."""
    return await _change(request, "appointments.confirm", appointment_id, "confirm", None)


@router.post(
    "/appointments/{appointment_id}/reschedule",
    response_model=AppointmentView,
    responses={**CHANGE_PROBLEMS},
    summary="Move an appointment",
)
async def reschedule(
    request: Request,
    appointment_id: UUID,
    body: RescheduleRequest,
    idempotency_key: IdempotencyKey,
    if_match: IfMatch = None,
) -> Response:
    """Move the appointment to another time (its old time is freed in the same decision; a
    taken time is a 409 with ``alternatives`` and nothing moves)."""
    return await _change(
        request, "appointments.reschedule", appointment_id, "reschedule", body.forwarded()
    )


@router.post(
    "/appointments/{appointment_id}/cancel",
    response_model=AppointmentView,
    responses={**CHANGE_PROBLEMS},
    summary="Cancel an appointment",
)
async def cancel(
    request: Request,
    appointment_id: UUID,
    body: ReasonRequest,
    idempotency_key: IdempotencyKey,
    if_match: IfMatch = None,
) -> Response:
    """Cancel with a reason; its time is free at once. Patients cancel up to the type's
    cancellation cut-off."""
    return await _change(request, "appointments.cancel", appointment_id, "cancel", body.forwarded())


def _status_route(action: str, operation: str, status: str, summary: str, doc: str) -> None:
    async def change(
        request: Request,
        appointment_id: UUID,
        idempotency_key: IdempotencyKey,
        if_match: IfMatch = None,
        body: EmptyRequest | None = None,
    ) -> Response:
        return await _change(request, operation, appointment_id, action, None)

    change.__doc__ = doc
    OPERATIONS[f"POST /v1/appointments/{{appointment_id}}/{action}"] = APPOINTMENT | {
        "status": status
    }
    change.__name__ = operation.replace(".", "_")
    router.post(
        f"/appointments/{{appointment_id}}/{action}",
        response_model=AppointmentView,
        responses={**CHANGE_PROBLEMS},
        summary=summary,
    )(change)


_status_route(
    "confirm-attendance",
    "appointments.confirm_attendance",
    "booked",
    "Confirm attendance",
    "The patient says they will come (FHIR: the patient participant accepted).",
)
_status_route(
    "check-in",
    "appointments.check_in",
    "checked-in",
    "Check in",
    "The patient is at the desk: checked in (staff, within the check-in window).",
)
_status_route(
    "arrive",
    "appointments.arrive",
    "arrived",
    "Arrive",
    "The patient has arrived (staff; only within check-in's window).",
)
_status_route(
    "complete",
    "appointments.complete",
    "fulfilled",
    "Complete",
    "The visit took place: fulfilled (staff).",
)
_status_route(
    "no-show",
    "appointments.no_show",
    "noshow",
    "Mark a no-show",
    "The patient did not come: no-show (staff, once the start has passed).",
)
