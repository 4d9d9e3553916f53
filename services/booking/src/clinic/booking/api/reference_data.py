"""Routes for reference data: organisations, locations, resources and their schedules,
and appointment types."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from clinic.booking.api.answers import answer
from clinic.booking.api.deps import BookingsDep, Org, RequestIdDep
from clinic.booking.api.responses import (
    AppointmentTypeView,
    DemoView,
    LocationView,
    OrganizationRegistered,
    OrganizationView,
    ResourceView,
    ScheduleView,
    View,
)
from clinic.booking.api.schemas import (
    DefineAppointmentTypeRequest,
    OverbookingAllowanceRequest,
    RegisterLocationRequest,
    RegisterOrganizationRequest,
    RegisterResourceRequest,
    RetireRequest,
    ScheduleExceptionRequest,
    UpdateAppointmentTypeRequest,
    UpdateLocationRequest,
    UpdateResourceRequest,
    WeeklyHoursRequest,
)
from clinic.booking.commands import (
    RemoveScheduleException,
    Retire,
    RetireAppointmentType,
    RetireLocation,
    RetireResource,
)
from clinic.booking.domain.errors import NotFoundError
from clinic.platform.problem_handlers import problems

router = APIRouter()


@router.get(
    "/demo",
    tags=["reference data"],
    response_model=None,
    responses={200: {"model": DemoView}, **problems(404)},
)
def demo(request: Request) -> dict[str, Any]:
    """The ids of the demo hospital group, when the service loaded it (``make up`` does)."""
    summary = request.app.state.demo
    if summary is None:
        raise NotFoundError("demo data", "not loaded (set BOOKING_LOAD_DEMO_DATA=true)")
    return summary  # type: ignore[no-any-return]


@router.post(
    "/organizations",
    status_code=201,
    tags=["reference data"],
    response_model=None,
    responses={201: {"model": OrganizationRegistered}, **problems(400)},
)
def register_organization(
    body: RegisterOrganizationRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Register a tenant: a hospital group."""
    return answer(request, bookings, body.to_command(request_id))


