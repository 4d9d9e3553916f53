"""Routes of the directory: an organisation's locations, resources and appointment types as
paged lists (booking answers for one of them by its id; lists are read here, from the
projection).

Each list takes ``page_size`` (1 to 200, default 50) and ``page_token`` (the previous page's
``next_page_token``), is ordered by name then id, and refuses query parameters it does not
know (a misspelt filter must not quietly list everything)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from clinic.availability import directory
from clinic.availability.directory import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Page,
    ResourceFilters,
    TypeFilters,
)
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import Short


def single_valued(request: Request) -> None:
    """No query parameter of a directory list is repeatable: ``?category=room&category=device``
    is refused rather than read as one of the two."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise RequestValidationError(
            [
                {"type": "repeated", "loc": ("query", name), "msg": "given more than once"}
                for name in repeated
            ]
        )


router = APIRouter(tags=["directory"], dependencies=[Depends(single_valued)])


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_retired: bool = Field(
        False, description="Also list retired ones (they take no new bookings)."
    )
    page_size: int = Field(
        DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Items a page at most."
    )
    page_token: str | None = Field(
        None, max_length=2000, description="The next_page_token of the previous page."
    )

    def page(self) -> Page:
        return Page(self.page_size, self.page_token)


class ResourcesQuery(ListQuery):
    category: Literal["provider", "room", "device"] | None = Field(
        None, description="Only providers, rooms or devices."
    )
    kind: Short | None = Field(
        None,
        description="Only resources of this kind, as booking registered it "
        "(e.g. 'physician', 'nurse', 'exam-room', 'ultrasound').",
        examples=["physician"],
    )
    location_id: UUID | None = Field(None, description="Only resources working at it.")
    specialty: Short | None = Field(
        None, description="Only resources with this specialty.", examples=["cardiology"]
    )


class AppointmentTypesQuery(ListQuery):
    location_id: UUID | None = Field(
        None,
        description="Only types offered at this location: every requirement of every step "
        "has a live resource there that can fill it (the pool the slot search picks from; "
        "whether one has free time is the search's question). A retired location offers none.",
    )
    patient_bookable: bool | None = Field(
        None, description="Only types patients may (true) or may not (false) book themselves."
    )


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DirectoryLocation(View):
    id: UUID
    name: str
    time_zone: str = Field(description="IANA zone its schedules are written in.")
    address: dict[str, str] = Field(
        description="As booking registered it (empty for rows projected before addresses "
        "were, until the projection is rebuilt)."
    )
    retired: bool = Field(description="A retired location takes no new bookings.")


class LocationsPage(View):
    locations: list[DirectoryLocation]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")


class DirectoryResource(View):
    id: UUID
    category: Literal["provider", "room", "device"]
    kind: str = Field(description="e.g. 'physician', 'nurse', 'exam-room', 'ultrasound'.")
    name: str
    specialties: list[str]
    languages: list[str] = Field(
        default_factory=list,
        description="The languages a provider sees patients in (BCP 47), most fluent first.",
    )
    location_ids: list[UUID] = Field(description="Where it works.")
    time_zone: str = Field(description="The zone its days are cut in.")
    retired: bool = Field(description="A retired resource is in no pool any more.")


class ResourcesPage(View):
    resources: list[DirectoryResource]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")


class DirectoryRequirement(View):
    role: str
    category: Literal["provider", "room", "device"]
    resource_id: UUID | None = Field(description="This resource only; null: any of the pool.")
    kind: str | None
    specialty: str | None


class DirectoryStep(View):
    name: str
    offset_minutes: int
    duration_minutes: int
    requirements: list[DirectoryRequirement]


class DirectoryReminder(View):
    before_minutes: int
    channel: str | None = Field(description="null: the patient's preferred channel.")


class DirectoryPatientText(View):
    name: str
    description: str
    preparation: str


class DirectoryAppointmentType(View):
    id: UUID
    name: str
    duration_minutes: int = Field(description="From the start to the end of its last step.")
    steps: list[DirectoryStep]
    buffer_before_minutes: int
    buffer_after_minutes: int
    seats: int
    minimum_notice_minutes: int
    maximum_horizon_days: int
    cancellation_cutoff_minutes: int
    reschedule_cutoff_minutes: int | None = Field(
        description="Patients move a booking up to this long before its start; null: as cancelling."
    )
    patient_bookable: bool
    specialty: str | None
    preparation: str
    patient_facing: dict[str, DirectoryPatientText] = Field(
        description="BCP 47 language -> what patients read."
    )
    reminder_plan: list[DirectoryReminder]
    retired: bool = Field(description="A retired type takes no new bookings.")


class AppointmentTypesPage(View):
    appointment_types: list[DirectoryAppointmentType]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")


