"""HL7 SIU messages waiting for their EMR: written in the consumer's transaction, so each of
booking's facts becomes its messages exactly once (the consumer applies each event once),
one per EMR endpoint of the organisation.

Each message gets its control id (MSH-10) when it is written (``CB`` and a sequence number,
unique in the bridge's database) and keeps it, with its whole text, across every retry: an
EMR that saw it before recognises the retry. Messages of one appointment (or one blocked
time) are sent in the order they were written; a message the EMR rejects (AE/AR) is
*parked*, and the later messages of the same appointment wait behind it until ops replay or
skip it (``hl7-messages`` in the admin API), so an EMR never receives a cancellation for a
booking it refused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from clinic.emr_bridge import siu
from clinic.events import Envelope
from clinic.events import appointments as appt
from clinic.events import schedules as sch

DDL = [
    """CREATE TABLE IF NOT EXISTS emr_endpoints (
        endpoint_id uuid PRIMARY KEY, organization_id uuid NOT NULL, name text NOT NULL,
        host text NOT NULL, port integer NOT NULL, sending_facility text NOT NULL,
        receiving_application text NOT NULL, receiving_facility text NOT NULL,
        allowed_addresses text[] NOT NULL DEFAULT '{}', active boolean NOT NULL,
        created_at timestamptz NOT NULL, UNIQUE (organization_id, name))""",
    "CREATE SEQUENCE IF NOT EXISTS hl7_control_ids",
    """CREATE TABLE IF NOT EXISTS hl7_outbox (
        seq bigint PRIMARY KEY, control_id text NOT NULL UNIQUE, endpoint_id uuid NOT NULL,
        organization_id uuid NOT NULL, order_key text NOT NULL, trigger text NOT NULL,
        source text NOT NULL, body text NOT NULL, status text NOT NULL,
        attempts integer NOT NULL DEFAULT 0, next_attempt_at timestamptz NOT NULL,
        last_error text, ack_code text, created_at timestamptz NOT NULL,
        acked_at timestamptz, UNIQUE (endpoint_id, source, trigger))""",
    """CREATE INDEX IF NOT EXISTS hl7_outbox_waiting ON hl7_outbox (endpoint_id, seq)
        WHERE status IN ('pending', 'parked')""",
    "CREATE INDEX IF NOT EXISTS hl7_outbox_by_key ON hl7_outbox (endpoint_id, order_key, seq)",
    "ALTER TABLE hl7_outbox ADD COLUMN IF NOT EXISTS visit jsonb",
    "ALTER TABLE hl7_outbox ALTER COLUMN body DROP NOT NULL",
]
FACTS_WAIT = dt.timedelta(minutes=5)
"""How long an appointment's message waits for its patient and clinic to reach the projection
(they travel on other topics, which may be read later) before it goes without them."""


@dataclass(frozen=True)
class EndpointRow:
    endpoint_id: UUID
    organization_id: UUID
    name: str
    host: str
    port: int
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    allowed_addresses: list[str]
    active: bool

    @property
    def names(self) -> siu.Endpoint:
        return siu.Endpoint(
            self.sending_facility, self.receiving_application, self.receiving_facility
        )


ENDPOINT_COLUMNS = (
    "endpoint_id, organization_id, name, host, port, sending_facility,"
    " receiving_application, receiving_facility, allowed_addresses, active"
)


async def endpoints(
    conn: psycopg.AsyncConnection, org: UUID | None = None, active_only: bool = True
) -> list[EndpointRow]:
    cursor = await conn.execute(
        f"SELECT {ENDPOINT_COLUMNS} FROM emr_endpoints WHERE (%s::uuid IS NULL OR"
        " organization_id = %s) AND (active OR NOT %s) ORDER BY organization_id, name",
        [org, org, active_only],
    )
    return [EndpointRow(*row) for row in await cursor.fetchall()]


async def active_endpoint(conn: psycopg.AsyncConnection, endpoint_id: UUID) -> EndpointRow | None:
    """The endpoint as it stands now, if it is still active."""
    cursor = await conn.execute(
        f"SELECT {ENDPOINT_COLUMNS} FROM emr_endpoints WHERE endpoint_id = %s AND active",
        [endpoint_id],
    )
    row = await cursor.fetchone()
    return EndpointRow(*row) if row is not None else None


async def _insert(
    conn: psycopg.AsyncConnection,
    endpoint: EndpointRow,
    order_key: str,
    trigger: str,
    source: str,
    write: Any,
    now: dt.datetime,
) -> None:
    cursor = await conn.execute("SELECT nextval('hl7_control_ids')")
    found = await cursor.fetchone()
    assert found is not None
    seq = int(found[0])
    control_id = f"CB{seq:012d}"
    body, visit = (write(control_id), None) if callable(write) else (None, Jsonb(write))
    await conn.execute(
        """INSERT INTO hl7_outbox (seq, control_id, endpoint_id, organization_id, order_key,
            trigger, source, body, visit, status, next_attempt_at, created_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s)
        ON CONFLICT (endpoint_id, source, trigger) DO NOTHING""",
        [
            seq,
            control_id,
            endpoint.endpoint_id,
            endpoint.organization_id,
            order_key,
            trigger,
            source,
            body,
            visit,
            now,
            now,
        ],
    )


async def enqueue(conn: psycopg.AsyncConnection, envelope: Envelope, now: dt.datetime) -> int:
    """Write the SIU messages ``envelope`` makes, after the projection applied it (its rows
    say what the message tells). Returns how many."""
    payload = envelope.typed_payload()
    if not isinstance(
        payload, (appt._AppointmentEvent, sch.ScheduleExceptionAdded, sch.ScheduleExceptionRemoved)
    ):
        return 0
    targets = await endpoints(conn, envelope.organization_id)
    if not targets:
        return 0
    source = f"{envelope.aggregate_id}/{envelope.aggregate_version}"
    written = 0
    if isinstance(payload, appt._AppointmentEvent):
        key = str(payload.appointment_id)
        visit: dict[str, Any] | None = None
        for endpoint in targets:
            cursor = await conn.execute(
                "SELECT 1 FROM hl7_outbox WHERE endpoint_id = %s AND order_key = %s"
                " AND trigger = 'S12' AND status <> 'skipped'",
                [endpoint.endpoint_id, key],
            )
            announced = await cursor.fetchone() is not None
            trigger = siu.trigger_of(envelope.type, payload.model_dump(mode="json"), announced)
            if trigger is None:
                continue
            visit = visit or await _snapshot(conn, payload, envelope.occurred_at)
            if visit is None:
                continue
            await _insert(conn, endpoint, key, trigger, source, visit, now)
            written += 1
        return written
    return await _blocked(conn, envelope, payload, targets, source, now)


async def _blocked(
    conn: psycopg.AsyncConnection,
    envelope: Envelope,
    payload: sch.ScheduleExceptionAdded | sch.ScheduleExceptionRemoved,
    targets: list[EndpointRow],
    source: str,
    now: dt.datetime,
) -> int:
    cursor = await conn.cursor(row_factory=dict_row).execute(
        "SELECT e.kind, e.start_at, e.end_at, r.category, r.data FROM exceptions e"
        " JOIN resources r ON r.resource_id = e.resource_id WHERE e.exception_id = %s",
        [payload.exception_id],
    )
    row = await cursor.fetchone()
    if row is None or row["kind"] not in siu.BLOCKING:
        return 0
    trigger = "S23" if isinstance(payload, sch.ScheduleExceptionAdded) else "S24"
    data = row["data"]
    resource = siu.Resource(
        str(payload.resource_id), row["category"], data["name"], data.get("kind", "")
    )
    zone = data.get("time_zone") or "UTC"
    for endpoint in targets:

        def write(control: str, ep: EndpointRow = endpoint) -> str:
            return siu.blocked_message(
                ep.names,
                trigger,
                control,
                envelope.occurred_at,
                str(payload.exception_id),
                row["kind"],
                row["start_at"],
                row["end_at"],
                zone,
                resource,
            )

        await _insert(conn, endpoint, str(payload.exception_id), trigger, source, write, now)
    return len(targets)


async def _snapshot(
    conn: psycopg.AsyncConnection, payload: appt._AppointmentEvent, at: dt.datetime
) -> dict[str, Any] | None:
    """The appointment as this event left it (its row, applied just before): what the
    message tells of it. The patient's and the clinic's details are read when the message is
    first sent (``render``): they travel on other topics and may arrive later."""
    cursor = await conn.cursor(row_factory=dict_row).execute(
        "SELECT * FROM appointments WHERE appointment_id = %s", [payload.appointment_id]
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return {
        "appointment_id": str(payload.appointment_id),
        "status": row["status"],
        "start": row["start_at"].isoformat(),
        "end": row["end_at"].isoformat(),
        "type_id": str(row["appointment_type_id"]),
        "location_id": str(row["location_id"]),
        "patient_id": str(row["patient_id"]),
        "participants": row["participants"],
        "reason": payload.reason if isinstance(payload, appt.AppointmentCancelled) else "",
        "at": at.isoformat(),
    }


async def render(
    conn: psycopg.AsyncConnection,
    endpoint: EndpointRow,
    trigger: str,
    control_id: str,
    visit: dict[str, Any],
    waited: bool,
) -> str | None:
    """The message's text, from the appointment as its event left it and the details of its
    patient, clinic, type and resources as known now; None while the patient or the clinic is
    not known yet (unless ``waited`` long enough: then it goes without them)."""
    cursor = await conn.cursor(row_factory=dict_row).execute(
        """SELECT (SELECT data FROM appointment_types WHERE appointment_type_id = %s) AS kind,
            (SELECT data FROM locations WHERE location_id = %s) AS place,
            (SELECT record FROM patients WHERE patient_id = %s) AS record""",
        [UUID(visit["type_id"]), UUID(visit["location_id"]), UUID(visit["patient_id"])],
    )
    facts = await cursor.fetchone()
    assert facts is not None
    if (facts["record"] is None or facts["place"] is None) and not waited:
        return None
    participants = visit["participants"]
    names = await conn.execute(
        "SELECT resource_id, category, data->>'name' FROM resources WHERE resource_id = ANY(%s)",
        [[UUID(p["resource_id"]) for p in participants]],
    )
    known = {str(r): (c, n) for r, c, n in await names.fetchall()}
    resources = tuple(
        siu.Resource(
            p["resource_id"],
            known.get(p["resource_id"], (p["kind"], ""))[0],
            known.get(p["resource_id"], ("", p["resource_id"]))[1],
            p["role"],
        )
        for p in participants
    )
    record = facts["record"]
    patient = None
    if record is not None:
        patient = siu.Person(
            visit["patient_id"],
            record["given_name"],
            record["family_name"],
            dt.date.fromisoformat(record["birth_date"]),
            record["gender"],
            siu.identifiers(record.get("identifiers", ())),
        )
    place = facts["place"] or {}
    message = siu.Visit(
        visit["appointment_id"],
        visit["status"],
        dt.datetime.fromisoformat(visit["start"]),
        dt.datetime.fromisoformat(visit["end"]),
        visit["type_id"],
        (facts["kind"] or {}).get("name", ""),
        visit["location_id"],
        place.get("name", ""),
        place.get("time_zone", "UTC"),
        patient,
        resources,
        visit["reason"],
    )
    at = dt.datetime.fromisoformat(visit["at"])
    return siu.appointment_message(endpoint.names, trigger, control_id, at, message)
