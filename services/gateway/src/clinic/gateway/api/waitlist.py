"""The waitlist: patients waiting for an earlier time, and the freed times offered to them.

Booking keeps the entries; notification offers freed times to waiting patients (each offer
backed by a hold) and lists what it offered. A patient joins and leaves for themself.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from clinic.gateway.access import check_any_location, check_location, check_patient, patient_for
from clinic.gateway.api.answers import (
    Caller,
    Target,
    audited,
    caller_of,
    command,
    json_answer,
    read,
)
from clinic.gateway.api.appointments import IdempotencyKey
from clinic.gateway.api.schemas import JoinWaitlistRequest, ReasonRequest
from clinic.gateway.api.views import FreedTimesView, WaitlistEntryView, WaitlistPage
from clinic.gateway.principal import Role
from clinic.gateway.upstream import Reply
from clinic.platform.problem_handlers import problems
from clinic.platform.strict import Instant

router = APIRouter(prefix="/v1", tags=["waitlist"])


async def _visible_entry(caller: Caller, entry_id: UUID) -> Reply:
    reply = await caller.get(
        caller.services.booking, f"/organizations/{caller.org}/waitlist/{entry_id}"
    )
    if reply.ok:
        body = reply.json()
        what = f"waitlist entry {entry_id}"
        check_patient(caller.principal, UUID(body["patient_id"]), what)
        check_any_location(caller.principal, [UUID(v) for v in body["location_ids"]], what)
    return reply


def _target(entry_id: UUID, reply: Reply) -> Target:
    patient = UUID(reply.json()["patient_id"]) if reply.ok else None
    return Target((entry_id,), patient)


@router.post(
    "/waitlist-entries",
    status_code=201,
    response_model=WaitlistEntryView,
    responses={**problems(403, 404)},
    summary="Join the waitlist",
)
async def join(
    request: Request, body: JoinWaitlistRequest, idempotency_key: IdempotencyKey
) -> Response:
    """Wait for an earlier time of a type at some locations between two dates; freed times
    are offered in order of priority, then of joining."""
    caller = caller_of(request, "waitlist.join")
    patient_id = patient_for(caller.principal, body.patient_id)
    check_any_location(caller.principal, body.location_ids, "a location named")
    forwarded = {**body.forwarded(), "patient_id": str(patient_id)}
    return await command(
        caller,
        caller.services.booking,
        "POST",
        f"/organizations/{caller.org}/waitlist",
        forwarded,
        Target(tuple(body.location_ids), patient_id),
        created="/v1/waitlist-entries/{id}",
    )


@router.get(
    "/waitlist-entries",
    response_model=WaitlistPage,
    summary="The waitlist",
)
async def list_entries(
    request: Request,
    active: Annotated[bool, Query(description="Only those still waiting (false: all).")] = True,
    location_id: UUID | None = None,
    patient_id: UUID | None = None,
    appointment_type_id: UUID | None = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Who is waiting, in the order they joined (freed time is offered by priority first,
    then this order). A patient sees their own entries; a clinic role limited to some
    locations, the entries naming one of them."""
    caller = caller_of(request, "waitlist.list")
    principal = caller.principal
    if principal.role == Role.PATIENT:
        patient_id = patient_for(principal, patient_id)
    if location_id is not None:
        check_location(principal, location_id, f"location {location_id}")
    params: dict[str, Any] = {
        "active": active,
        "location_id": location_id,
        "patient_id": patient_id,
        "appointment_type_id": appointment_type_id,
        "page_size": page_size,
        "page_token": page_token,
    }
    reply = await caller.get(
        caller.services.notification, f"/organizations/{caller.org}/waitlist", params
    )
    if not reply.ok:
        return await read(caller, reply, Target())
    body = reply.json()
    entries = [
        {"id": e.pop("entry_id"), **e}
        for e in body["entries"]
        if principal.location_ids is None
        or principal.location_ids & {UUID(v) for v in e["location_ids"]}
    ]
    answer = json_answer({"entries": entries, "next_page_token": body["next_page_token"]})
    patients = {UUID(e["patient_id"]) for e in entries}
    only = next(iter(patients)) if len(patients) == 1 else None
    return await audited(caller, answer, Target(tuple(UUID(e["id"]) for e in entries), only))


@router.get(
    "/waitlist-entries/{entry_id}",
    response_model=WaitlistEntryView,
    responses={**problems(404)},
    summary="Get a waitlist entry",
)
async def get_entry(request: Request, entry_id: UUID) -> Response:
    """A waitlist entry (a patient: their own)."""
    caller = caller_of(request, "waitlist.get")
    reply = await _visible_entry(caller, entry_id)
    return await read(caller, reply, _target(entry_id, reply))


@router.post(
    "/waitlist-entries/{entry_id}/leave",
    response_model=WaitlistEntryView,
    responses={**problems(403, 404, 409)},
    summary="Leave the waitlist",
)
async def leave(
    request: Request, entry_id: UUID, body: ReasonRequest, idempotency_key: IdempotencyKey
) -> Response:
    """Stop waiting, with a reason."""
    caller = caller_of(request, "waitlist.leave")
    seen = await _visible_entry(caller, entry_id)
    if not seen.ok:
        return await read(caller, seen, Target((entry_id,)))
    return await command(
        caller,
        caller.services.booking,
        "POST",
        f"/organizations/{caller.org}/waitlist/{entry_id}/leave",
        body.forwarded(),
        _target(entry_id, seen),
    )


@router.get(
    "/waitlist-offers",
    response_model=FreedTimesView,
    summary="Freed times offered to the waitlist",
)
async def offers(
    request: Request,
    since: Instant | None = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """Times freed by cancellations and who they were offered to, in turn (lapsed,
    accepted, filled), latest start first; ``since`` bounds how far back (30 days by
    default)."""
    caller = caller_of(request, "waitlist.offers")
    params: dict[str, Any] = {"limit": page_size, "page_token": page_token}
    if since is not None:
        params["since"] = since.isoformat()
    reply = await caller.get(
        caller.services.notification, f"/organizations/{caller.org}/waitlist-offers", params
    )
    return await read(caller, reply, Target())
