"""The audit trail as FHIR: ``GET /fhir/{org}/AuditEvent`` (search, newest first) and
``GET /fhir/{org}/AuditEvent/{id}``, for clients granted ``system/AuditEvent.rs``. Reading the
trail is itself recorded in it."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request

from clinic.emr_bridge import audit
from clinic.emr_bridge.api.auth import fhir_base
from clinic.emr_bridge.api.outcomes import FhirError, FhirResponse, NotFound
from clinic.emr_bridge.auth import CallerDep
from clinic.emr_bridge.fhir import instant
from clinic.emr_bridge.search import SearchError

router = APIRouter(prefix="/fhir/{org}/AuditEvent", tags=["audit"])


@router.get("", response_class=FhirResponse, summary="Search the audit trail")
async def search_audit_events(org: str, request: Request, who: CallerDep) -> FhirResponse:
    """What EMR clients did in this organisation, newest first: a ``searchset`` Bundle of
    AuditEvents, by ``date`` (``eq``, ``ge``, ``gt``, ``le``, ``lt``), ``agent`` (a client
    id), ``entity`` (``Type/id``), ``action``, ``outcome``; ``_count`` per page, ``next``
    link."""
    async with audit.audited(request, "E", "search-type", "AuditEvent"):
        who.require("AuditEvent", "s")
        try:
            search = audit.parse_search(request.query_params.multi_items())
        except SearchError as error:
            raise FhirError(str(error)) from None
        async with request.app.state.runtime.database.pool.connection() as conn:
            found, following = await audit.find(conn, who.organization, search)
    base = fhir_base(request, who.organization)
    links = [{"relation": "self", "url": str(request.url)}]
    if following:
        after = urlencode([*search.criteria, ("_count", str(search.count)), ("_cursor", following)])
        links.append({"relation": "next", "url": f"{base}/AuditEvent?{after}"})
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"{base}/AuditEvent/{event.id}",
            "resource": audit.audit_event(event),
            "search": {"mode": "match"},
        }
        for event in found
    ]
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "timestamp": instant(dt.datetime.now(dt.UTC)),
            "link": links,
            "entry": entries,
        }
    )


@router.get("/{event_id}", response_class=FhirResponse, summary="Read one audit event")
async def read_audit_event(
    org: str, event_id: str, request: Request, who: CallerDep
) -> FhirResponse:
    """One AuditEvent of this organisation."""
    try:
        wanted: UUID | None = UUID(event_id)
    except ValueError:
        wanted = None
    async with audit.audited(request, "R", "read", "AuditEvent", str(wanted) if wanted else None):
        who.require("AuditEvent", "r")
        found = None
        if wanted is not None:
            async with request.app.state.runtime.database.pool.connection() as conn:
                found = await audit.one(conn, who.organization, wanted)
        if found is None:
            raise NotFound(f"no AuditEvent/{event_id}")
    return FhirResponse(audit.audit_event(found))
