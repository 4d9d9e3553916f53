"""The projection's PostgreSQL tables: applying operations, loading them back into memory,
and writing a rebuilt projection in bulk."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from clinic.availability import views
from clinic.availability.projection import TABLES, Change, Tables
from clinic.platform import rows
from clinic.platform.rows import Op, RowSchema, Upsert

COLUMNS: dict[str, tuple[str, ...]] = {
    "locations": ("location_id", "organization_id", "name", "time_zone", "retired", "address"),
    "resources": (
        "resource_id",
        "organization_id",
        "category",
        "name",
        "kind",
        "specialties",
        "location_ids",
        "time_zone",
        "retired",
        "languages",
    ),
    "appointment_types": (
        "appointment_type_id",
        "organization_id",
        "name",
        "definition",
        "retired",
    ),
    "weekly_hours": ("resource_id", "hours"),
    "schedule_exceptions": (
        "resource_id",
        "exception_id",
        "kind",
        "starts_at",
        "ends_at",
        "location_id",
    ),
    "claims": (
        "resource_id",
        "local_date",
        "appointment_id",
        "role",
        "starts_at",
        "ends_at",
        "blocked_from",
        "blocked_until",
        "seats",
        "session",
        "capacity",
        "hold_expires_at",
    ),
}
CALENDAR_COLUMNS: dict[str, tuple[str, ...]] = {
    "appointments": (
        "appointment_id",
        "organization_id",
        "location_id",
        "appointment_type_id",
        "patient_id",
        "status",
        "start_at",
        "end_at",
        "hold_expires_at",
        "booked_at",
        "cancelled_at",
        "cancelled_by",
        "cancel_reason",
        "version",
        "attendance_confirmed_at",
    ),
    "appointment_resources": (
        "appointment_id",
        "role",
        "organization_id",
        "resource_id",
        "resource_kind",
        "start_at",
        "end_at",
    ),
    "appointment_events": (
        "appointment_id",
        "version",
        "organization_id",
        "event_type",
        "occurred_at",
        "actor_role",
        "status",
        "correlation_id",
    ),
}
"""The calendars' tables: read with SQL, never loaded into the in-memory index."""
ALL_COLUMNS = {**COLUMNS, **CALENDAR_COLUMNS}
JSON_COLUMNS = frozenset({"definition", "hours", "address"})

DDL = [
    """CREATE TABLE IF NOT EXISTS locations (
        location_id uuid PRIMARY KEY, organization_id uuid NOT NULL, name text NOT NULL,
        time_zone text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS resources (
        resource_id uuid PRIMARY KEY, organization_id uuid NOT NULL, category text NOT NULL,
        name text NOT NULL, kind text NOT NULL, specialties text[] NOT NULL,
        location_ids uuid[] NOT NULL, time_zone text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS appointment_types (
        appointment_type_id uuid PRIMARY KEY, organization_id uuid NOT NULL, name text NOT NULL,
        definition jsonb NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS weekly_hours (
        resource_id uuid PRIMARY KEY, hours jsonb NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS schedule_exceptions (
        resource_id uuid NOT NULL, exception_id uuid NOT NULL, kind text NOT NULL,
        starts_at timestamptz NOT NULL, ends_at timestamptz NOT NULL, location_id uuid,
        PRIMARY KEY (resource_id, exception_id))""",
    """CREATE TABLE IF NOT EXISTS claims (
        resource_id uuid NOT NULL, local_date date NOT NULL, appointment_id uuid NOT NULL,
        role text NOT NULL, starts_at timestamptz NOT NULL, ends_at timestamptz NOT NULL,
        blocked_from timestamptz NOT NULL, blocked_until timestamptz NOT NULL,
        seats integer NOT NULL, session text, capacity integer NOT NULL,
        hold_expires_at timestamptz,
        PRIMARY KEY (resource_id, local_date, appointment_id, role))""",
    # Retired reference data stays (calendars name it) but is never offered again.
    "ALTER TABLE locations ADD COLUMN IF NOT EXISTS retired boolean NOT NULL DEFAULT false",
    "ALTER TABLE resources ADD COLUMN IF NOT EXISTS retired boolean NOT NULL DEFAULT false",
    # A provider's languages with patients (events before they were recorded carry none).
    "ALTER TABLE resources ADD COLUMN IF NOT EXISTS languages text[] NOT NULL DEFAULT '{}'",
    "ALTER TABLE appointment_types ADD COLUMN IF NOT EXISTS retired boolean NOT NULL DEFAULT false",
    # For the directory (rows projected before it read '{}' until a rebuild).
    "ALTER TABLE locations ADD COLUMN IF NOT EXISTS address jsonb NOT NULL DEFAULT '{}'",
    """CREATE TABLE IF NOT EXISTS appointments (
        appointment_id uuid PRIMARY KEY, organization_id uuid NOT NULL,
        location_id uuid NOT NULL, appointment_type_id uuid NOT NULL, patient_id uuid NOT NULL,
        status text NOT NULL, start_at timestamptz NOT NULL, end_at timestamptz NOT NULL,
        hold_expires_at timestamptz, booked_at timestamptz NOT NULL,
        cancelled_at timestamptz, cancelled_by text, cancel_reason text,
        version integer NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS appointments_by_location
        ON appointments (organization_id, location_id, start_at)""",
    """CREATE INDEX IF NOT EXISTS appointments_by_patient
        ON appointments (organization_id, patient_id, start_at, appointment_id)""",
    # When the patient confirmed they will come (null: not confirmed).
    "ALTER TABLE appointments ADD COLUMN IF NOT EXISTS attendance_confirmed_at timestamptz",
    """CREATE TABLE IF NOT EXISTS appointment_resources (
        appointment_id uuid NOT NULL, role text NOT NULL, organization_id uuid NOT NULL,
        resource_id uuid NOT NULL, resource_kind text NOT NULL,
        start_at timestamptz NOT NULL, end_at timestamptz NOT NULL,
        PRIMARY KEY (appointment_id, role))""",
    """CREATE INDEX IF NOT EXISTS appointment_resources_by_resource
        ON appointment_resources (resource_id, start_at)""",
    """CREATE TABLE IF NOT EXISTS appointment_events (
        appointment_id uuid NOT NULL, version integer NOT NULL, organization_id uuid NOT NULL,
        event_type text NOT NULL, occurred_at timestamptz NOT NULL, actor_role text,
        status text, correlation_id uuid, PRIMARY KEY (appointment_id, version))""",
    """CREATE INDEX IF NOT EXISTS appointment_events_by_time
        ON appointment_events (organization_id, occurred_at)""",
    "ALTER TABLE appointment_events ADD COLUMN IF NOT EXISTS correlation_id uuid",
    """CREATE TABLE IF NOT EXISTS search_sessions (
        organization_id uuid NOT NULL, session_id uuid NOT NULL,
        first_search_at timestamptz NOT NULL, PRIMARY KEY (organization_id, session_id))""",
    """CREATE TABLE IF NOT EXISTS index_changes (
        seq bigserial PRIMARY KEY, kind text NOT NULL, id uuid NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now())""",
    *views.DDL,
]


