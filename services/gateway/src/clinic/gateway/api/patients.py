"""Patients: their records (booking), their appointments, and how they want to be reached
(booking's preferences, notification's opt-outs and message history).

Every read here is patient data and is audited. A patient's token reaches only its own
record (anyone else's is a 404); staff reach the organisation's patients, and a clinic role
limited to some locations sees only those locations' appointments in a patient's list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from clinic.gateway.access import ForbiddenError, check_patient
from clinic.gateway.api.answers import (
    Caller,
    Target,
    audited,
    caller_of,
    command,
    json_answer,
    read,
)
from clinic.gateway.api.appointments import IdempotencyKey, visible_appointment
from clinic.gateway.api.schemas import (
    PreferencesRequest,
    RegisterPatientRequest,
    UpdatePatientRequest,
)
from clinic.gateway.api.views import (
    ContactPreferencesView,
    MessageHistoryView,
    PatientAppointmentsPage,
    PatientsPage,
    PatientView,
)
from clinic.gateway.principal import Role
from clinic.platform.problem_handlers import problems

router = APIRouter(prefix="/v1", tags=["patients"])
StatusFilter = Literal[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
]


@router.get(
    "/patients",
    response_model=PatientsPage,
    summary="Find patients by identifier",
)
async def find_patients(
    request: Request,
    identifier: Annotated[
        str,
        Query(
            min_length=3,
            max_length=301,
            description="system|value, e.g. urn:oid:1.2.276.0.76.4.8|MRN-004711",
        ),
    ],
) -> Response:
    """The organisation's patients holding an identifier (an MRN, an insurance number)."""
    caller = caller_of(request, "patients.search")
    reply = await caller.get(
        caller.services.booking, f"/organizations/{caller.org}/patients", {"identifier": identifier}
    )
    if not reply.ok:
        return await read(caller, reply, Target())
    found = reply.json()["patients"]
    answer = json_answer({"patients": found, "next_page_token": None})
    target = Target(tuple(UUID(p["id"]) for p in found))
    return await audited(caller, answer, target)


@router.post(
    "/patients",
    status_code=201,
    response_model=PatientView,
    responses={**problems(403, 409)},
    summary="Register a patient",
)
async def register_patient(
    request: Request, body: RegisterPatientRequest, idempotency_key: IdempotencyKey
) -> Response:
    """A new patient record of the organisation (front desk and admins)."""
    caller = caller_of(request, "patients.create")
    return await command(
        caller,
        caller.services.booking,
        "POST",
        f"/organizations/{caller.org}/patients",
        body.forwarded(),
        Target(),
        created="/v1/patients/{id}",
    )


@router.get(
    "/patients/{patient_id}",
    response_model=PatientView,
    responses={**problems(404)},
    summary="Get a patient",
)
async def get_patient(request: Request, patient_id: UUID) -> Response:
    """A patient's record (a patient: only their own)."""
    caller = caller_of(request, "patients.get")
    check_patient(caller.principal, patient_id, f"patient {patient_id}")
    reply = await caller.get(
        caller.services.booking, f"/organizations/{caller.org}/patients/{patient_id}"
    )
    return await read(caller, reply, Target((patient_id,), patient_id))


@router.patch(
    "/patients/{patient_id}",
    response_model=PatientView,
    responses={**problems(403, 404, 412)},
    summary="Update a patient",
)
async def update_patient(
    request: Request, patient_id: UUID, body: UpdatePatientRequest
) -> Response:
    """Change the fields given (a patient: their own record). Send an Idempotency-Key to make
    a retry safe."""
    caller = caller_of(request, "patients.update")
    check_patient(caller.principal, patient_id, f"patient {patient_id}")
    return await command(
        caller,
        caller.services.booking,
        "PATCH",
        f"/organizations/{caller.org}/patients/{patient_id}",
        body.forwarded(),
        Target((patient_id,), patient_id),
    )


@router.put(
    "/patients/{patient_id}/preferences",
    response_model=PatientView,
    responses={**problems(403, 404)},
    summary="Set reminder preferences",
)
async def set_preferences(request: Request, patient_id: UUID, body: PreferencesRequest) -> Response:
    """The channel reminders go by, their language, and consent to SMS and email."""
    caller = caller_of(request, "patients.preferences.set")
    check_patient(caller.principal, patient_id, f"patient {patient_id}")
    return await command(
        caller,
        caller.services.booking,
        "PUT",
        f"/organizations/{caller.org}/patients/{patient_id}/preferences",
        body.forwarded(),
        Target((patient_id,), patient_id),
    )


