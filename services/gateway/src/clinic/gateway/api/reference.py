"""Reference data: locations, providers, rooms, devices, their schedules, and appointment
types with their reminder plans.

Everyone of the organisation may read them (a patient picks a clinic, a type and a doctor);
org admins manage locations; clinic admins and org admins manage resources, schedules and
types. Lists come from availability's directory (paged, ordered by name); single items and
every change from booking, which records each change as an event.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from clinic.gateway.access import NotFoundError, check_any_location
from clinic.gateway.api.answers import (
    NOT_AUDITED,
    Caller,
    Target,
    caller_of,
    command,
    json_answer,
    passed_on,
    read,
)
from clinic.gateway.api.appointments import IdempotencyKey
from clinic.gateway.api.schemas import (
    DefineAppointmentTypeRequest,
    RegisterLocationRequest,
    RegisterResourceRequest,
    RetireRequest,
    ScheduleExceptionRequest,
    UpdateAppointmentTypeRequest,
    UpdateLocationRequest,
    UpdateResourceRequest,
    WeeklyHoursRequest,
)
from clinic.gateway.api.views import (
    AppointmentTypesPage,
    AppointmentTypeView,
    LocationsPage,
    LocationView,
    ResourcesPage,
    ResourceView,
    ScheduleView,
)
from clinic.platform.problem_handlers import problems

router = APIRouter(prefix="/v1", tags=["reference data"])
PageSize = Annotated[int, Query(ge=1, le=200, description="Items a page at most.")]
PageToken = Annotated[str | None, Query(max_length=2000, description="next_page_token.")]
CATEGORIES = {"providers": "provider", "rooms": "room", "devices": "device"}


async def _list(caller: Caller, path: str, params: dict[str, Any]) -> Response:
    wanted = {k: v for k, v in params.items() if v is not None}
    reply = await caller.get(
        caller.services.availability, f"/organizations/{caller.org}/{path}", wanted
    )
    return passed_on(caller, reply)


async def _one(caller: Caller, path: str) -> Response:
    reply = await caller.get(caller.services.booking, f"/organizations/{caller.org}/{path}")
    return await read(caller, reply, NOT_AUDITED)


async def _change(
    caller: Caller,
    method: str,
    path: str,
    body: Any,
    target: Target,
    created: str | None = None,
) -> Response:
    return await command(
        caller,
        caller.services.booking,
        method,
        f"/organizations/{caller.org}/{path}",
        body,
        target,
        created=created,
    )


# Locations


@router.get("/locations", response_model=LocationsPage, summary="List locations")
async def list_locations(
    request: Request,
    include_retired: bool = False,
    page_size: PageSize = 50,
    page_token: PageToken = None,
) -> Response:
    """The organisation's locations, by name."""
    caller = caller_of(request, "reference.read")
    return await _list(
        caller,
        "locations",
        {"include_retired": include_retired, "page_size": page_size, "page_token": page_token},
    )


@router.get(
    "/locations/{location_id}",
    response_model=LocationView,
    responses={**problems(404)},
    summary="Get a location",
)
async def get_location(request: Request, location_id: UUID) -> Response:
    """A location: name, address, time zone."""
    return await _one(caller_of(request, "reference.read"), f"locations/{location_id}")


@router.post(
    "/locations",
    status_code=201,
    response_model=LocationView,
    responses={**problems(403)},
    summary="Register a location",
)
async def register_location(
    request: Request, body: RegisterLocationRequest, idempotency_key: IdempotencyKey
) -> Response:
    """A new clinic location (org admins)."""
    caller = caller_of(request, "locations.write")
    return await _change(
        caller, "POST", "locations", body.forwarded(), Target(), "/v1/locations/{id}"
    )


@router.patch(
    "/locations/{location_id}",
    response_model=LocationView,
    responses={**problems(403, 404)},
    summary="Update a location",
)
async def update_location(
    request: Request, location_id: UUID, body: UpdateLocationRequest
) -> Response:
    """Rename a location or replace its address."""
    caller = caller_of(request, "locations.write")
    return await _change(
        caller, "PATCH", f"locations/{location_id}", body.forwarded(), Target((location_id,))
    )


@router.post(
    "/locations/{location_id}/retire",
    response_model=LocationView,
    responses={**problems(403, 404)},
    summary="Retire a location",
)
async def retire_location(
    request: Request, location_id: UUID, body: RetireRequest, idempotency_key: IdempotencyKey
) -> Response:
    """The location takes no new bookings from now on; its booked appointments stay."""
    caller = caller_of(request, "locations.write")
    return await _change(
        caller, "POST", f"locations/{location_id}/retire", body.forwarded(), Target((location_id,))
    )


# Providers, rooms and devices: one set of routes per category.


