"""The audit trail of what EMR clients did: who (the client), what (the interaction or
operation), which resource, the outcome, from where, in which trace.

``audit_events`` is append-only, and the database enforces it: a trigger refuses every
UPDATE, DELETE and TRUNCATE, whoever sends it. (Retention is an operator's deliberate act:
disable the trigger as the table's owner, delete, enable it again.)

- ``record`` writes one event on a connection (inside the caller's transaction if there is
  one); ``audited`` wraps a route's work and records its outcome (0 on success, 4 for a
  client's error, 8 for the server's), with the client, organisation, address and trace id
  taken from the request;
- ``audit_event`` renders a row as a FHIR R4 AuditEvent (pure);
- ``parse_search`` and ``find`` serve ``GET /fhir/{org}/AuditEvent``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from opentelemetry import trace
from psycopg import sql
from starlette.requests import Request

from clinic.emr_bridge.fhir import SYSTEM, instant, validated
from clinic.emr_bridge.search import MAX_COUNT, SearchError, date_range, is_number
from clinic.platform import paging
from clinic.platform.database import append_only
from clinic.platform.problems import Problem

AUDIT_DDL = [
    """CREATE TABLE IF NOT EXISTS audit_events (
        id uuid PRIMARY KEY, recorded_at timestamptz NOT NULL,
        organization_id uuid NOT NULL,
        client_id text NOT NULL CHECK (length(client_id) BETWEEN 1 AND 200),
        action text NOT NULL CHECK (action IN ('C', 'R', 'U', 'D', 'E')),
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
        resource_type text CHECK (length(resource_type) BETWEEN 1 AND 64),
        resource_id text CHECK (length(resource_id) BETWEEN 1 AND 64),
        outcome smallint NOT NULL CHECK (outcome IN (0, 4, 8, 12)),
        detail text CHECK (length(detail) <= 2000),
        client_address text CHECK (length(client_address) <= 100),
        trace_id text CHECK (length(trace_id) <= 32))""",
    """CREATE INDEX IF NOT EXISTS audit_events_by_time
        ON audit_events (organization_id, recorded_at DESC, id DESC)""",
    """CREATE INDEX IF NOT EXISTS audit_events_by_agent
        ON audit_events (organization_id, client_id, recorded_at DESC)""",
    """CREATE INDEX IF NOT EXISTS audit_events_by_entity
        ON audit_events (organization_id, resource_type, resource_id, recorded_at DESC)""",
    *append_only("audit_events"),
]

ACTIONS = frozenset("CRUDE")
"""http://hl7.org/fhir/R4/valueset-audit-event-action.html: create, read (read, vread,
history), update, delete, execute (search, operations, log-in)."""
OUTCOMES = frozenset({0, 4, 8, 12})
"""http://hl7.org/fhir/R4/valueset-audit-event-outcome.html: success, minor failure (the
client's error), serious failure (the server's), major failure."""
RESTFUL_INTERACTIONS = frozenset({
    "read", "vread", "update", "patch", "delete", "history", "history-instance",
    "history-type", "history-system", "create", "search", "search-type", "search-system",
    "capabilities", "transaction", "batch", "operation",
})  # fmt: skip
"""http://hl7.org/fhir/R4/codesystem-restful-interaction.html."""
LOGIN = "login"
"""The name of a token issued (or refused to a registered client)."""
ACTION_OF = {
    "read": "R", "vread": "R", "history-instance": "R", "history-type": "R",
    "search-type": "E", "search": "E", "create": "C", "update": "U", "patch": "U",
    "delete": "D", LOGIN: "E",
}  # fmt: skip
"""The action of each interaction; an operation (``$find``, ``$book``) is ``E``."""

_NAME = re.compile(r"^\$[a-z][a-z-]{0,78}$")
_REFERENCE = re.compile(r"(?:^|/)([A-Z][A-Za-z]{0,63})/([A-Za-z0-9\-.]{1,64})$")

AUDIT_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
CLIENT_SYSTEM = f"{SYSTEM}/emr-client"
OPERATION_SYSTEM = f"{SYSTEM}/operation"
TRACE_EXTENSION = f"{SYSTEM}/trace-id"
"""The trace of the request (like the time zone of a Location, under the platform's URLs)."""


