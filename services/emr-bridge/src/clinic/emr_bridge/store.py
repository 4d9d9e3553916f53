"""The bridge's PostgreSQL tables: booking's facts (``projection``), and every version of
every FHIR resource written from them (``fhir_resources`` holds the current one with the
columns search reads, ``fhir_history`` every one).

``write`` applies one event: its row operations, then a new version of each resource it
changed, written by the same pure functions the property tests run over memory
(``resources``), from the rows it needs, loaded by key (``snapshot``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from clinic.emr_bridge.projection import COLUMNS, SCHEMA, Tables, plan
from clinic.emr_bridge.resources import Ref, Snapshot, Version, affected, revision
from clinic.emr_bridge.terms import terms
from clinic.events import Envelope
from clinic.events import reference as refs
from clinic.events import resource_days as days
from clinic.platform import rows
from clinic.platform.rows import Op

DDL = [
    """CREATE TABLE IF NOT EXISTS organizations (
        organization_id uuid PRIMARY KEY, data jsonb NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS locations (
        location_id uuid PRIMARY KEY, organization_id uuid NOT NULL, data jsonb NOT NULL,
        retired boolean NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS resources (
        resource_id uuid PRIMARY KEY, organization_id uuid NOT NULL, category text NOT NULL,
        data jsonb NOT NULL, retired boolean NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS appointment_types (
        appointment_type_id uuid PRIMARY KEY, organization_id uuid NOT NULL,
        data jsonb NOT NULL, retired boolean NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS hours (
        resource_id uuid PRIMARY KEY, organization_id uuid NOT NULL, hours jsonb NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS exceptions (
        exception_id uuid PRIMARY KEY, resource_id uuid NOT NULL, organization_id uuid NOT NULL,
        kind text NOT NULL, start_at timestamptz NOT NULL, end_at timestamptz NOT NULL,
        location_id uuid, removed boolean NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS patients (
        patient_id uuid PRIMARY KEY, organization_id uuid NOT NULL, record jsonb NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS appointments (
        appointment_id uuid PRIMARY KEY, organization_id uuid NOT NULL, patient_id uuid NOT NULL,
        location_id uuid NOT NULL, appointment_type_id uuid NOT NULL, status text NOT NULL,
        start_at timestamptz NOT NULL, end_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL, hold_expires_at timestamptz,
        participants jsonb NOT NULL, cancel_reason text, attendance_confirmed boolean NOT NULL,
        version integer NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS appointments_by_type ON appointments (appointment_type_id)",
    """CREATE TABLE IF NOT EXISTS claims (
        resource_id uuid NOT NULL, local_date date NOT NULL, appointment_id uuid NOT NULL,
        organization_id uuid NOT NULL, slot_id text NOT NULL, start_at timestamptz NOT NULL,
        end_at timestamptz NOT NULL, seats integer NOT NULL, capacity integer NOT NULL,
        overbooked boolean NOT NULL, held boolean NOT NULL, released boolean NOT NULL,
        PRIMARY KEY (resource_id, local_date, appointment_id))""",
    "CREATE INDEX IF NOT EXISTS claims_by_slot ON claims (slot_id)",
    """CREATE TABLE IF NOT EXISTS fhir_resources (
        resource_type text NOT NULL, id text NOT NULL, organization_id uuid NOT NULL,
        version integer NOT NULL, last_updated timestamptz NOT NULL, body jsonb,
        start_at timestamptz, end_at timestamptz, status text,
        refs text[] NOT NULL DEFAULT '{}', tokens text[] NOT NULL DEFAULT '{}',
        names text[] NOT NULL DEFAULT '{}', birthdate date,
        PRIMARY KEY (resource_type, id))""",
    """CREATE INDEX IF NOT EXISTS fhir_resources_by_time
        ON fhir_resources (organization_id, resource_type, start_at, id)""",
    """CREATE INDEX IF NOT EXISTS fhir_resources_by_update
        ON fhir_resources (organization_id, resource_type, last_updated, id)""",
    "CREATE INDEX IF NOT EXISTS fhir_resources_refs ON fhir_resources USING gin (refs)",
    "CREATE INDEX IF NOT EXISTS fhir_resources_tokens ON fhir_resources USING gin (tokens)",
    "CREATE INDEX IF NOT EXISTS fhir_resources_names ON fhir_resources USING gin (names)",
    """CREATE TABLE IF NOT EXISTS fhir_history (
        resource_type text NOT NULL, id text NOT NULL, version integer NOT NULL,
        organization_id uuid NOT NULL, last_updated timestamptz NOT NULL, body jsonb,
        PRIMARY KEY (resource_type, id, version))""",
    """CREATE INDEX IF NOT EXISTS fhir_history_by_update
        ON fhir_history (organization_id, last_updated)""",
]

LOADS: dict[str, tuple[tuple[str, str], ...]] = {
    "Organization": (("organizations", "organization_id"),),
    "HealthcareService": (("appointment_types", "appointment_type_id"),),
    "Patient": (("patients", "patient_id"),),
    "Appointment": (("appointments", "appointment_id"),),
    "Location": (("locations", "location_id"), ("resources", "resource_id")),
    "Practitioner": (("resources", "resource_id"),),
    "PractitionerRole": (("resources", "resource_id"),),
    "Device": (("resources", "resource_id"),),
    "Schedule": (("resources", "resource_id"), ("hours", "resource_id")),
    "Slot": (("exceptions", "exception_id"), ("claims", "slot_id")),
}
"""The rows each kind of resource is written from, by the column its id is in."""


async def apply_ops(conn: psycopg.AsyncConnection, ops: Iterable[Op]) -> None:
    await rows.apply_ops(conn, SCHEMA, ops)


async def _load(
    conn: psycopg.AsyncConnection, state: Snapshot, table: str, column: str, values: set[Any]
) -> list[dict[str, Any]]:
    if not values:
        return []
    columns = COLUMNS[table]
    query = sql.SQL("SELECT {} FROM {} WHERE {} = ANY(%s)").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.Identifier(table),
        sql.Identifier(column),
    )
    cursor = await conn.execute(query, [list(values)])
    loaded = [dict(zip(columns, record, strict=True)) for record in await cursor.fetchall()]
    keys = SCHEMA.keys[table]
    for row in loaded:
        state.add(table, tuple(row[k] for k in keys), row)
    return loaded


def _ids(references: Iterable[Ref], column: str) -> set[Any]:
    if column == "slot_id":
        return {rid for _, rid in references}
    found: set[Any] = set()
    for _, rid in references:
        try:
            found.add(UUID(rid))
        except ValueError:
            continue
    return found


async def snapshot(conn: psycopg.AsyncConnection, references: Iterable[Ref]) -> Snapshot:
    """The rows ``references`` are written from (an appointment's with its type's)."""
    state = Snapshot()
    wanted: dict[tuple[str, str], list[Ref]] = {}
    for reference in references:
        for load in LOADS.get(reference[0], ()):
            wanted.setdefault(load, []).append(reference)
    for (table, column), group in wanted.items():
        loaded = await _load(conn, state, table, column, _ids(group, column))
        if table == "appointments":
            types = {r["appointment_type_id"] for r in loaded}
            await _load(conn, state, "appointment_types", "appointment_type_id", types)
    return state


async def _affected(conn: psycopg.AsyncConnection, envelope: Envelope) -> list[Ref]:
    """``resources.affected``, with the rows it reads loaded first."""
    payload = envelope.typed_payload()
    state = Snapshot()
    if isinstance(payload, (refs.AppointmentTypeDefined, refs.AppointmentTypeRetired)):
        await _load(
            conn, state, "appointments", "appointment_type_id", {payload.appointment_type_id}
        )
    if isinstance(payload, days._ResourceDayEvent):
        cursor = await conn.execute(
            "SELECT slot_id FROM claims WHERE resource_id = %s AND local_date = %s"
            " AND appointment_id = %s",
            [payload.resource_id, payload.local_date, payload.appointment_id],
        )
        found = await cursor.fetchone()
        key = (payload.resource_id, payload.local_date, payload.appointment_id)
        if found:
            state.add("claims", key, {"slot_id": found[0]})
    return affected(envelope, state)


async def current(conn: psycopg.AsyncConnection, references: list[Ref]) -> dict[Ref, Version]:
    if not references:
        return {}
    cursor = await conn.execute(
        "SELECT resource_type, id, organization_id, version, last_updated, body"
        " FROM fhir_resources WHERE (resource_type, id) IN (SELECT * FROM unnest(%s::text[],"
        " %s::text[]))",
        [[t for t, _ in references], [i for _, i in references]],
    )
    return {(r[0], r[1]): Version(*r) for r in await cursor.fetchall()}


async def save(conn: psycopg.AsyncConnection, version: Version) -> None:
    body = version.body
    found = (
        terms(body)
        if body is not None
        else {
            "start_at": None,
            "end_at": None,
            "status": None,
            "refs": [],
            "tokens": [],
            "names": [],
            "birthdate": None,
        }
    )
    stored = Jsonb(body) if body is not None else None
    await conn.execute(
        """INSERT INTO fhir_resources (resource_type, id, organization_id, version, last_updated,
            body, start_at, end_at, status, refs, tokens, names, birthdate)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (resource_type, id) DO UPDATE SET organization_id = EXCLUDED.organization_id,
            version = EXCLUDED.version, last_updated = EXCLUDED.last_updated,
            body = EXCLUDED.body, start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at,
            status = EXCLUDED.status, refs = EXCLUDED.refs, tokens = EXCLUDED.tokens,
            names = EXCLUDED.names, birthdate = EXCLUDED.birthdate""",
        [
            version.resource_type,
            version.id,
            version.organization_id,
            version.version,
            version.last_updated,
            stored,
            found["start_at"],
            found["end_at"],
            found["status"],
            found["refs"],
            found["tokens"],
            found["names"],
            found["birthdate"],
        ],
    )
    await conn.execute(
        """INSERT INTO fhir_history (resource_type, id, version, organization_id, last_updated,
            body) VALUES (%s, %s, %s, %s, %s, %s)""",
        [
            version.resource_type,
            version.id,
            version.version,
            version.organization_id,
            version.last_updated,
            stored,
        ],
    )


async def write(conn: psycopg.AsyncConnection, envelope: Envelope) -> list[Version]:
    """Apply one event in the caller's transaction: its rows, then the new versions of the
    resources it changed (returned)."""
    await apply_ops(conn, plan(envelope))
    references = await _affected(conn, envelope)
    state = await snapshot(conn, references)
    stored = await current(conn, references)
    written: list[Version] = []
    for reference in references:
        version = revision(reference, state, stored.get(reference), envelope.occurred_at)
        if version is not None:
            await save(conn, version)
            stored[reference] = version
            written.append(version)
    return written


async def load(conn: psycopg.AsyncConnection) -> Tables:
    """Every table of facts, in memory."""
    tables = Tables()
    await rows.load_into(conn, SCHEMA, tables)
    return tables


async def resources_now(conn: psycopg.AsyncConnection) -> dict[Ref, dict[str, Any] | None]:
    """Every resource's current content (without meta), for checks against a replay."""
    cursor = await conn.execute("SELECT resource_type, id, body FROM fhir_resources")
    return {
        (t, i): ({k: v for k, v in body.items() if k != "meta"} if body else None)
        for t, i, body in await cursor.fetchall()
    }