async def _resource(caller: Caller, category: str, resource_id: UUID) -> dict[str, Any]:
    """The resource, when it is of ``category`` and the caller may manage it."""
    reply = await caller.get(
        caller.services.booking, f"/organizations/{caller.org}/resources/{resource_id}"
    )
    body = reply.json() if reply.ok else None
    if not isinstance(body, dict) or body.get("category") != category:
        raise NotFoundError(f"{category} {resource_id} is not found")
    return body


def _resource_routes(path: str, category: str) -> None:
    async def list_resources(
        request: Request,
        location_id: UUID | None = None,
        kind: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
        specialty: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
        include_retired: bool = False,
        page_size: PageSize = 50,
        page_token: PageToken = None,
    ) -> Response:
        caller = caller_of(request, "reference.read")
        params = {
            "category": category,
            "location_id": location_id,
            "kind": kind,
            "specialty": specialty,
            "include_retired": include_retired,
            "page_size": page_size,
            "page_token": page_token,
        }
        return await _list(caller, "resources", params)

    async def get_resource(request: Request, resource_id: UUID) -> Response:
        caller = caller_of(request, "reference.read")
        return json_answer(await _resource(caller, category, resource_id))

    async def register_resource(
        request: Request, body: RegisterResourceRequest, idempotency_key: IdempotencyKey
    ) -> Response:
        caller = caller_of(request, "resources.write")
        if caller.principal.location_ids is not None and not set(body.location_ids) <= set(
            caller.principal.location_ids
        ):
            raise NotFoundError("a location named is not found")
        forwarded = {**body.forwarded(), "category": category}
        return await _change(
            caller,
            "POST",
            "resources",
            forwarded,
            Target(tuple(body.location_ids)),
            f"/v1/{path}/{{id}}",
        )

    async def manage(
        request: Request,
        operation: str,
        resource_id: UUID,
        method: str,
        suffix: str,
        body: Any,
        *more_ids: UUID,
    ) -> Response:
        """A change to a resource the caller manages (one of their locations')."""
        caller = caller_of(request, operation)
        found = await _resource(caller, category, resource_id)
        check_any_location(caller.principal, [UUID(v) for v in found["location_ids"]], category)
        target = Target((resource_id, *more_ids))
        return await _change(caller, method, f"resources/{resource_id}{suffix}", body, target)

    async def update_resource(
        request: Request, resource_id: UUID, body: UpdateResourceRequest
    ) -> Response:
        return await manage(request, "resources.write", resource_id, "PATCH", "", body.forwarded())

    async def retire_resource(
        request: Request, resource_id: UUID, body: RetireRequest, idempotency_key: IdempotencyKey
    ) -> Response:
        return await manage(
            request, "resources.write", resource_id, "POST", "/retire", body.forwarded()
        )

    async def get_schedule(request: Request, resource_id: UUID) -> Response:
        caller = caller_of(request, "schedules.read")
        await _resource(caller, category, resource_id)
        return await _one(caller, f"resources/{resource_id}/schedule")

    async def set_weekly_hours(
        request: Request, resource_id: UUID, body: WeeklyHoursRequest
    ) -> Response:
        return await manage(
            request,
            "schedules.write",
            resource_id,
            "PUT",
            "/schedule/weekly-hours",
            body.forwarded(),
        )

    async def add_exception(
        request: Request,
        resource_id: UUID,
        body: ScheduleExceptionRequest,
        idempotency_key: IdempotencyKey,
    ) -> Response:
        return await manage(
            request,
            "schedules.write",
            resource_id,
            "POST",
            "/schedule/exceptions",
            body.forwarded(),
        )

    async def remove_exception(request: Request, resource_id: UUID, exception_id: UUID) -> Response:
        return await manage(
            request,
            "schedules.write",
            resource_id,
            "DELETE",
            f"/schedule/exceptions/{exception_id}",
            None,
            exception_id,
        )

    noun = category
    tags: list[str | Enum] = ["reference data"]
    routes: list[tuple[str, str, Any, dict[str, Any]]] = [
        (
            "GET",
            f"/{path}",
            list_resources,
            {
                "response_model": ResourcesPage,
                "summary": f"List {path}",
                "description": f"The organisation's {path}, by name.",
            },
        ),
        (
            "GET",
            f"/{path}/{{resource_id}}",
            get_resource,
            {
                "response_model": ResourceView,
                "summary": f"Get a {noun}",
                "responses": problems(404),
            },
        ),
        (
            "POST",
            f"/{path}",
            register_resource,
            {
                "response_model": ResourceView,
                "status_code": 201,
                "summary": f"Register a {noun}",
                "responses": problems(403, 404),
            },
        ),
        (
            "PATCH",
            f"/{path}/{{resource_id}}",
            update_resource,
            {
                "response_model": ResourceView,
                "summary": f"Update a {noun}",
                "responses": problems(403, 404),
            },
        ),
        (
            "POST",
            f"/{path}/{{resource_id}}/retire",
            retire_resource,
            {
                "response_model": ResourceView,
                "summary": f"Retire a {noun}",
                "responses": problems(403, 404),
            },
        ),
        (
            "GET",
            f"/{path}/{{resource_id}}/schedule",
            get_schedule,
            {
                "response_model": ScheduleView,
                "summary": f"A {noun}'s schedule",
                "responses": problems(403, 404),
            },
        ),
        (
            "PUT",
            f"/{path}/{{resource_id}}/schedule/weekly-hours",
            set_weekly_hours,
            {
                "response_model": ScheduleView,
                "summary": f"Set a {noun}'s weekly hours",
                "responses": problems(403, 404),
            },
        ),
        (
            "POST",
            f"/{path}/{{resource_id}}/schedule/exceptions",
            add_exception,
            {
                "response_model": ScheduleView,
                "status_code": 201,
                "summary": f"Add leave, a holiday, blocked or extra time to a {noun}'s schedule",
                "responses": problems(403, 404),
            },
        ),
        (
            "DELETE",
            f"/{path}/{{resource_id}}/schedule/exceptions/{{exception_id}}",
            remove_exception,
            {
                "response_model": ScheduleView,
                "summary": f"Remove an exception from a {noun}'s schedule",
                "responses": problems(403, 404),
            },
        ),
    ]
    for method, route, endpoint, extra in routes:
        router.add_api_route(
            route,
            endpoint,
            methods=[method],
            tags=tags,
            name=f"{endpoint.__name__}_{category}",
            operation_id=f"{endpoint.__name__}_{category}",
            **extra,
        )