SCHEMA = RowSchema(TABLES, ALL_COLUMNS, JSON_COLUMNS)


async def apply_ops(conn: psycopg.AsyncConnection, ops: Iterable[Op]) -> None:
    await rows.apply_ops(conn, SCHEMA, ops)


async def record_changes(conn: psycopg.AsyncConnection, changes: Iterable[Change]) -> None:
    """Append to the change feed, in the caller's transaction. Readers follow the feed by
    ``seq``, so a change must never become visible after one with a higher ``seq`` (the
    reader would pass over it for good): writers (several consumers, when replicas share
    the partitions) take turns from here to their commit. Readers are not blocked."""
    unique = sorted({(c.kind, c.id) for c in changes}, key=str)
    if unique:
        await conn.execute("LOCK TABLE index_changes IN SHARE ROW EXCLUSIVE MODE")
        async with conn.cursor() as cursor:
            await cursor.executemany("INSERT INTO index_changes (kind, id) VALUES (%s, %s)", unique)


async def load(
    conn: psycopg.AsyncConnection,
    where: dict[str, tuple[str, Any]] | None = None,
    calendars: bool = False,
) -> Tables:
    """The free-time index's tables (optionally only rows whose ``column = value`` per
    table); the calendars' tables stay in PostgreSQL unless ``calendars`` (checks, tests)."""
    tables = Tables()
    for table, columns in (ALL_COLUMNS if calendars else COLUMNS).items():
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
        )
        params: list[Any] = []
        if where is not None:
            if table not in where:
                continue
            column, value = where[table]
            query += sql.SQL(" WHERE {} = ANY(%s)").format(sql.Identifier(column))
            params = [value]
        cursor = await conn.execute(query, params)
        for record in await cursor.fetchall():
            row = dict(zip(columns, record, strict=True))
            tables.apply([Upsert(table, row)])
    return tables


async def write_all(conn: psycopg.AsyncConnection, tables: Tables) -> None:
    """Replace every projection table's content with ``tables`` (COPY, for rebuilds)."""
    await conn.execute(
        sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, ALL_COLUMNS)))
    )
    for table, columns in ALL_COLUMNS.items():
        # Appointments go in with their views, once the rows those show are in.
        target = await views.stage(conn) if table == "appointments" else table
        copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(target), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        # psycopg formats rows in C: faster than building COPY text in Python.
        async with conn.cursor() as cursor, cursor.copy(copy) as writer:
            for row in tables.rows[table].values():
                await writer.write_row([SCHEMA.value(c, row.get(c)) for c in columns])
    await views.insert_staged(conn, ALL_COLUMNS["appointments"])


async def remember_search(database: Any, organization_id: Any, session_id: Any, at: Any) -> None:
    """The first search of a client's session (for the search-to-book KPI)."""
    async with database.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO search_sessions (organization_id, session_id, first_search_at) "
            "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (organization_id, session_id, at),
        )