# Real answers, from booking's demo organisation (`BOOKING_LOAD_DEMO_DATA=true`).
LOCATIONS_EXAMPLE = {
    "locations": [
        {
            "id": "237fd2ef-e88c-47f0-9126-77c28f668a17",
            "name": "Berlin Mitte",
            "time_zone": "Europe/Berlin",
            "address": {"city": "Berlin", "street": "Invalidenstr. 1"},
            "retired": False,
        },
        {
            "id": "2586870c-bd3a-4169-9afc-20e2e9634af4",
            "name": "Hamburg Altona",
            "time_zone": "Europe/Berlin",
            "address": {"city": "Hamburg", "street": "Max-Brauer-Allee 10"},
            "retired": False,
        },
    ],
    "next_page_token": (
        "WyJIYW1idXJnIEFsdG9uYSIsIjI1ODY4NzBjLWJkM2EtNDE2OS05YWZjLTIwZTJlOTYzNGFmNCJd"
    ),
}
RESOURCES_EXAMPLE = {
    "resources": [
        {
            "id": "19d846c1-a535-47b5-9b7e-98201d6fe9ed",
            "category": "provider",
            "kind": "physician",
            "name": "Dr. Diaz",
            "specialties": ["cardiology"],
            "languages": ["de", "en"],
            "location_ids": ["237fd2ef-e88c-47f0-9126-77c28f668a17"],
            "time_zone": "Europe/Berlin",
            "retired": False,
        }
    ],
    "next_page_token": None,
}
TYPES_EXAMPLE = {
    "appointment_types": [
        {
            "id": "809dce33-9049-4ab6-b9dd-456d7111bc48",
            "name": "General consultation",
            "duration_minutes": 20,
            "steps": [
                {
                    "name": "consult",
                    "offset_minutes": 0,
                    "duration_minutes": 20,
                    "requirements": [
                        {
                            "role": "physician",
                            "category": "provider",
                            "resource_id": None,
                            "kind": None,
                            "specialty": "general-practice",
                        },
                        {
                            "role": "room",
                            "category": "room",
                            "resource_id": None,
                            "kind": "exam-room",
                            "specialty": None,
                        },
                    ],
                }
            ],
            "buffer_before_minutes": 0,
            "buffer_after_minutes": 0,
            "seats": 1,
            "minimum_notice_minutes": 0,
            "maximum_horizon_days": 365,
            "cancellation_cutoff_minutes": 120,
            "reschedule_cutoff_minutes": None,
            "patient_bookable": True,
            "specialty": None,
            "preparation": "",
            "patient_facing": {
                "de": {
                    "name": "Allgemeine Sprechstunde",
                    "description": "",
                    "preparation": "Bitte Versichertenkarte mitbringen.",
                },
                "es": {
                    "name": "Consulta general",
                    "description": "",
                    "preparation": "Traiga su tarjeta sanitaria.",
                },
            },
            "reminder_plan": [
                {"before_minutes": 4320, "channel": "email"},
                {"before_minutes": 1440, "channel": None},
                {"before_minutes": 120, "channel": None},
            ],
            "retired": False,
        }
    ],
    "next_page_token": None,
}


def _ok(model: type[BaseModel], example: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"model": model, "content": {"application/json": {"example": example}}}}


async def _answer(request: Request, read: Any, *args: Any) -> JSONResponse:
    async with request.app.state.runtime.database.pool.connection() as conn:
        return JSONResponse(await read(conn, *args))


@router.get(
    "/organizations/{org}/locations",
    summary="List the organisation's locations",
    response_model=None,
    responses={**_ok(LocationsPage, LOCATIONS_EXAMPLE), **problems()},
)
async def list_locations(
    org: UUID, request: Request, query: Annotated[ListQuery, Query()]
) -> JSONResponse:
    """The organisation's clinic locations with their time zones and addresses, live ones
    only unless ``include_retired``.

    Ordered by name, then id, ``page_size`` at most a page (up to 200): pass
    ``next_page_token`` back as ``page_token`` for the next one (null on the last). An
    organisation availability has no rows of (unknown, or not projected yet) has an empty
    list, not a 404: availability keeps no list of organisations.

    Example: ``GET /organizations/{org}/locations?page_size=2``."""
    return await _answer(request, directory.locations, org, query.include_retired, query.page())


@router.get(
    "/organizations/{org}/resources",
    summary="List the organisation's providers, rooms and devices",
    response_model=None,
    responses={**_ok(ResourcesPage, RESOURCES_EXAMPLE), **problems()},
)
async def list_resources(
    org: UUID, request: Request, query: Annotated[ResourcesQuery, Query()]
) -> JSONResponse:
    """The organisation's bookable resources, each with what a provider card shows (kind,
    specialties, the locations it works at), narrowed by every filter given: ``category``,
    ``kind``, ``location_id``, ``specialty``; live ones only unless ``include_retired``.

    Ordered by name, then id, ``page_size`` at most a page (up to 200): pass
    ``next_page_token`` back as ``page_token`` for the next one (null on the last). An
    organisation availability has no rows of (unknown, or not projected yet) has an empty
    list, not a 404: availability keeps no list of organisations.

    Example: ``GET /organizations/{org}/resources?category=provider&specialty=cardiology``."""
    filters = ResourceFilters(
        query.category, query.kind, query.location_id, query.specialty, query.include_retired
    )
    return await _answer(request, directory.resources, org, filters, query.page())


@router.get(
    "/organizations/{org}/appointment-types",
    summary="List the organisation's appointment types",
    response_model=None,
    responses={**_ok(AppointmentTypesPage, TYPES_EXAMPLE), **problems()},
)
async def list_appointment_types(
    org: UUID, request: Request, query: Annotated[AppointmentTypesQuery, Query()]
) -> JSONResponse:
    """The organisation's appointment types as booking defines them (duration, steps and
    the resources each needs, notice, horizon and cut-offs, whether patients may book
    them, what patients read per language), narrowed by ``location_id`` (offered there) and
    ``patient_bookable``; live ones only unless ``include_retired``.

    Ordered by name, then id, ``page_size`` at most a page (up to 200): pass
    ``next_page_token`` back as ``page_token`` for the next one (null on the last). An
    organisation availability has no rows of (unknown, or not projected yet) has an empty
    list, not a 404: availability keeps no list of organisations.

    Example:
    ``GET /organizations/{org}/appointment-types?location_id={id}&patient_bookable=true``."""
    filters = TypeFilters(query.location_id, query.patient_bookable, query.include_retired)
    return await _answer(request, directory.appointment_types, org, filters, query.page())
