"""Routes for patients: registration, their record, and their appointments."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from clinic.booking.api.answers import answer
from clinic.booking.api.deps import BookingsDep, NotReadyError, Org, RequestIdDep
from clinic.booking.api.responses import (
    PatientAppointmentsView,
    PatientSearchView,
    PatientView,
)
from clinic.booking.api.schemas import (
    MergePatientRequest,
    PatientPreferencesRequest,
    RecordIdentifierRequest,
    RegisterPatientRequest,
    UpdatePatientRequest,
)
from clinic.booking.directory import AppointmentDirectory
from clinic.booking.domain.errors import InvalidRequestError
from clinic.events.appointments import AppointmentStatus
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import Instant

router = APIRouter()


@router.post(
    "/organizations/{org}/patients",
    status_code=201,
    tags=["patients"],
    response_model=None,
    responses={201: {"model": PatientView}, **problems(400, 404)},
)
def register_patient(
    org: Org,
    body: RegisterPatientRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    return answer(request, bookings, body.to_command(org, request_id))


@router.get(
    "/organizations/{org}/patients/{patient_id}",
    tags=["patients"],
    response_model=None,
    responses={200: {"model": PatientView}, **problems(404)},
)
def get_patient(org: Org, patient_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.queries.get_patient(org, patient_id)


@router.get(
    "/organizations/{org}/patients",
    tags=["patients"],
    response_model=None,
    responses={200: {"model": PatientSearchView}, **problems()},
)
def find_patients(
    org: Org,
    bookings: BookingsDep,
    identifier: Annotated[
        str,
        Query(
            min_length=3,
            max_length=301,
            description="system|value, as FHIR's token search: the patient an EMR's "
            "identifier names (the surviving record if it was merged).",
            examples=["https://emr.example/mrn|MRN-004711"],
        ),
    ],
) -> dict[str, Any]:
    system, bar, value = identifier.partition("|")
    if not bar or not system or not value or not identifier.isprintable():
        raise InvalidRequestError("identifier is system|value, e.g. https://emr.example/mrn|4711")
    found = bookings.queries.patient_by_identifier(org, system, value)
    return {"patients": [found] if found else []}


@router.patch(
    "/organizations/{org}/patients/{patient_id}",
    tags=["patients"],
    response_model=None,
    responses={200: {"model": PatientView}, **problems(400, 404, 409)},
)
def update_patient(
    org: Org,
    patient_id: UUID,
    body: UpdatePatientRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Change the patient's demographics: the fields given (``Patient.DetailsUpdated``)."""
    return answer(request, bookings, body.to_command(org, request_id, patient_id))


@router.put(
    "/organizations/{org}/patients/{patient_id}/preferences",
    tags=["patients"],
    response_model=None,
    responses={200: {"model": PatientView}, **problems(400, 404, 409)},
)
def set_patient_preferences(
    org: Org,
    patient_id: UUID,
    body: PatientPreferencesRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Preferred channel, language, consent to SMS and email (``Patient.PreferencesUpdated``)."""
    return answer(request, bookings, body.to_command(org, request_id, patient_id))


@router.post(
    "/organizations/{org}/patients/{patient_id}/identifiers",
    tags=["patients"],
    response_model=None,
    responses={200: {"model": PatientView}, **problems(400, 403, 404, 409)},
)
def record_patient_identifier(
    org: Org,
    patient_id: UUID,
    body: RecordIdentifierRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Record an EMR's identifier (MRN) for the patient; 409 ``identifier-in-use`` when
    another patient of the organisation has it."""
    return answer(request, bookings, body.to_command(org, request_id, patient_id))


@router.post(
    "/organizations/{org}/patients/{patient_id}/merge",
    tags=["patients"],
    response_model=None,
    responses={200: {"model": PatientView}, **problems(400, 403, 404, 409)},
)
def merge_patient(
    org: Org,
    patient_id: UUID,
    body: MergePatientRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Merge a duplicate record into this one (HL7 A40): the duplicate takes no new
    bookings or changes (409 ``patient-merged``), its appointments are listed with this
    patient's, and its identifiers find this record."""
    return answer(request, bookings, body.to_command(org, request_id, patient_id))


@router.get(
    "/organizations/{org}/patients/{patient_id}/appointments",
    tags=["patients"],
    response_model=None,
    responses={200: {"model": PatientAppointmentsView}, **problems(404)},
)
async def patient_appointments(
    org: Org,
    patient_id: UUID,
    bookings: BookingsDep,
    request: Request,
    status: Annotated[
        list[AppointmentStatus], Query(max_length=10, description="Only these statuses.")
    ] = [],  # noqa: B006
    since: Annotated[
        Instant | None, Query(alias="from", description="Only those ending after this instant.")
    ] = None,
    until: Annotated[
        Instant | None, Query(alias="to", description="Only those starting before this instant.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=200, description="The next_cursor of the previous page.")
    ] = None,
) -> dict[str, Any]:
    """The patient's appointments by start time, a page at a time, with those of duplicate
    records merged into this one. Served from booking's appointment directory, which trails
    the event store by moments: read an appointment by id for its state this instant."""
    directory: AppointmentDirectory | None = request.app.state.directory
    if directory is None:
        raise NotReadyError("the appointment directory is not running yet; retry shortly")
    patient = await asyncio.to_thread(bookings.queries.get_patient, org, patient_id)
    patient_ids = [patient_id, *(UUID(m) for m in patient.get("merged_ids", []))]
    appointments, following = await directory.of_patients(
        org, patient_ids, [str(s) for s in status], since, until, limit, cursor
    )
    return {
        "patient_id": str(patient_id),
        "appointments": appointments,
        "next_cursor": following,
    }
