"""Routes of the booking service's internal API. Thin: parse, call one application method,
map the answer. Every command needs an ``Idempotency-Key`` header; the first answer to a key
is returned again for a repeat (with ``Idempotency-Replayed: true``) and nothing is written.

Routes are plain ``def``: the event store client blocks, so FastAPI runs them in its thread
pool instead of the event loop.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, Histogram

from clinic.booking.api.deps import BookingsDep, RequestIdDep
from clinic.booking.api.schemas import (
    CancelRequest,
    DefineAppointmentTypeRequest,
    HoldRequest,
    JoinWaitlistRequest,
    LeaveWaitlistRequest,
    OverbookingAllowanceRequest,
    RegisterLocationRequest,
    RegisterOrganizationRequest,
    RegisterPatientRequest,
    RegisterResourceRequest,
    RescheduleRequest,
    ReserveRequest,
    ScheduleExceptionRequest,
    WeeklyHoursRequest,
)
from clinic.booking.application import Answer
from clinic.booking.domain.errors import BookingError, InvalidRequestError, NotFoundError
from clinic.booking.domain.values import (
    Actor,
    Category,
    Contact,
    ExceptionKind,
    Requirement,
    ScheduleException,
    Step,
    WeeklyHours,
)
from clinic.booking.outbox import Replay
from clinic.events import Topic

router = APIRouter()
Org = Annotated[UUID, Path(description="The organisation (tenant) id.")]


class CommandMetrics:
    """Domain counters, recorded at the application boundary."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.commands = Counter(
            "booking_commands_total",
            "Booking commands by outcome (a problem slug or 'ok').",
            ["command", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "booking_command_seconds",
            "Time to decide and save a booking command.",
            ["command"],
            registry=registry,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )


def _run(request: Request, command: str, call: Callable[[], Answer]) -> JSONResponse:
    metrics: CommandMetrics = request.app.state.command_metrics
    started = time.perf_counter()
    try:
        answer = call()
    except BookingError as error:
        metrics.commands.labels(command, error.slug).inc()
        raise
    finally:
        metrics.latency.labels(command).observe(time.perf_counter() - started)
    metrics.commands.labels(command, "replayed" if answer.replayed else "ok").inc()
    headers = {"Idempotency-Replayed": "true"} if answer.replayed else {}
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


# ---------------------------------------------------------------------- reference data


@router.get("/demo", tags=["reference data"])
def demo(request: Request) -> dict[str, Any]:
    """The ids of the demo hospital group, when the service loaded it (``make up`` does)."""
    summary = request.app.state.demo
    if summary is None:
        raise NotFoundError("demo data", "not loaded (set BOOKING_LOAD_DEMO_DATA=true)")
    return summary  # type: ignore[no-any-return]