@router.get(
    "/patients/{patient_id}/contact-preferences",
    response_model=ContactPreferencesView,
    responses={**problems(404)},
    summary="How a patient is reached",
)
async def contact_preferences(request: Request, patient_id: UUID) -> Response:
    """What notification knows: preferred channel, language, consents and opt-outs."""
    caller = caller_of(request, "patients.preferences.get")
    check_patient(caller.principal, patient_id, f"patient {patient_id}")
    reply = await caller.get(
        caller.services.notification,
        f"/organizations/{caller.org}/patients/{patient_id}/contact-preferences",
    )
    return await read(caller, reply, Target((patient_id,), patient_id))


async def _opt(
    request: Request, operation: str, method: str, patient_id: UUID, channel: str
) -> Response:
    caller = caller_of(request, operation)
    check_patient(caller.principal, patient_id, f"patient {patient_id}")
    return await command(
        caller,
        caller.services.notification,
        method,
        f"/organizations/{caller.org}/patients/{patient_id}/opt-outs/{channel}",
        None,
        Target((patient_id,), patient_id),
    )


@router.put(
    "/patients/{patient_id}/opt-outs/{channel}",
    response_model=ContactPreferencesView,
    responses={**problems(404)},
    summary="Opt out of a channel",
)
async def opt_out(request: Request, patient_id: UUID, channel: Literal["sms", "email"]) -> Response:
    """No more messages by this channel (as an SMS STOP does)."""
    return await _opt(request, "patients.opt_out", "PUT", patient_id, channel)


@router.delete(
    "/patients/{patient_id}/opt-outs/{channel}",
    response_model=ContactPreferencesView,
    responses={**problems(404)},
    summary="Opt in again",
)
async def opt_in(request: Request, patient_id: UUID, channel: Literal["sms", "email"]) -> Response:
    """Lift an opt-out of this channel."""
    return await _opt(request, "patients.opt_in", "DELETE", patient_id, channel)


@router.get(
    "/patients/{patient_id}/appointments",
    response_model=PatientAppointmentsPage,
    responses={**problems(404)},
    summary="A patient's appointments",
)
async def patient_appointments(
    request: Request,
    patient_id: UUID,
    status: Annotated[list[StatusFilter], Query(max_length=10)] = [],  # noqa: B006
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The patient's appointments, soonest first (a patient: their own; a clinic role
    limited to some locations: those locations' only)."""
    caller = caller_of(request, "patients.appointments")
    check_patient(caller.principal, patient_id, f"patient {patient_id}")
    return await _appointments_of(caller, patient_id, status, page_size, page_token)


@router.get(
    "/me/appointments",
    response_model=PatientAppointmentsPage,
    responses={**problems(403)},
    summary="My appointments",
)
async def my_appointments(
    request: Request,
    status: Annotated[list[StatusFilter], Query(max_length=10)] = [],  # noqa: B006
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """A patient's own appointments, soonest first."""
    caller = caller_of(request, "patients.appointments")
    if caller.principal.role != Role.PATIENT or caller.principal.patient_id is None:
        raise ForbiddenError(
            "only a patient has their own appointments; staff use /v1/patients/{id}/appointments"
        )
    return await _appointments_of(
        caller, caller.principal.patient_id, status, page_size, page_token
    )


async def _appointments_of(
    caller: Caller, patient_id: UUID, status: Sequence[str], page_size: int, page_token: str | None
) -> Response:
    params: dict[str, Any] = {"limit": page_size, "status": status}
    if page_token is not None:
        params["cursor"] = page_token
    reply = await caller.get(
        caller.services.booking,
        f"/organizations/{caller.org}/patients/{patient_id}/appointments",
        params,
    )
    if not reply.ok:
        return await read(caller, reply, Target((patient_id,), patient_id))
    body = reply.json()
    items = [
        item
        for item in body["appointments"]
        if caller.principal.may_see_location(UUID(item["location_id"]))
    ]
    answer = json_answer(
        {
            "patient_id": body["patient_id"],
            "appointments": items,
            "next_page_token": body["next_cursor"],
        }
    )
    return await audited(caller, answer, Target((patient_id,), patient_id))


@router.get(
    "/appointments/{appointment_id}/messages",
    response_model=MessageHistoryView,
    responses={**problems(404)},
    summary="Messages about an appointment",
)
async def appointment_messages(request: Request, appointment_id: UUID) -> Response:
    """Every confirmation and reminder sent (or skipped, with why) about the appointment."""
    caller = caller_of(request, "appointments.messages")
    seen = await visible_appointment(caller, appointment_id)
    if not seen.ok:
        return await read(caller, seen, Target((appointment_id,)))
    reply = await caller.get(
        caller.services.notification,
        f"/organizations/{caller.org}/appointments/{appointment_id}/messages",
    )
    patient_id = UUID(seen.json()["patient_id"])
    return await read(caller, reply, Target((appointment_id,), patient_id))