@dataclass(frozen=True)
class AuditEntry:
    """One thing an EMR client did."""

    organization: UUID
    client_id: str
    action: str
    """C, R, U, D or E (``ACTION_OF`` by interaction)."""
    name: str
    """The interaction (``read``, ``search-type``, ...), the operation (``$book``), or
    ``login``."""
    resource_type: str | None = None
    resource_id: str | None = None
    outcome: int = 0
    detail: str | None = None
    client_address: str | None = None
    trace_id: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action is one of C R U D E, not {self.action!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome is one of 0 4 8 12, not {self.outcome!r}")
        known = self.name in RESTFUL_INTERACTIONS or self.name == LOGIN
        if not (known or _NAME.match(self.name) or HL7_MESSAGE.match(self.name)):
            raise ValueError(
                f"{self.name!r} is no RESTful interaction, $operation, HL7 message or login"
            )
        if self.resource_id is not None and self.resource_type is None:
            raise ValueError("a resource id needs its resource type")


@dataclass(frozen=True)
class RecordedEntry:
    id: UUID
    recorded_at: dt.datetime
    entry: AuditEntry


def outcome_of(status: int) -> int:
    """The AuditEvent outcome of an HTTP status."""
    if status < 400:
        return 0
    return 4 if status < 500 else 8


def _clip(text: str | None, size: int) -> str | None:
    return None if text is None else text[:size]


async def record(
    conn: psycopg.AsyncConnection, entry: AuditEntry, at: dt.datetime | None = None
) -> RecordedEntry:
    """Appends one event (``at``: now, unless given)."""
    recorded = RecordedEntry(uuid.uuid4(), at or dt.datetime.now(dt.UTC), entry)
    await conn.execute(
        """INSERT INTO audit_events (id, recorded_at, organization_id, client_id, action, name,
            resource_type, resource_id, outcome, detail, client_address, trace_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        [
            recorded.id,
            recorded.recorded_at,
            entry.organization,
            entry.client_id[:200],
            entry.action,
            entry.name,
            _clip(entry.resource_type, 64),  # what a request named, valid or not
            _clip(entry.resource_id, 64),
            entry.outcome,
            _clip(entry.detail, 2000),
            _clip(entry.client_address, 100),
            _clip(entry.trace_id, 32),
        ],
    )
    return recorded


def trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def request_entry(
    request: Request,
    action: str,
    name: str,
    resource_type: str | None = None,
    resource_id: str | None = None,
    outcome: int = 0,
    detail: str | None = None,
) -> AuditEntry:
    """An entry for the caller of ``request`` (set by ``auth.caller``), from its address,
    in the current trace."""
    caller = getattr(request.state, "caller", None)
    if caller is None:
        raise ValueError("audit a request only after auth.caller found who sent it")
    return AuditEntry(
        caller.organization,
        caller.client_id,
        action,
        name,
        resource_type,
        resource_id,
        outcome,
        detail,
        request.client.host if request.client else None,
        trace_id(),
    )


async def record_request(request: Request, entry: AuditEntry) -> RecordedEntry:
    async with request.app.state.runtime.database.pool.connection() as conn:
        return await record(conn, entry)


@asynccontextmanager
async def audited(
    request: Request,
    action: str,
    name: str,
    resource_type: str | None = None,
    resource_id: str | None = None,
) -> AsyncIterator[None]:
    """Records the outcome of the work inside: 0 when it ends, the status's outcome when it
    raises a ``Problem`` (an OperationOutcome), 8 for anything else. The resource is
    ``resource_id``, or the one the work names in ``request.state.audited_id`` (the
    appointment an operation held or booked). The error goes on; a
    failure to record fails the request (nothing is served unaudited)."""
    try:
        yield
    except Problem as error:
        outcome, detail = outcome_of(error.status), f"{error.status}: {error.detail}"
        await record_request(
            request,
            request_entry(request, action, name, resource_type, resource_id, outcome, detail),
        )
        raise
    except Exception as error:
        detail = f"500: {type(error).__name__}"
        await record_request(
            request, request_entry(request, action, name, resource_type, resource_id, 8, detail)
        )
        raise
    resource_id = getattr(request.state, "audited_id", None) or resource_id
    await record_request(request, request_entry(request, action, name, resource_type, resource_id))


# -- as FHIR ------------------------------------------------------------------------------------


HL7_MESSAGE = re.compile(r"^[A-Z]{3}\^[A-Z][0-9]{2}$")
"""An HL7 v2 message type and trigger (``SRM^S01``, ``ADT^A08``): what came over MLLP."""
HL7_EVENTS = "http://terminology.hl7.org/CodeSystem/v2-0003"


def _subtype(name: str) -> list[dict[str, str]]:
    if HL7_MESSAGE.match(name):
        return [{"system": HL7_EVENTS, "code": name.split("^")[1], "display": name}]
    if name == LOGIN:
        return [{"system": DICOM, "code": "110122", "display": "Login"}]
    if name.startswith("$"):
        return [
            {"system": RESTFUL_INTERACTION, "code": "operation", "display": "operation"},
            {"system": OPERATION_SYSTEM, "code": name, "display": name},
        ]
    return [{"system": RESTFUL_INTERACTION, "code": name, "display": name}]


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def audit_event(recorded: RecordedEntry) -> dict[str, Any]:
    """The FHIR R4 AuditEvent of one recorded entry."""
    e = recorded.entry
    if e.name == LOGIN:
        kind = {"system": DICOM, "code": "110114", "display": "User Authentication"}
    else:
        kind = {"system": AUDIT_EVENT_TYPE, "code": "rest", "display": "RESTful Operation"}
    agent: dict[str, Any] = {
        "type": {
            "coding": [{"system": DICOM, "code": "110150", "display": "Application"}],
        },
        "who": {"identifier": {"system": CLIENT_SYSTEM, "value": e.client_id}},
        "name": e.client_id,
        "requestor": True,
    }
    if e.client_address:
        agent["network"] = {
            "address": e.client_address,
            "type": "2" if _is_ip(e.client_address) else "1",
        }
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(recorded.id),
        "meta": {"lastUpdated": instant(recorded.recorded_at)},
        "type": kind,
        "subtype": _subtype(e.name),
        "action": e.action,
        "recorded": recorded.recorded_at.astimezone(dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "outcome": str(e.outcome),
        "agent": [agent],
        "source": {
            "site": str(e.organization),
            "observer": {"display": "clinic emr-bridge"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
    }
    if e.detail:
        event["outcomeDesc"] = e.detail
    if e.resource_type:
        what: dict[str, Any] = (
            {"reference": f"{e.resource_type}/{e.resource_id}"}
            if e.resource_id
            else {"type": e.resource_type}
        )
        event["entity"] = [
            {
                "what": what,
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                    "display": "System Object",
                },
            }
        ]
    if e.trace_id:
        event["extension"] = [{"url": TRACE_EXTENSION, "valueString": e.trace_id}]
    return validated(event)


# -- search ---------------------------------------------------------------------------------------

SEARCH_PARAMETERS = {
    "date": "When it was recorded (prefixes eq, ge, gt, le, lt).",
    "agent": "The client id of the EMR that acted.",
    "entity": "The resource it was about (Type/id).",
    "action": "C, R, U, D or E.",
    "outcome": "0, 4, 8 or 12.",
}
"""What ``GET AuditEvent`` searches by (for the CapabilityStatement, with ``_count``)."""
_CONTROL = {"_count", "_cursor", "_format", "_pretty"}
_DATE_PREFIXES = ("eq", "ge", "gt", "le", "lt")


@dataclass
class AuditSearch:
    criteria: list[tuple[str, str]] = field(default_factory=list)
    """The parameters as given (for paging links)."""
    conditions: list[sql.Composable] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    count: int = 50
    cursor: tuple[dt.datetime, UUID] | None = None


def parse_search(items: Sequence[tuple[str, str]]) -> AuditSearch:
    """A search of the audit trail; ``SearchError`` for anything it cannot do exactly."""
    search = AuditSearch()
    for name, value in items:
        if name == "_count":
            if not is_number(value) or not 1 <= int(value) <= MAX_COUNT:
                raise SearchError(f"_count must be a whole number from 1 to {MAX_COUNT}")
            search.count = int(value)
            continue
        if name == "_cursor":
            search.cursor = _decode_cursor(value)
            continue
        if name in _CONTROL:
            continue
        if name not in SEARCH_PARAMETERS:
            raise SearchError(
                f"unknown parameter {name!r} for AuditEvent (supported: "
                f"{', '.join([*SEARCH_PARAMETERS, '_count'])})"
            )
        if not value or len(value) > 2000 or not value.isprintable():
            raise SearchError(f"{name}: a value of 1 to 2000 printable characters")
        search.criteria.append((name, value))
        alternatives = [_condition(name, v, search.values) for v in value.split(",")]
        search.conditions.append(
            sql.SQL("({})").format(sql.SQL(" OR ").join(alternatives))
            if len(alternatives) > 1
            else alternatives[0]
        )
    return search


def _condition(name: str, value: str, values: list[Any]) -> sql.Composable:
    if name == "date":
        prefix, rest = (value[:2], value[2:]) if value[:2] in _DATE_PREFIXES else ("eq", value)
        if value[:2].isalpha() and value[:2] not in _DATE_PREFIXES:
            raise SearchError(f"date: prefix {value[:2]!r} is not supported (eq ge gt le lt)")
        start, end = date_range(rest)
        if prefix == "eq":
            values.extend([start, end])
            return sql.SQL("(recorded_at >= %s AND recorded_at < %s)")
        bound = {"ge": start, "gt": end, "le": end, "lt": start}[prefix]
        values.append(bound)
        return sql.SQL("recorded_at >= %s" if prefix in ("ge", "gt") else "recorded_at < %s")
    if name == "agent":
        values.append(value)
        return sql.SQL("client_id = %s")
    if name == "entity":
        match = _REFERENCE.search(value)
        if match is None:
            raise SearchError(f"entity: {value!r} is not a reference Type/id")
        values.extend(match.groups())
        return sql.SQL("(resource_type = %s AND resource_id = %s)")
    if name == "action":
        if value not in ACTIONS:
            raise SearchError(f"action: {value!r} is not one of C R U D E")
        values.append(value)
        return sql.SQL("action = %s")
    if value not in {"0", "4", "8", "12"}:
        raise SearchError(f"outcome: {value!r} is not one of 0 4 8 12")
    values.append(int(value))
    return sql.SQL("outcome = %s")


def _decode_cursor(value: str) -> tuple[dt.datetime, UUID]:
    try:
        return paging.decode_cursor(value)
    except paging.InvalidCursorError:
        raise SearchError("_cursor is not one this server gave") from None


_COLUMNS = (
    "id, recorded_at, organization_id, client_id, action, name, resource_type, resource_id, "
    "outcome, detail, client_address, trace_id"
)


def _recorded(row: Sequence[Any]) -> RecordedEntry:
    return RecordedEntry(row[0], row[1], AuditEntry(*row[2:12]))


async def one(conn: psycopg.AsyncConnection, org: UUID, event_id: UUID) -> RecordedEntry | None:
    cursor = await conn.execute(
        sql.SQL("SELECT {} FROM audit_events WHERE organization_id = %s AND id = %s").format(
            sql.SQL(_COLUMNS)
        ),
        [org, event_id],
    )
    row = await cursor.fetchone()
    return _recorded(row) if row else None


async def find(
    conn: psycopg.AsyncConnection, org: UUID, search: AuditSearch
) -> tuple[list[RecordedEntry], str | None]:
    """A page of the organisation's events, newest first, and the next page's cursor."""
    conditions = [sql.SQL("organization_id = %s"), *search.conditions]
    values: list[Any] = [org, *search.values]
    if search.cursor is not None:
        conditions.append(sql.SQL("(recorded_at, id) < (%s, %s)"))
        values.extend(search.cursor)
    query = sql.SQL(
        "SELECT {} FROM audit_events WHERE {} ORDER BY recorded_at DESC, id DESC LIMIT %s"
    ).format(sql.SQL(_COLUMNS), sql.SQL(" AND ").join(conditions))
    cursor = await conn.execute(query, [*values, search.count + 1])
    rows = await cursor.fetchall()
    found = [_recorded(row) for row in rows[: search.count]]
    following = (
        paging.encode_cursor(found[-1].recorded_at, found[-1].id)
        if len(rows) > search.count
        else None
    )
    return found, following