for _path, _category in CATEGORIES.items():
    _resource_routes(_path, _category)


# Appointment types


@router.get(
    "/appointment-types", response_model=AppointmentTypesPage, summary="List appointment types"
)
async def list_appointment_types(
    request: Request,
    location_id: UUID | None = None,
    patient_bookable: bool | None = None,
    include_retired: bool = False,
    page_size: PageSize = 50,
    page_token: PageToken = None,
) -> Response:
    """The organisation's appointment types by name: duration, preparation and what patients
    read per language (``location_id``: those offered there). A patient sees only the types
    patients book."""
    caller = caller_of(request, "reference.read")
    if caller.principal.role == "patient":
        patient_bookable = True
    params = {
        "location_id": location_id,
        "patient_bookable": patient_bookable,
        "include_retired": include_retired,
        "page_size": page_size,
        "page_token": page_token,
    }
    return await _list(caller, "appointment-types", params)


@router.get(
    "/appointment-types/{appointment_type_id}",
    response_model=AppointmentTypeView,
    responses={**problems(404)},
    summary="Get an appointment type",
)
async def get_appointment_type(request: Request, appointment_type_id: UUID) -> Response:
    """An appointment type: its steps and resources, buffers, cut-offs, reminder plan and
    what patients read."""
    caller = caller_of(request, "reference.read")
    return await _one(caller, f"appointment-types/{appointment_type_id}")


@router.post(
    "/appointment-types",
    status_code=201,
    response_model=AppointmentTypeView,
    responses={**problems(403)},
    summary="Define an appointment type",
)
async def define_appointment_type(
    request: Request, body: DefineAppointmentTypeRequest, idempotency_key: IdempotencyKey
) -> Response:
    """A new appointment type with its steps, resources and reminder plan."""
    caller = caller_of(request, "appointment_types.write")
    return await _change(
        caller,
        "POST",
        "appointment-types",
        body.forwarded(),
        Target(),
        "/v1/appointment-types/{id}",
    )


@router.patch(
    "/appointment-types/{appointment_type_id}",
    response_model=AppointmentTypeView,
    responses={**problems(403, 404)},
    summary="Update an appointment type",
)
async def update_appointment_type(
    request: Request, appointment_type_id: UUID, body: UpdateAppointmentTypeRequest
) -> Response:
    """Change the fields given; booked appointments keep what they were booked with."""
    caller = caller_of(request, "appointment_types.write")
    return await _change(
        caller,
        "PATCH",
        f"appointment-types/{appointment_type_id}",
        body.forwarded(),
        Target((appointment_type_id,)),
    )


@router.post(
    "/appointment-types/{appointment_type_id}/retire",
    response_model=AppointmentTypeView,
    responses={**problems(403, 404)},
    summary="Retire an appointment type",
)
async def retire_appointment_type(
    request: Request,
    appointment_type_id: UUID,
    body: RetireRequest,
    idempotency_key: IdempotencyKey,
) -> Response:
    """The type takes no new bookings; booked ones stay."""
    caller = caller_of(request, "appointment_types.write")
    return await _change(
        caller,
        "POST",
        f"appointment-types/{appointment_type_id}/retire",
        body.forwarded(),
        Target((appointment_type_id,)),
    )
