"""The scheduling operations over HTTP: ``Appointment/$find`` (GET or POST), ``$hold``,
``$book`` and ``Appointment/{id}/$cancel``. Each answers a ``searchset`` Bundle with the
Appointment(s), or only an OperationOutcome when booking refused."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

from fastapi import APIRouter, Request

from clinic.emr_bridge import audit, reads, search
from clinic.emr_bridge.api.fhir import base_url, etag, now_instant, organization
from clinic.emr_bridge.api.outcomes import FhirError, FhirResponse, PreconditionFailed, fhir_json
from clinic.emr_bridge.auth import CallerDep
from clinic.emr_bridge.clinics import Acting
from clinic.emr_bridge.fhir import instant
from clinic.emr_bridge.operations import OperationError, Operations, refused, requested
from clinic.emr_bridge.parameters import (
    BOOK,
    CANCEL,
    FIND,
    HOLD,
    ParameterError,
    find_request,
    from_body,
    from_query,
    one_appointment,
)

router = APIRouter(prefix="/fhir/{org}/Appointment", tags=["scheduling operations"])
STATUS_VERBS = {
    "cancelled": "cancel",
    "noshow": "no-show",
    "checked-in": "check-in",
    "arrived": "arrive",
    "fulfilled": "complete",
    "entered-in-error": "entered-in-error",
}
JSON_TYPES = ("application/fhir+json", "application/json")


class OperationFailed(FhirError):
    """Booking or availability refused (status and issue code from their answer)."""


def _failed(error: OperationError) -> FhirError:
    failure = OperationFailed(error.detail, code=error.code)
    failure.status = error.status
    failure.title = "The operation was refused" if error.status < 500 else "Try again"
    return failure


def operations(request: Request) -> Operations:
    ops: Operations = request.app.state.operations
    return ops


def client_of(request: Request) -> str:
    """The EMR client acting (the token's client once authenticated)."""
    return str(getattr(request.state, "client_id", None) or "emr")


async def parameters(request: Request, names: dict[str, str]) -> dict[str, list[Any]]:
    if request.method == "GET":
        return from_query(request.query_params.multi_items(), names)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in JSON_TYPES:
        error = FhirError("send the Parameters as application/fhir+json", code="not-supported")
        error.status = 415
        raise error
    raw = await request.body()
    if not raw and names is CANCEL:
        return {}
    return from_body(fhir_json(raw), names)


def bundle(
    request: Request,
    org: UUID,
    resources: list[dict[str, Any]],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> FhirResponse:
    base = base_url(request, org)
    if len(resources) == 1:
        request.state.audited_id = resources[0]["id"]  # the appointment the audit names
    entries = [
        {"fullUrl": f"{base}/Appointment/{r['id']}", "resource": r, "search": {"mode": "match"}}
        for r in resources
    ]
    body = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "timestamp": now_instant(),
        "entry": entries,
    }
    return FhirResponse(body, status_code=status, headers=headers)


def _versioned(resource: dict[str, Any]) -> dict[str, str]:
    version = resource.get("meta", {}).get("versionId")
    return {"ETag": etag(int(version))} if version else {}


@router.api_route("/$find", methods=["GET", "POST"], response_class=FhirResponse)
async def find(org: str, request: Request, who: CallerDep) -> FhirResponse:
    """Proposed appointments within ``start``..``end`` (ITI-115)."""
    async with audit.audited(request, "E", "$find", "Appointment"):
        who.require("Appointment", "s")
        return await _find(org, request)


@router.post("/$hold", response_class=FhirResponse)
async def hold(org: str, request: Request, who: CallerDep) -> FhirResponse:
    """Hold a proposed appointment (ITI-116): ``pending`` until booked, cancelled or
    expired; it blocks conflicting bookings from every channel meanwhile."""
    async with audit.audited(request, "E", "$hold", "Appointment"):
        who.require("Appointment", "c")
        return await _hold(org, request)


@router.post("/$book", response_class=FhirResponse)
async def book(org: str, request: Request, who: CallerDep) -> FhirResponse:
    """Book a proposed or held appointment, or a whole Appointment; or modify or cancel an
    existing one, given whole with its changes (ITI-117). Booking needs the scope to
    create appointments; changing one, to update them."""
    async with audit.audited(request, "E", "$book", "Appointment"):
        who.require("Appointment", "c")
        return await _book(org, request)


@router.post("/{rid}/$cancel", response_class=FhirResponse)
async def cancel(org: str, rid: str, request: Request, who: CallerDep) -> FhirResponse:
    """Cancel an appointment (a vendor spelling of ``$book`` with status cancelled)."""
    async with audit.audited(request, "E", "$cancel", "Appointment", rid):
        who.require("Appointment", "u")
        return await _cancel(org, rid, request)


def _may_update(request: Request) -> None:
    """A change of an existing appointment needs the scope to update appointments."""
    request.state.caller.require("Appointment", "u")


async def _find(org: str, request: Request) -> FhirResponse:
    org_id = organization(org)
    try:
        wanted = find_request(await parameters(request, FIND))
        proposals = await operations(request).find(org_id, wanted)
    except ParameterError as error:
        raise FhirError(str(error)) from None
    except OperationError as error:
        raise _failed(error) from None
    return bundle(request, org_id, [resource for _, resource in proposals])


async def _hold(org: str, request: Request) -> FhirResponse:
    org_id = organization(org)
    ops = operations(request)
    try:
        reference, _ = one_appointment(await parameters(request, HOLD))
        proposal = await ops.proposal(org_id, str(reference))
        if proposal is None:
            raise OperationError(
                404,
                f"no proposed Appointment/{reference} (proposals from $find last 30 minutes)",
                "not-found",
            )
        held = await ops.reserve(org_id, proposal, client_of(request), "fhir", hold=True)
    except ParameterError as error:
        raise FhirError(str(error)) from None
    except OperationError as error:
        raise _failed(error) from None
    return bundle(request, org_id, [held], headers=_versioned(held))


async def _book(org: str, request: Request) -> FhirResponse:
    org_id = organization(org)
    try:
        reference, resource = one_appointment(await parameters(request, BOOK))
        if reference is not None:
            booked = await _book_reference(request, org_id, reference)
            return bundle(request, org_id, [booked], headers=_versioned(booked))
        assert resource is not None
        return await _book_resource(request, org_id, resource)
    except ParameterError as error:
        raise FhirError(str(error)) from None
    except OperationError as error:
        raise _failed(error) from None


async def _book_reference(request: Request, org: UUID, reference: str) -> dict[str, Any]:
    ops = operations(request)
    proposal = await ops.proposal(org, reference)
    if proposal is not None:
        return await ops.reserve(org, proposal, client_of(request), "fhir", hold=False)
    existing = await _current(request, org, reference)
    if existing is None or existing.body is None:
        raise OperationError(404, f"no proposed or held Appointment/{reference}", "not-found")
    _may_update(request)  # booking decides whether it is still held (or replays)
    acting = _acting(request, org, f"confirm:{reference}", existing)
    return await ops.act(org, reference, "confirm", acting, {})


async def _current(request: Request, org: UUID, rid: str) -> reads.Stored | None:
    if not search.ID.match(rid):
        return None
    async with request.app.state.runtime.database.pool.connection() as conn:
        return await reads.appointment(conn, org, rid)


def _acting(request: Request, org: UUID, what: str, existing: reads.Stored | None) -> Acting:
    """Who acts, the request's idempotency key (the client's, or one of its own), and the
    version booking must still have when the client sent ``If-Match``.

    ``If-Match`` names the version the client read; it must be the one served now (else
    412), and booking is asked to act only if the appointment is still at its version of
    what was served (so a change made meanwhile through any channel is a 412 too, decided by
    booking in the same step as the change)."""
    given = request.headers.get("idempotency-key")
    key = f"emr-bridge:{org}:{what}:{given or uuid.uuid4()}"
    if_match = request.headers.get("if-match")
    booking_version = None
    if if_match is not None and existing is not None:
        wanted = if_match.strip().removeprefix("W/").strip('"')
        if wanted != str(existing.version):
            raise PreconditionFailed(
                f"Appointment/{existing.id} is at version {existing.version}, not {wanted}"
            )
        if existing.source_version is not None:
            booking_version = f'"{existing.source_version}"'
    return Acting(client_of(request), "fhir", key, if_match=booking_version)


async def _book_resource(request: Request, org: UUID, resource: dict[str, Any]) -> FhirResponse:
    ops = operations(request)
    wanted = requested(resource, org)
    existing = await _current(request, org, wanted["id"]) if wanted["id"] else None
    if existing is None or existing.body is None:
        return await _create(request, org, wanted)
    _may_update(request)
    aid, now, status = existing.id, existing.body, wanted["status"]
    if status in STATUS_VERBS and status != now["status"]:
        body = (
            {"reason": wanted.get("reason") or "cancelled in the EMR"}
            if status in ("cancelled", "entered-in-error")
            else {}
        )
        changed = await ops.act(
            org, aid, STATUS_VERBS[status], _acting(request, org, f"{status}:{aid}", existing), body
        )
    elif "start" in wanted and instant(wanted["start"]) != now["start"]:
        body = {"start": wanted["start"].isoformat(), "preferred_resources": wanted["resources"]}
        changed = await ops.act(
            org, aid, "reschedule", _acting(request, org, f"reschedule:{aid}", existing), body
        )
    elif status == "booked" and now["status"] == "pending":
        changed = await ops.act(
            org, aid, "confirm", _acting(request, org, f"confirm:{aid}", existing), {}
        )
    else:
        _acting(request, org, "unchanged", existing)  # If-Match still applies
        changed = now
    return bundle(request, org, [changed], headers=_versioned(changed))


async def _create(request: Request, org: UUID, wanted: dict[str, Any]) -> FhirResponse:
    if wanted["status"] not in ("proposed", "pending", "booked"):
        raise OperationError(400, "a new appointment is booked with status pending (or booked)")
    missing = [k for k in ("type", "location", "patient", "start") if not wanted.get(k)]
    if missing:
        raise OperationError(
            400,
            f"a new appointment needs {', '.join(missing)} (serviceType "
            "coding of the appointment-type system, a clinic Location, a "
            "Patient participant and start)",
        )
    condition = request.headers.get("if-none-exist")
    key = request.headers.get("idempotency-key") or str(uuid.uuid4())
    if condition:
        found = await _matching(request, org, condition)
        if len(found) > 1:
            raise PreconditionFailed(f"If-None-Exist matches {len(found)} appointments")
        if found:
            return bundle(request, org, found, headers=_versioned(found[0]))
        scope = json.dumps([client_of(request), condition, wanted], sort_keys=True, default=str)
        key = hashlib.sha256(scope.encode()).hexdigest()  # the same create, asked again
    ops = operations(request)
    acting = Acting(client_of(request), "fhir", f"emr-bridge:{org}:create:{key}")
    try:
        type_id, location, patient = (
            UUID(wanted["type"]),
            UUID(wanted["location"]),
            UUID(wanted["patient"]),
        )
    except ValueError:
        raise OperationError(
            404, "unknown appointment type, location or patient", "not-found"
        ) from None
    answer = await ops.booking.reserve(
        org,
        acting,
        hold=False,
        appointment_type=type_id,
        location=location,
        patient=patient,
        start=wanted["start"],
        resources=wanted["resources"],
    )
    if not answer.ok:
        raise refused(answer, "$book")
    created = await ops.settled(org, answer)
    headers = {
        **_versioned(created),
        "Location": f"{base_url(request, org)}/Appointment/{created['id']}",
    }
    return bundle(request, org, [created], status=201, headers=headers)


async def _matching(request: Request, org: UUID, condition: str) -> list[dict[str, Any]]:
    try:
        query = search.parse("Appointment", parse_qsl(condition, keep_blank_values=True))
    except search.SearchError as error:
        raise FhirError(f"If-None-Exist: {error}") from None
    query.count = 2
    async with request.app.state.runtime.database.pool.connection() as conn:
        page = await reads.find(conn, org, query)
    return page.matches


async def _cancel(org: str, rid: str, request: Request) -> FhirResponse:
    org_id = organization(org)
    try:
        values = await parameters(request, CANCEL)
        reasons = values.get("reason") or ["cancelled in the EMR"]
        if len(reasons) > 1:
            raise ParameterError("reason is given more than once")
        reason = str(reasons[0])[:500]
        existing = await _current(request, org_id, rid)
        if existing is None or existing.body is None:
            raise OperationError(404, f"no Appointment/{rid}", "not-found")
        acting = _acting(request, org_id, f"cancel:{rid}", existing)
        cancelled = await operations(request).act(org_id, rid, "cancel", acting, {"reason": reason})
    except ParameterError as error:
        raise FhirError(str(error)) from None
    except OperationError as error:
        raise _failed(error) from None
    return bundle(request, org_id, [cancelled], headers=_versioned(cancelled))
