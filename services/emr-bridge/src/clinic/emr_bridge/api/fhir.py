"""FHIR R4 reads: ``metadata``, read, vread, ``_history`` and search, under
``/fhir/{organization}``. Answers are FHIR JSON with ``ETag`` (``W/"version"``) and
``Last-Modified``; errors are OperationOutcomes."""

from __future__ import annotations

import contextlib
import datetime as dt
from contextlib import AbstractAsyncContextManager
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request

from clinic.emr_bridge import audit, reads
from clinic.emr_bridge.api.outcomes import FhirError, FhirResponse, Gone, NotFound, NotSupported
from clinic.emr_bridge.auth import CallerDep
from clinic.emr_bridge.capability import capability_statement
from clinic.emr_bridge.fhir import instant
from clinic.emr_bridge.search import (
    FORMATS,
    ID,
    MAX_COUNT,
    PARAMETERS,
    PRETTY,
    Query,
    SearchError,
    date_range,
    is_number,
    parse,
)

router = APIRouter(prefix="/fhir/{org}", tags=["fhir"])
PUBLISHED = "2026-12-02"


def organization(org: str) -> UUID:
    """The organisation a request is for (an id that is not one finds nothing)."""
    try:
        return UUID(org)
    except ValueError:
        raise NotFound(f"no organisation {org!r}") from None


def resource_type(name: str) -> str:
    if name not in PARAMETERS:
        raise NotSupported(
            f"resource type {name!r} is not served here (served: {', '.join(sorted(PARAMETERS))})"
        )
    return name


def resource_id(rid: str) -> str:
    if not ID.match(rid):
        raise NotFound(f"{rid!r} is not a FHIR id")
    return rid


def base_url(request: Request, org: UUID) -> str:
    return f"{str(request.base_url).rstrip('/')}/fhir/{org}"


def etag(version: int) -> str:
    return f'W/"{version}"'


def versioned_headers(stored: reads.Stored) -> dict[str, str]:
    return {
        "ETag": etag(stored.version),
        "Last-Modified": format_datetime(stored.last_updated.astimezone(dt.UTC), usegmt=True),
    }


def now_instant() -> str:
    return instant(dt.datetime.now(dt.UTC))


@router.get("/metadata", response_class=FhirResponse)
async def metadata(org: str, request: Request) -> FhirResponse:
    """The CapabilityStatement: exactly what this endpoint supports."""
    org_id = organization(org)
    _only(request, {"_format", "_pretty", "_summary"})
    return FhirResponse(capability_statement(base_url(request, org_id), PUBLISHED))


def _audit(
    request: Request, interaction: str, kind: str, rid: str | None = None
) -> AbstractAsyncContextManager[None]:
    """Reads of patients' data are audited (a Patient, or appointments with their patients
    included); other reads are not."""
    includes = request.query_params.getlist("_include")
    if kind == "Patient" or any(
        i in ("Appointment:patient", "Appointment:actor") for i in includes
    ):
        return audit.audited(request, "R", interaction, kind, rid)
    return contextlib.nullcontext()


@router.get("/{kind}/{rid}", response_class=FhirResponse)
async def read(org: str, kind: str, rid: str, request: Request, who: CallerDep) -> FhirResponse:
    """Read the current version (``ETag``, ``Last-Modified``); 410 when deleted."""
    async with _audit(request, "read", kind, rid):
        who.require(resource_type(kind), "r")
        return await _read(org, kind, rid, request)


@router.get("/{kind}/{rid}/_history/{vid}", response_class=FhirResponse)
async def vread(
    org: str, kind: str, rid: str, vid: str, request: Request, who: CallerDep
) -> FhirResponse:
    """Read one version."""
    async with _audit(request, "vread", kind, rid):
        who.require(resource_type(kind), "r")
        return await _vread(org, kind, rid, vid, request)


@router.get("/{kind}/{rid}/_history", response_class=FhirResponse)
async def history(org: str, kind: str, rid: str, request: Request, who: CallerDep) -> FhirResponse:
    """Every version, newest first: a ``history`` Bundle, paged by ``_count``."""
    async with _audit(request, "history-instance", kind, rid):
        who.require(resource_type(kind), "r")
        return await _history(org, kind, rid, request)


@router.get("/{kind}", response_class=FhirResponse)
async def search_type(org: str, kind: str, request: Request, who: CallerDep) -> FhirResponse:
    """Search: a ``searchset`` Bundle with ``total``, ``self`` and ``next`` links, and the
    resources ``_include`` asked for (``search.mode`` ``include``)."""
    async with _audit(request, "search-type", kind):
        who.require(resource_type(kind), "s")
        if "Appointment:patient" in request.query_params.getlist("_include") or (
            "Appointment:actor" in request.query_params.getlist("_include")
        ):
            who.require("Patient", "r")
        return await _search(org, kind, request)


async def _read(org: str, kind: str, rid: str, request: Request) -> FhirResponse:
    org_id, kind, rid = organization(org), resource_type(kind), resource_id(rid)
    if request.query_params:
        _only(request, {"_format", "_pretty", "_summary"})
    async with request.app.state.runtime.database.pool.connection() as conn:
        stored = await reads.current(conn, org_id, kind, rid)
    if stored is None:
        raise NotFound(f"no {kind}/{rid}")
    if stored.body is None:
        raise Gone(f"{kind}/{rid} was deleted (version {stored.version})")
    return FhirResponse(stored.body, headers=versioned_headers(stored))


