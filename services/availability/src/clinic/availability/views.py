"""How the calendars show an appointment: rendered to JSON by PostgreSQL when it changes,
and stored beside its row (``appointments.view``, with the resources it holds in
``appointments.held_by``), so a calendar is read, not built.

A location's day holds hundreds of appointments; building each one's JSON per request (in
Python or in SQL) was most of the view's time. The rendering happens in the same transaction
as the change, from the same tables, so the stored view is never behind its row:

- an appointment whose row or participants changed is rendered again at the end of the batch;
- one whose type was renamed, whose location's time zone changed or one of whose
  participants was renamed (or became known: reference data and appointments arrive on
  different topics, in any order) is rendered again with it;
- a rebuild renders every appointment as it writes it.

Names and zones come from the reference tables the free-time index is loaded from; a place
not known (yet) is shown in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import psycopg

from clinic.availability.projection import Op, Upsert

VIEW = """json_build_object(
    'id', a.appointment_id, 'status', a.status,
    'appointment_type', json_build_object('id', a.appointment_type_id, 'name', t.name),
    'location_id', a.location_id, 'patient_id', a.patient_id,
    'start', iso_utc(a.start_at), 'end', iso_utc(a.end_at),
    'local_start', iso_local(a.start_at, COALESCE(l.time_zone, 'UTC')),
    'local_end', iso_local(a.end_at, COALESCE(l.time_zone, 'UTC')),
    'hold_expires_at', iso_utc(a.hold_expires_at),
    'cancellation', CASE WHEN a.cancelled_at IS NOT NULL THEN json_build_object(
        'by', a.cancelled_by, 'reason', a.cancel_reason, 'at', iso_utc(a.cancelled_at)) END,
    'participants', COALESCE(h.participants, '[]'),
    'version', a.version)::text"""
"""One appointment (``a``) as the calendars show it, with its type (``t``), location (``l``)
and participants (``h``)."""

PARTICIPANTS = """SELECT p.appointment_id, json_agg(json_build_object(
        'resource_id', p.resource_id, 'name', n.name, 'role', p.role,
        'kind', p.resource_kind, 'start', iso_utc(p.start_at), 'end', iso_utc(p.end_at))
        ORDER BY p.start_at, p.role) AS participants,
        array_agg(DISTINCT p.resource_id) AS held_by
    FROM appointment_resources p LEFT JOIN resources n ON n.resource_id = p.resource_id"""


def _shown(rows: str, columns: Sequence[str] = ("appointment_id",)) -> str:
    """Appointment ``rows`` (as ``a``: these ``columns``) with their views."""
    chosen = ", ".join(f"a.{c}" for c in columns)
    return f"""SELECT {chosen}, {VIEW} AS view, COALESCE(h.held_by, '{{}}') AS held_by
    FROM {rows} a
    LEFT JOIN ({PARTICIPANTS} WHERE p.appointment_id IN (SELECT appointment_id FROM {rows} x)
               GROUP BY p.appointment_id) h ON h.appointment_id = a.appointment_id
    LEFT JOIN appointment_types t ON t.appointment_type_id = a.appointment_type_id
    LEFT JOIN locations l ON l.location_id = a.location_id"""


RENDER = f"""UPDATE appointments u SET view = r.view, held_by = r.held_by
FROM ({_shown("(SELECT * FROM appointments WHERE appointment_id IN (SELECT * FROM chosen))")}) r
WHERE u.appointment_id = r.appointment_id"""
"""Render again the appointments whose ids the ``chosen`` CTE gives."""

CHOSEN = {
    "appointments": "SELECT unnest(%s::uuid[]) AS appointment_id",
    "types": "SELECT appointment_id FROM appointments WHERE appointment_type_id = ANY(%s)",
    "locations": "SELECT appointment_id FROM appointments WHERE location_id = ANY(%s)",
    "resources": "SELECT appointment_id FROM appointment_resources WHERE resource_id = ANY(%s)",
}

DDL = [
    # The same text as Python's isoformat: the UTC instant with a Z, and the wall time in a
    # zone with its offset.
    """CREATE OR REPLACE FUNCTION iso_utc(t timestamptz) RETURNS text
        LANGUAGE sql STABLE PARALLEL SAFE RETURN
        to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc('second', t) = t THEN ''
                ELSE to_char(t AT TIME ZONE 'UTC', '.US') END || 'Z'""",
    """CREATE OR REPLACE FUNCTION iso_local(t timestamptz, zone text) RETURNS text
        LANGUAGE sql STABLE PARALLEL SAFE RETURN
        to_char(t AT TIME ZONE zone, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc('second', t) = t THEN ''
                ELSE to_char(t AT TIME ZONE zone, '.US') END
        || CASE WHEN t AT TIME ZONE zone < t AT TIME ZONE 'UTC'
                THEN '-' || to_char(t AT TIME ZONE 'UTC' - t AT TIME ZONE zone, 'HH24:MI')
                ELSE '+' || to_char(t AT TIME ZONE zone - t AT TIME ZONE 'UTC', 'HH24:MI') END""",
    "ALTER TABLE appointments ADD COLUMN IF NOT EXISTS view text",
    "ALTER TABLE appointments ADD COLUMN IF NOT EXISTS held_by uuid[]",
    # Appointments written before views were stored (a no-op once every one has its view).
    f"""WITH chosen AS (SELECT appointment_id FROM appointments
        WHERE view IS NULL OR held_by IS NULL)
    {RENDER}""",
]

# What a reference row shows in the views: when it changes, the views showing it do too.
SHOWN = {
    "appointment_types": ("types", "appointment_type_id", "name"),
    "locations": ("locations", "location_id", "time_zone"),
    "resources": ("resources", "resource_id", "name"),
}


async def render(conn: psycopg.AsyncConnection, by: str, ids: Sequence[UUID]) -> None:
    """Render again the appointments chosen by ``by`` (appointments, types, locations or
    resources) among ``ids``."""
    if ids:
        await conn.execute(f"WITH chosen AS ({CHOSEN[by]}) {RENDER}", [list(ids)])


@dataclass
class Stale:
    """The views one batch of operations makes stale, rendered again once at its end."""

    ids: dict[str, set[UUID]] = field(default_factory=lambda: {by: set[UUID]() for by in CHOSEN})

    async def note(self, conn: psycopg.AsyncConnection, ops: Iterable[Op]) -> None:
        """Note what ``ops`` will change; call before applying them (a reference row is
        compared with what it was)."""
        for op in ops:
            if op.table in ("appointments", "appointment_resources"):
                self.ids["appointments"].add(
                    op.row["appointment_id"] if isinstance(op, Upsert) else op.prefix[0]
                )
            elif op.table in SHOWN and isinstance(op, Upsert):
                by, column, shown = SHOWN[op.table]
                found = await conn.execute(
                    f"SELECT {shown} FROM {op.table} WHERE {column} = %s", [op.row[column]]
                )
                before = await found.fetchone()
                if before is None or before[0] != op.row[shown]:
                    self.ids[by].add(op.row[column])

    async def render(self, conn: psycopg.AsyncConnection) -> None:
        for by, ids in self.ids.items():
            await render(conn, by, sorted(ids))
            ids.clear()


STAGED = "appointments_staged"


async def stage(conn: psycopg.AsyncConnection) -> str:
    """A table for a rebuild to copy appointments into: ``insert_staged`` moves them to
    ``appointments`` with their views (one write per row; rendering them after a plain
    copy would write every row twice)."""
    await conn.execute(f"CREATE TEMP TABLE {STAGED} (LIKE appointments) ON COMMIT DROP")
    return STAGED


async def insert_staged(conn: psycopg.AsyncConnection, columns: Sequence[str]) -> None:
    names = ", ".join([*columns, "view", "held_by"])
    await conn.execute(f"INSERT INTO appointments ({names}) {_shown(STAGED, columns)}")
    await conn.execute(f"DROP TABLE {STAGED}")
