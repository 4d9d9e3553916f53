"""``PUT Patient/{id}``: an EMR that owns demographics updates a patient; the change is
booking's (``PATCH .../patients/{id}``, new identifiers recorded), made with the EMR client
as the actor. Only where the organisation chose the EMR as the source of truth for
demographics; elsewhere the update is refused and nothing changes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request

from clinic.emr_bridge import audit, demographics, reads
from clinic.emr_bridge.api.fhir import organization, resource_id, versioned_headers
from clinic.emr_bridge.api.operations import JSON_TYPES, client_of
from clinic.emr_bridge.api.outcomes import (
    FhirError,
    FhirResponse,
    NotFound,
    PreconditionFailed,
    fhir_json,
)
from clinic.emr_bridge.auth import CallerDep
from clinic.emr_bridge.clinics import Acting, Answer, Booking
from clinic.emr_bridge.fhir import InvalidResourceError, validated
from clinic.emr_bridge.inbound import demographics_source

router = APIRouter(prefix="/fhir/{org}/Patient", tags=["fhir"])
SETTLE_SECONDS = 5.0


class RuleRefused(FhirError):
    status, slug, title, code = 422, "business-rule", "Refused by a rule", "business-rule"


def _refused(answer: Answer) -> FhirError:
    if answer.status == 0 or answer.status >= 500:
        error = FhirError(f"booking did not answer ({answer.detail}); retry", code="transient")
        error.status = 503
        return error
    if answer.status == 412:
        return PreconditionFailed(answer.detail)
    if answer.status == 404:
        return NotFound(answer.detail)
    return RuleRefused(f"booking refused: {answer.detail}")


async def _body(request: Request) -> dict[str, Any]:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in JSON_TYPES:
        error = FhirError("send the Patient as application/fhir+json", code="not-supported")
        error.status = 415
        raise error
    body = fhir_json(await request.body())
    if not isinstance(body, dict) or body.get("resourceType") != "Patient":
        raise FhirError("the body must be a Patient resource", code="structure")
    try:
        return validated(body)
    except InvalidResourceError as error:
        raise FhirError(f"the Patient is not valid FHIR R4: {error}", code="structure") from None


@router.put("/{rid}", response_class=FhirResponse)
async def update(org: str, rid: str, request: Request, who: CallerDep) -> FhirResponse:
    """Update a patient's demographics (name, birth date, gender, address, phone and email)
    and add identifiers it did not have. ``If-Match`` makes it conditional on the version
    read."""
    async with audit.audited(request, "U", "update", "Patient", rid):
        who.require("Patient", "u")
        return await _update(org, rid, request)


async def _update(org: str, rid: str, request: Request) -> FhirResponse:
    org_id, rid = organization(org), resource_id(rid)
    patient = await _body(request)
    if patient.get("id") != rid:
        raise FhirError("the Patient's id must be the one in the URL")
    database = request.app.state.runtime.database
    async with database.pool.connection() as conn:
        if await demographics_source(conn, org_id) != "emr":
            raise RuleRefused(
                "this organisation keeps patients' demographics in the clinic "
                "platform: an EMR does not update them"
            )
        current = await reads.current(conn, org_id, "Patient", rid)
    if current is None or current.body is None:
        raise NotFound(f"no Patient/{rid} (an update does not create patients)")
    if_match = request.headers.get("if-match")
    if if_match is not None:
        wanted = if_match.strip().removeprefix("W/").strip('"')
        if wanted != str(current.version):
            raise PreconditionFailed(f"Patient/{rid} is at version {current.version}, not {wanted}")
    try:
        change = demographics.from_fhir(patient)
    except demographics.DemographicsError as error:
        raise RuleRefused(str(error)) from None
    known = set(demographics.identifiers_of_fhir(current.body))
    added = [
        (s, v) for s, v in demographics.identifiers_of_fhir(patient) if s and (s, v) not in known
    ]
    try:
        demographics.check(change, added)
    except demographics.DemographicsError as error:
        raise FhirError(str(error), code="value") from None
    if not added and _same(demographics.from_fhir(current.body), change):
        return FhirResponse(current.body, headers=versioned_headers(current))  # nothing to do
    booking: Booking = request.app.state.operations.booking
    key = request.headers.get("idempotency-key") or str(uuid.uuid4())
    base = f"/organizations/{org_id}/patients/{rid}"

    def acting(what: str) -> Acting:
        return Acting(client_of(request), "fhir", f"emr-bridge:{org_id}:{what}:{rid}:{key}")

    answer = await booking.patch(base, acting("patient"), change)
    if not answer.ok:
        raise _refused(answer)
    known = set(demographics.identifiers_of_fhir(current.body))
    for system, value in demographics.identifiers_of_fhir(patient):
        if (system, value) not in known and system:
            recorded = await booking.post(
                f"{base}/identifiers",
                acting(f"id:{system}|{value}"),
                {"system": system, "value": value},
            )
            if not recorded.ok:
                raise _refused(recorded)

    def done(body: dict[str, Any]) -> bool:
        served = set(demographics.identifiers_of_fhir(body))
        return _same(demographics.from_fhir(body), change) and set(added) <= served

    stored = await _settled(request, org_id, rid, done)
    assert stored.body is not None
    return FhirResponse(stored.body, headers=versioned_headers(stored))


def _same(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether a change leaves the demographics as they are (address parts FHIR leaves out
    read as empty)."""
    blank = {"lines": [], "city": "", "district": "", "state": "", "postal_code": ""}
    return {k: ({**blank, **v} if k == "address" else v) for k, v in before.items()} == {
        k: ({**blank, **v} if k == "address" else v) for k, v in after.items()
    }


async def _settled(
    request: Request, org: UUID, rid: str, done: Callable[[dict[str, Any]], bool]
) -> reads.Stored:
    """The Patient once the projection shows the whole change (or as it is, after a while:
    the change is booking's either way)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_SECONDS
    while True:
        async with request.app.state.runtime.database.pool.connection() as conn:
            stored = await reads.current(conn, org, "Patient", rid)
        assert stored is not None
        if (stored.body is not None and done(stored.body)) or loop.time() > deadline:
            return stored
        await asyncio.sleep(0.02)