@router.post("/organizations", status_code=201, tags=["reference data"])
def register_organization(
    body: RegisterOrganizationRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Register a tenant: a hospital group."""
    return _run(
        request,
        "register_organization",
        lambda: bookings.register_organization(request_id, body.name),
    )


@router.get("/organizations/{org}", tags=["reference data"])
def get_organization(org: Org, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.get_organization(org)


@router.post("/organizations/{org}/locations", status_code=201, tags=["reference data"])
def register_location(
    org: Org,
    body: RegisterLocationRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Register a clinic location with its IANA time zone."""
    return _run(
        request,
        "register_location",
        lambda: bookings.register_location(
            org, request_id, name=body.name, address=body.address, time_zone=body.time_zone
        ),
    )


@router.get("/organizations/{org}/locations/{location_id}", tags=["reference data"])
def get_location(org: Org, location_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.get_location(org, location_id)


@router.post("/organizations/{org}/resources", status_code=201, tags=["reference data"])
def register_resource(
    org: Org,
    body: RegisterResourceRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Register a provider, room or device; its schedule starts empty."""
    return _run(
        request,
        "register_resource",
        lambda: bookings.register_resource(
            org,
            request_id,
            category=Category(body.category),
            name=body.name,
            kind=body.kind,
            specialties=tuple(body.specialties),
            location_ids=tuple(body.location_ids),
            overbooking_allowance=body.overbooking_allowance,
        ),
    )


@router.get("/organizations/{org}/resources/{resource_id}", tags=["reference data"])
def get_resource(org: Org, resource_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.get_resource(org, resource_id)


@router.put(
    "/organizations/{org}/resources/{resource_id}/overbooking-allowance", tags=["reference data"]
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
    return _run(
        request,
        "set_overbooking_allowance",
        lambda: bookings.set_overbooking_allowance(org, request_id, resource_id, body.allowance),
    )


@router.get("/organizations/{org}/resources/{resource_id}/schedule", tags=["schedules"])
def get_schedule(org: Org, resource_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.get_schedule(org, resource_id)


@router.put(
    "/organizations/{org}/resources/{resource_id}/schedule/weekly-hours", tags=["schedules"]
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
    hours = tuple(
        WeeklyHours(h.location_id, h.weekday, h.start, h.end, h.effective_from, h.effective_until)
        for h in body.hours
    )
    return _run(
        request,
        "set_weekly_hours",
        lambda: bookings.set_weekly_hours(org, request_id, resource_id, hours),
    )


@router.post(
    "/organizations/{org}/resources/{resource_id}/schedule/exceptions",
    status_code=201,
    tags=["schedules"],
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
    if body.end <= body.start:
        raise _invalid("end must be after start")
    exception = ScheduleException(
        uuid.uuid4(),
        ExceptionKind(body.kind),
        body.start.astimezone(dt.UTC),
        body.end.astimezone(dt.UTC),
        body.location_id,
        body.reason,
    )
    return _run(
        request,
        "add_schedule_exception",
        lambda: bookings.add_schedule_exception(org, request_id, resource_id, exception),
    )


@router.delete(
    "/organizations/{org}/resources/{resource_id}/schedule/exceptions/{exception_id}",
    tags=["schedules"],
)
def remove_schedule_exception(
    org: Org,
    resource_id: UUID,
    exception_id: UUID,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    return _run(
        request,
        "remove_schedule_exception",
        lambda: bookings.remove_schedule_exception(org, request_id, resource_id, exception_id),
    )


@router.get("/organizations/{org}/resources/{resource_id}/days/{local_date}", tags=["calendar"])
def get_resource_day(
    org: Org, resource_id: UUID, local_date: dt.date, bookings: BookingsDep
) -> dict[str, Any]:
    """Why is this time taken? Every claim on the resource's local day with the appointment
    and the event that made it, the working windows, and the day's full event history."""
    return bookings.resource_day(org, resource_id, local_date)


@router.get("/organizations/{org}/resources/{resource_id}/owner", tags=["calendar"])
def who_owns(
    org: Org,
    resource_id: UUID,
    bookings: BookingsDep,
    at: Annotated[dt.datetime, Query(description="An instant with its offset.")],
) -> dict[str, Any]:
    """Which appointment (and which event) owns the minute at ``at``."""
    if at.tzinfo is None:
        raise _invalid("'at' needs an offset, e.g. 2026-03-02T09:30:00+01:00")
    return bookings.who_owns(org, resource_id, at)


@router.post("/organizations/{org}/appointment-types", status_code=201, tags=["reference data"])
def define_appointment_type(
    org: Org,
    body: DefineAppointmentTypeRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """What a visit needs: steps (sequential or parallel) and the resources of each."""
    steps = tuple(
        Step(
            s.name,
            s.offset_minutes,
            s.duration_minutes,
            tuple(
                Requirement(r.role, Category(r.category), r.resource_id, r.kind, r.specialty)
                for r in s.requirements
            ),
        )
        for s in body.steps
    )
    return _run(
        request,
        "define_appointment_type",
        lambda: bookings.define_appointment_type(
            org,
            request_id,
            name=body.name,
            steps=steps,
            buffer_before_minutes=body.buffer_before_minutes,
            buffer_after_minutes=body.buffer_after_minutes,
            seats=body.seats,
            minimum_notice_minutes=body.minimum_notice_minutes,
            maximum_horizon_days=body.maximum_horizon_days,
            cancellation_cutoff_minutes=body.cancellation_cutoff_minutes,
            patient_bookable=body.patient_bookable,
            preparation=body.preparation,
            specialty=body.specialty,
        ),
    )


@router.get("/organizations/{org}/appointment-types/{type_id}", tags=["reference data"])
def get_appointment_type(org: Org, type_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.get_appointment_type(org, type_id)


@router.post("/organizations/{org}/patients", status_code=201, tags=["patients"])
def register_patient(
    org: Org,
    body: RegisterPatientRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    return _run(
        request,
        "register_patient",
        lambda: bookings.register_patient(
            org,
            request_id,
            given_name=body.given_name,
            family_name=body.family_name,
            birth_date=body.birth_date,
            contacts=tuple(Contact(c.system, c.value) for c in body.contacts),
            preferred_channel=body.preferred_channel,
            language=body.language,
        ),
    )


@router.get("/organizations/{org}/patients/{patient_id}", tags=["patients"])
def get_patient(org: Org, patient_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.get_patient(org, patient_id)


# ---------------------------------------------------------------------- appointments


def _reserve_kwargs(org: UUID, body: ReserveRequest, bookings: Any) -> dict[str, Any]:
    return {
        "appointment_type_id": body.appointment_type_id,
        "location_id": body.location_id,
        "patient_id": body.patient_id,
        "start": bookings.instant(org, body.start, body.local_start, location_id=body.location_id),
        "preferred": dict(body.preferred_resources),
        "booked_by": Actor(body.booked_by),
        "allow_overbooking": body.allow_overbooking,
        "note": body.note,
    }


@router.post("/organizations/{org}/holds", status_code=201, tags=["appointments"])
def hold(
    org: Org,
    body: HoldRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Hold time for a patient (status ``pending``). The hold blocks the time until it is
    confirmed or expires; an expired hold frees its time for the next command by itself."""
    return _run(
        request,
        "hold",
        lambda: bookings.hold(
            org, request_id, hold_minutes=body.hold_minutes, **_reserve_kwargs(org, body, bookings)
        ),
    )


@router.post("/organizations/{org}/appointments", status_code=201, tags=["appointments"])
def book(
    org: Org,
    body: ReserveRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Book directly. 409 with ``alternatives`` when the time is taken."""
    return _run(
        request,
        "book",
        lambda: bookings.book(org, request_id, **_reserve_kwargs(org, body, bookings)),
    )


@router.get("/organizations/{org}/appointments/{appointment_id}", tags=["appointments"])
def get_appointment(org: Org, appointment_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.get_appointment(org, appointment_id)


@router.post("/organizations/{org}/appointments/{appointment_id}/confirm", tags=["appointments"])
def confirm(
    org: Org,
    appointment_id: UUID,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Turn a hold into a booking (409 ``hold-expired`` when it is too late)."""
    return _run(request, "confirm", lambda: bookings.confirm(org, request_id, appointment_id))


@router.post("/organizations/{org}/appointments/{appointment_id}/reschedule", tags=["appointments"])
def reschedule(
    org: Org,
    appointment_id: UUID,
    body: RescheduleRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Move every claim of the appointment at once, or nothing."""
    start = bookings.instant(org, body.start, body.local_start, appointment_id=appointment_id)
    return _run(
        request,
        "reschedule",
        lambda: bookings.reschedule(
            org,
            request_id,
            appointment_id,
            start=start,
            preferred=dict(body.preferred_resources),
            actor=Actor(body.actor),
            allow_overbooking=body.allow_overbooking,
        ),
    )


@router.post("/organizations/{org}/appointments/{appointment_id}/cancel", tags=["appointments"])
def cancel(
    org: Org,
    appointment_id: UUID,
    body: CancelRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    """Cancel by the patient (subject to the type's cut-off) or by the clinic."""
    return _run(
        request,
        "cancel",
        lambda: bookings.cancel(
            org, request_id, appointment_id, by=Actor(body.by), reason=body.reason
        ),
    )


def _status_route(path: str, command: str, doc: str) -> None:
    def change(
        org: Org,
        appointment_id: UUID,
        bookings: BookingsDep,
        request_id: RequestIdDep,
        request: Request,
    ) -> JSONResponse:
        method = getattr(bookings, command)
        return _run(request, command, lambda: method(org, request_id, appointment_id))

    change.__doc__ = doc
    router.add_api_route(
        f"/organizations/{{org}}/appointments/{{appointment_id}}/{path}",
        change,
        methods=["POST"],
        tags=["appointments"],
        name=command,
    )


_status_route("check-in", "check_in", "The patient checked in (FHIR ``checked-in``).")
_status_route("arrive", "arrive", "The patient arrived (FHIR ``arrived``).")
_status_route("complete", "complete", "The visit happened (FHIR ``fulfilled``).")
_status_route("no-show", "mark_no_show", "The patient did not come (FHIR ``noshow``).")


# ---------------------------------------------------------------------- waitlist


@router.post("/organizations/{org}/waitlist", status_code=201, tags=["waitlist"])
def join_waitlist(
    org: Org,
    body: JoinWaitlistRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    return _run(
        request,
        "join_waitlist",
        lambda: bookings.join_waitlist(
            org,
            request_id,
            patient_id=body.patient_id,
            appointment_type_id=body.appointment_type_id,
            location_ids=tuple(body.location_ids),
            earliest=body.earliest,
            latest=body.latest,
            times_of_day=tuple(body.times_of_day),
            provider_id=body.provider_id,
            note=body.note,
        ),
    )


@router.get("/organizations/{org}/waitlist/{entry_id}", tags=["waitlist"])
def get_waitlist_entry(org: Org, entry_id: UUID, bookings: BookingsDep) -> dict[str, Any]:
    return bookings.get_waitlist_entry(org, entry_id)


@router.post("/organizations/{org}/waitlist/{entry_id}/leave", tags=["waitlist"])
def leave_waitlist(
    org: Org,
    entry_id: UUID,
    body: LeaveWaitlistRequest,
    bookings: BookingsDep,
    request_id: RequestIdDep,
    request: Request,
) -> JSONResponse:
    return _run(
        request,
        "leave_waitlist",
        lambda: bookings.leave_waitlist(org, request_id, entry_id, body.reason),
    )


def _invalid(detail: str) -> BookingError:
    return InvalidRequestError(detail)


# ---------------------------------------------------------------------- operations


@router.post("/relay/republish", status_code=202, tags=["operations"])
def republish(request: Request) -> dict[str, Any]:
    """Publish every event again from the event store (consumers are idempotent). Use after a
    broker lost its data, or to rebuild a projection from the topics."""
    relay = request.app.state.relay
    if relay is None or not relay.republish():
        raise RelayNotHereError("the relay runs on another replica (or is disabled); retry")
    return {"status": "republishing", "from_position": 0}


class RelayNotHereError(BookingError):
    status = 409
    slug = "relay-not-leader"
    title = "This replica does not run the relay"


@router.get("/events", tags=["operations"])
def replay_events(
    request: Request,
    bookings: BookingsDep,
    after: Annotated[int, Query(ge=0, description="Last notification id already read.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    topic: Annotated[
        list[Topic] | None, Query(description="Only events of these topics (repeatable).")
    ] = None,
) -> Response:
    """The integration events of the event store after ``after``, as the relay publishes
    them: for projections that rebuild without Kafka. ``next`` is the id to pass as
    ``after`` for the following page; ``top`` the newest id in the store."""
    replay = request.app.state.replay
    if replay is None or replay.bookings is not bookings:
        replay = request.app.state.replay = Replay(bookings)
    topics = sorted(str(t) for t in topic) if topic else None
    top, following, events = replay.page(after, limit, topics)
    body = b'{"top":%d,"next":%d,"events":[%s]}' % (top, following, b",".join(events))
    return Response(body, media_type="application/json")
