"""The bridge's admin API, for a clinic's integration team and ops: the EMR endpoints of an
organisation (where SIU goes, which peers may send SRM and ADT), the messages sent, waiting
or parked, with replay and skip for parked ones, and which system owns patients'
demographics. Answers are JSON, errors problem+json."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import Field, field_validator

from clinic.emr_bridge.inbound import demographics_source
from clinic.emr_bridge.outbox import endpoints
from clinic.platform.problem_handlers import problems
from clinic.platform.problems import Problem
from clinic.platform.strict import Count, Flag, Name, Short, StrictModel

router = APIRouter(prefix="/admin/organizations/{org}", tags=["hl7 admin"])


class NotFoundError(Problem):
    status, slug, title = 404, "not-found", "Not found"


class NotParkedError(Problem):
    status, slug, title = 409, "not-parked", "Only a parked message is replayed or skipped"


class EndpointBody(StrictModel):
    host: Short = Field(examples=["emr.example.org"])
    port: Count = Field(ge=1, le=65535, examples=[2575])
    sending_facility: Short = Field("CLINIC", description="MSH-4 of the messages we send.")
    receiving_application: Short = Field(examples=["EPIC"])
    receiving_facility: Short = Field(examples=["MAIN"])
    allowed_addresses: list[Short] = Field(
        default_factory=list,
        max_length=20,
        description="Addresses or networks (CIDR) the EMR sends SRM and ADT from; its "
        "sending facility (MSH-4) must be this endpoint's receiving facility.",
    )
    active: Flag = True

    @field_validator("allowed_addresses")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for address in value:
            try:
                ipaddress.ip_network(address, strict=False)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address or network") from None
        return value


def _org(org: str) -> UUID:
    try:
        return UUID(org)
    except ValueError:
        raise NotFoundError(f"no organisation {org!r}") from None


def _endpoint_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.endpoint_id),
        "name": row.name,
        "host": row.host,
        "port": row.port,
        "sending_facility": row.sending_facility,
        "receiving_application": row.receiving_application,
        "receiving_facility": row.receiving_facility,
        "allowed_addresses": list(row.allowed_addresses),
        "active": row.active,
    }


@router.put("/hl7-endpoints/{name}", responses=problems(404))
async def put_endpoint(org: str, name: Name, body: EndpointBody, request: Request) -> Any:
    """Create or change an EMR endpoint; SIU messages of the organisation's appointments go
    to every active one from now on."""
    org_id = _org(org)
    async with request.app.state.runtime.database.pool.connection() as conn:
        await conn.execute(
            """INSERT INTO emr_endpoints (endpoint_id, organization_id, name, host, port,
                sending_facility, receiving_application, receiving_facility,
                allowed_addresses, active, created_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (organization_id, name) DO UPDATE SET host = EXCLUDED.host,
                port = EXCLUDED.port, sending_facility = EXCLUDED.sending_facility,
                receiving_application = EXCLUDED.receiving_application,
                receiving_facility = EXCLUDED.receiving_facility,
                allowed_addresses = EXCLUDED.allowed_addresses, active = EXCLUDED.active""",
            [
                uuid.uuid4(),
                org_id,
                name,
                body.host,
                body.port,
                body.sending_facility,
                body.receiving_application,
                body.receiving_facility,
                body.allowed_addresses,
                body.active,
                dt.datetime.now(dt.UTC),
            ],
        )
        found = [e for e in await endpoints(conn, org_id, active_only=False) if e.name == name]
    return _endpoint_view(found[0])


@router.get("/hl7-endpoints", responses=problems(404))
async def list_endpoints(org: str, request: Request) -> Any:
    async with request.app.state.runtime.database.pool.connection() as conn:
        found = await endpoints(conn, _org(org), active_only=False)
    return {"endpoints": [_endpoint_view(e) for e in found]}


MESSAGE_COLUMNS = (
    "control_id, trigger, status, order_key, attempts, next_attempt_at,"
    " last_error, ack_code, created_at, acked_at, body"
)


@router.get("/hl7-messages", responses=problems(404))
async def list_messages(
    org: str,
    request: Request,
    status: Literal["pending", "acked", "parked", "skipped"] | None = None,
    appointment: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Messages, newest first: parked ones are what the EMR rejected, with its reason."""
    org_id = _org(org)
    async with request.app.state.runtime.database.pool.connection() as conn:
        cursor = await conn.execute(
            f"SELECT {MESSAGE_COLUMNS} FROM hl7_outbox WHERE organization_id = %s"
            " AND (%s::text IS NULL OR status = %s) AND (%s::text IS NULL OR order_key = %s)"
            " ORDER BY seq DESC LIMIT %s",
            [
                org_id,
                status,
                status,
                str(appointment) if appointment else None,
                str(appointment) if appointment else None,
                limit,
            ],
        )
        names = [c.strip() for c in MESSAGE_COLUMNS.split(",")]
        rows = [dict(zip(names, r, strict=True)) for r in await cursor.fetchall()]
    for row in rows:
        for key in ("next_attempt_at", "created_at", "acked_at"):
            row[key] = row[key].isoformat() if row[key] else None
        body = row.pop("body")  # None until first sent (written then, kept for retries)
        row["segments"] = body.rstrip("\r").split("\r") if body else []
    return {"messages": rows}


async def _parked(request: Request, org: str, control_id: str, to: str) -> Any:
    org_id = _org(org)
    async with request.app.state.runtime.database.pool.connection() as conn:
        cursor = await conn.execute(
            "UPDATE hl7_outbox SET status = %s, next_attempt_at = now(), attempts = 0"
            " WHERE organization_id = %s AND control_id = %s AND status = 'parked'"
            " RETURNING control_id",
            [to, org_id, control_id[:40]],
        )
        changed = await cursor.fetchone()
        if changed is None:
            cursor = await conn.execute(
                "SELECT status FROM hl7_outbox WHERE organization_id = %s AND control_id = %s",
                [org_id, control_id[:40]],
            )
            found = await cursor.fetchone()
            if found is None:
                raise NotFoundError(f"no HL7 message {control_id!r}")
            raise NotParkedError(f"message {control_id} is {found[0]}")
    request.app.state.sender.wake()
    return {"control_id": control_id, "status": to}


@router.post("/hl7-messages/{control_id}/replay", responses=problems(404, 409))
async def replay(org: str, control_id: str, request: Request) -> Any:
    """Send a parked message again (the same text and control id), e.g. once the EMR's
    configuration was fixed; the appointment's later messages follow it."""
    return await _parked(request, org, control_id, "pending")


@router.post("/hl7-messages/{control_id}/skip", responses=problems(404, 409))
async def skip(org: str, control_id: str, request: Request) -> Any:
    """Give up on a parked message: the appointment's later messages go on without it."""
    return await _parked(request, org, control_id, "skipped")


class DemographicsBody(StrictModel):
    source: Literal["clinic", "emr"] = Field(
        description="Who owns patients' demographics: ``clinic`` (the platform; EMR updates "
        "are refused) or ``emr`` (FHIR ``PUT Patient`` and ADT^A08 update them)."
    )


@router.put("/demographics-source", responses=problems(404))
async def put_demographics_source(org: str, body: DemographicsBody, request: Request) -> Any:
    """Decide which system is the source of truth for patients' demographics."""
    org_id = _org(org)
    async with request.app.state.runtime.database.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO organization_settings VALUES (%s, %s) ON CONFLICT (organization_id)"
            " DO UPDATE SET demographics_source = EXCLUDED.demographics_source",
            [org_id, body.source],
        )
    return {"organization_id": str(org_id), "source": body.source}


@router.get("/demographics-source", responses=problems(404))
async def get_demographics_source(org: str, request: Request) -> Any:
    org_id = _org(org)
    async with request.app.state.runtime.database.pool.connection() as conn:
        source = await demographics_source(conn, org_id)
    return {"organization_id": str(org_id), "source": source}