async def _vread(org: str, kind: str, rid: str, vid: str, request: Request) -> FhirResponse:
    org_id, kind, rid = organization(org), resource_type(kind), resource_id(rid)
    if not is_number(vid) or len(vid) > 9:
        raise NotFound(f"{vid!r} is not a version of {kind}/{rid}")
    async with request.app.state.runtime.database.pool.connection() as conn:
        stored = await reads.version(conn, org_id, kind, rid, int(vid))
    if stored is None:
        raise NotFound(f"no version {vid} of {kind}/{rid}")
    if stored.body is None:
        raise Gone(f"version {vid} of {kind}/{rid} marks its deletion")
    return FhirResponse(stored.body, headers=versioned_headers(stored))


def _only(request: Request, allowed: set[str]) -> None:
    """Only ``allowed`` parameters, and the format ones with values this server serves."""
    params = request.query_params
    if params.get("_format", "json") not in FORMATS:
        raise FhirError("only JSON is served (_format=json)", code="not-supported")
    if params.get("_summary", "false") != "false":
        raise FhirError("only _summary=false (whole resources) is supported", code="not-supported")
    if params.get("_pretty", "false") not in PRETTY:
        raise FhirError("_pretty is true or false")
    unknown = sorted({k for k in params if k not in allowed})
    if unknown:
        raise FhirError(
            f"unknown parameter(s) {', '.join(unknown)} (supported: {', '.join(sorted(allowed))})"
        )


async def _history(org: str, kind: str, rid: str, request: Request) -> FhirResponse:
    org_id, kind, rid = organization(org), resource_type(kind), resource_id(rid)
    _only(request, {"_count", "_since", "_before_version", "_format", "_pretty"})
    params = request.query_params
    count = _count(params.get("_count"))
    before = params.get("_before_version")
    if before is not None and (not is_number(before) or len(before) > 9):
        raise FhirError("_before_version is not one this service gave")
    since = None
    if "_since" in params:
        try:
            since = date_range(params["_since"])[0]
        except SearchError as error:
            raise FhirError(str(error)) from None
    async with request.app.state.runtime.database.pool.connection() as conn:
        versions, total = await reads.history(
            conn, org_id, kind, rid, count, int(before) if before else None, since
        )
    if total == 0:
        async with request.app.state.runtime.database.pool.connection() as conn:
            if since is None or await reads.current(conn, org_id, kind, rid) is None:
                raise NotFound(f"no {kind}/{rid}")  # (nothing since then: an empty Bundle)
    base = base_url(request, org_id)
    entries = [_history_entry(base, v) for v in versions]
    links = [{"relation": "self", "url": str(request.url)}]
    if versions and versions[-1].version > 1 and len(versions) == count:
        links.append(
            {
                "relation": "next",
                "url": f"{base}/{kind}/{rid}/_history?_count={count}"
                f"&_before_version={versions[-1].version}",
            }
        )
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "history",
            "total": total,
            "timestamp": now_instant(),
            "link": links,
            "entry": entries,
        }
    )


def _history_entry(base: str, stored: reads.Stored) -> dict[str, Any]:
    url = f"{stored.resource_type}/{stored.id}"
    entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
    if stored.body is not None:
        entry["resource"] = stored.body
        method, status = ("POST", "201 Created") if stored.version == 1 else ("PUT", "200 OK")
    else:
        method, status = "DELETE", "204 No Content"
    entry["request"] = {"method": method, "url": url if method != "POST" else stored.resource_type}
    entry["response"] = {
        "status": status,
        "etag": etag(stored.version),
        "lastModified": instant(stored.last_updated),
    }
    return entry


def _count(value: str | None) -> int:
    if value is None:
        return 50
    if not is_number(value) or not 1 <= int(value) <= MAX_COUNT:
        raise FhirError(f"_count must be a whole number from 1 to {MAX_COUNT}")
    return int(value)


async def _search(org: str, kind: str, request: Request) -> FhirResponse:
    org_id, kind = organization(org), resource_type(kind)
    try:
        query = parse(kind, request.query_params.multi_items())
    except SearchError as error:
        raise FhirError(str(error)) from None
    return await searchset(request, org_id, query)


async def searchset(request: Request, org_id: UUID, query: Query) -> FhirResponse:
    async with request.app.state.runtime.database.pool.connection() as conn:
        page = await reads.find(conn, org_id, query)
    base = base_url(request, org_id)
    kind = query.resource_type
    criteria = [*query.criteria, ("_count", str(query.count))]
    links = [{"relation": "self", "url": str(request.url)}]
    if page.next_cursor:
        after = urlencode([*criteria, ("_cursor", page.next_cursor)])
        links.append({"relation": "next", "url": f"{base}/{kind}?{after}"})
    entries = [
        {
            "fullUrl": f"{base}/{body['resourceType']}/{body['id']}",
            "resource": body,
            "search": {"mode": mode},
        }
        for mode, bodies in (("match", page.matches), ("include", page.included))
        for body in bodies
    ]
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": page.total,
            "timestamp": now_instant(),
            "link": links,
            "entry": entries,
        }
    )