@router.get(
    "/organizations/{org}",
    tags=["reference data"],
    response_model=None,
    responses={200: {"model": OrganizationView}, **problems(404)},
)
def get_organization(org: Org, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.queries.get_organization(org)


@router.post(
    "/organizations/{org}/locations",
    status_code=201,
    tags=["reference data"],
    response_model=None,
    responses={201: {"model": LocationView}, **problems(400, 404, 409)},
)
def register_location(
    org: Org,
    body: RegisterLocationRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Register a clinic location with its IANA time zone."""
    return answer(request, bookings, body.to_command(org, request_id))


@router.get(
    "/organizations/{org}/locations/{location_id}",
    tags=["reference data"],
    response_model=None,
    responses={200: {"model": LocationView}, **problems(404)},
)
def get_location(org: Org, location_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.queries.get_location(org, location_id)


@router.post(
    "/organizations/{org}/resources",
    status_code=201,
    tags=["reference data"],
    response_model=None,
    responses={201: {"model": ResourceView}, **problems(400, 404, 409)},
)
def register_resource(
    org: Org,
    body: RegisterResourceRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Register a provider, room or device; its schedule starts empty."""
    return answer(request, bookings, body.to_command(org, request_id))


@router.get(
    "/organizations/{org}/resources/{resource_id}",
    tags=["reference data"],
    response_model=None,
    responses={200: {"model": ResourceView}, **problems(404)},
)
def get_resource(org: Org, resource_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.queries.get_resource(org, resource_id)


@router.put(
    "/organizations/{org}/resources/{resource_id}/overbooking-allowance",
    tags=["reference data"],
    response_model=None,
    responses={200: {"model": ResourceView}, **problems(400, 404)},
)
def set_overbooking_allowance(
    org: Org,
    resource_id: UUID,
    body: OverbookingAllowanceRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """How many overlapping appointments a provider may take when staff explicitly overbook."""
    return answer(request, bookings, body.to_command(org, request_id, resource_id))


@router.get(
    "/organizations/{org}/resources/{resource_id}/schedule",
    tags=["schedules"],
    response_model=None,
    responses={200: {"model": ScheduleView}, **problems(404)},
)
def get_schedule(org: Org, resource_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.queries.get_schedule(org, resource_id)


@router.put(
    "/organizations/{org}/resources/{resource_id}/schedule/weekly-hours",
    tags=["schedules"],
    response_model=None,
    responses={200: {"model": ScheduleView}, **problems(400, 404)},
)
def set_weekly_hours(
    org: Org,
    resource_id: UUID,
    body: WeeklyHoursRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Replace the resource's weekly working hours (local wall-clock time per location)."""
    return answer(request, bookings, body.to_command(org, request_id, resource_id))


@router.post(
    "/organizations/{org}/resources/{resource_id}/schedule/exceptions",
    status_code=201,
    tags=["schedules"],
    response_model=None,
    responses={201: {"model": ScheduleView}, **problems(400, 404)},
)
def add_schedule_exception(
    org: Org,
    resource_id: UUID,
    body: ScheduleExceptionRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Leave, a holiday or blocked time (removes working time), or one-off extra hours."""
    return answer(request, bookings, body.to_command(org, request_id, resource_id))


@router.delete(
    "/organizations/{org}/resources/{resource_id}/schedule/exceptions/{exception_id}",
    tags=["schedules"],
    response_model=None,
    responses={200: {"model": ScheduleView}, **problems(400, 404)},
)
def remove_schedule_exception(
    org: Org,
    resource_id: UUID,
    exception_id: UUID,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    command = RemoveScheduleException(
        organization_id=org,
        request_id=request_id,
        resource_id=resource_id,
        exception_id=exception_id,
    )
    return answer(request, bookings, command)


@router.post(
    "/organizations/{org}/appointment-types",
    status_code=201,
    tags=["reference data"],
    response_model=None,
    responses={201: {"model": AppointmentTypeView}, **problems(400, 404)},
)
def define_appointment_type(
    org: Org,
    body: DefineAppointmentTypeRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """What a visit needs: steps (sequential or parallel) and the resources of each."""
    return answer(request, bookings, body.to_command(org, request_id))


@router.get(
    "/organizations/{org}/appointment-types/{type_id}",
    tags=["reference data"],
    response_model=None,
    responses={200: {"model": AppointmentTypeView}, **problems(404)},
)
def get_appointment_type(org: Org, type_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.queries.get_appointment_type(org, type_id)


# ---------------------------------------------------------------------- changing it


@router.patch(
    "/organizations/{org}/locations/{location_id}",
    tags=["reference data"],
    response_model=None,
    responses={200: {"model": LocationView}, **problems(400, 403, 404, 409)},
)
def update_location(
    org: Org,
    location_id: UUID,
    body: UpdateLocationRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Rename a location or replace its address (``Location.Updated``); its time zone, in
    which its schedules are written, never changes."""
    return answer(request, bookings, body.to_command(org, request_id, location_id))


@router.patch(
    "/organizations/{org}/resources/{resource_id}",
    tags=["reference data"],
    response_model=None,
    responses={200: {"model": ResourceView}, **problems(400, 403, 404, 409)},
)
def update_resource(
    org: Org,
    resource_id: UUID,
    body: UpdateResourceRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Rename a resource, change its kind or specialties, or the locations it works at
    (``Resource.Updated``); pools follow at once. Which weekdays it works where, and from
    when, is its schedule's weekly hours (with ``effective_from``/``effective_until``)."""
    return answer(request, bookings, body.to_command(org, request_id, resource_id))


@router.patch(
    "/organizations/{org}/appointment-types/{type_id}",
    tags=["reference data"],
    response_model=None,
    responses={200: {"model": AppointmentTypeView}, **problems(400, 403, 404, 409)},
)
def update_appointment_type(
    org: Org,
    type_id: UUID,
    body: UpdateAppointmentTypeRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Change a type's definition, reminder plan or patient texts
    (``AppointmentType.Updated``): new bookings follow it, booked ones keep their time."""
    return answer(request, bookings, body.to_command(org, request_id, type_id))


def _retire_route(
    path: str, id_name: str, command: type[Retire], view: type[View], doc: str
) -> None:
    def retire(
        org: Org,
        target_id: UUID,
        body: RetireRequest,
        bookings: BookingsDep,
        request_id: RequestIdDep,
        request: Request,
    ) -> JSONResponse:
        return answer(request, bookings, body.to_command(org, request_id, target_id, command))

    retire.__doc__ = doc
    # The path names the id (location_id, ...): an annotation made here, where it is known.
    retire.__annotations__["target_id"] = Annotated[UUID, Path(alias=id_name)]
    router.add_api_route(
        f"/organizations/{{org}}/{path}/{{{id_name}}}/retire",
        retire,
        methods=["POST"],
        tags=["reference data"],
        name=command.name,
        response_model=None,
        responses={200: {"model": view}, **problems(400, 403, 404, 409)},
    )


_retire_route(
    "locations",
    "location_id",
    RetireLocation,
    LocationView,
    "The location takes no new bookings from now on (``Location.Retired``); its booked "
    "appointments stay for the clinic to move or cancel.",
)
_retire_route(
    "resources",
    "resource_id",
    RetireResource,
    ResourceView,
    "The resource leaves every pool and takes no new bookings (``Resource.Retired``); its "
    "booked appointments stay for the clinic to move or cancel.",
)
_retire_route(
    "appointment-types",
    "type_id",
    RetireAppointmentType,
    AppointmentTypeView,
    "The type takes no new bookings (``AppointmentType.Retired``); booked appointments of it stay.",
)
