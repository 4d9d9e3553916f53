"""What is derived from an appointment's rows when it changes, by PostgreSQL, and stored
beside them: how the calendars show it (``appointments.view``, and the resources it holds in
``held_by``), so a calendar is read, not built; and the facts of its life the KPIs count
(``DERIVED``), so the KPIs are counted, not worked out from its events per query.

A location's day holds hundreds of appointments; building each one's JSON per request (in
Python or in SQL) was most of the view's time, as working out every appointment's life from
its events was most of a KPI query's. The derivation happens in the same transaction as the
change, from the same tables, so it is never behind its rows:

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

from clinic.platform.rows import Op, Upsert

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


def minutes(interval: str) -> str:
    """Minutes of an interval, as a double (as ``timedelta.total_seconds() / 60``)."""
    return f"extract(epoch FROM {interval})::float8 / 60"


FREEING = "c.status = 'cancelled' AND c.cancelled_at < c.start_at"
FREED_FROM = "greatest(p.start_at, c.cancelled_at)"
PARTICIPANTS = f"""SELECT p.appointment_id, json_agg(json_build_object(
        'resource_id', p.resource_id, 'name', n.name, 'role', p.role,
        'kind', p.resource_kind, 'start', iso_utc(p.start_at), 'end', iso_utc(p.end_at))
        ORDER BY p.start_at, p.role) AS participants,
        array_agg(DISTINCT p.resource_id) AS held_by,
        COALESCE(sum({minutes("p.end_at - p.start_at")})
            FILTER (WHERE p.resource_kind = 'provider'), 0) AS provider_minutes,
        COALESCE(sum({minutes(f"p.end_at - {FREED_FROM}")})
            FILTER (WHERE p.resource_kind = 'provider' AND {FREEING}
                    AND p.end_at > {FREED_FROM}), 0) AS freed_minutes
    FROM appointment_resources p LEFT JOIN resources n ON n.resource_id = p.resource_id"""
"""Participants (``p``) of appointments (``c``): the views' list, and the provider minutes
they hold and, once cancelled before the start, free (``kpis``' definitions)."""

LIFE = """SELECT e.appointment_id,
        (array_agg(e.occurred_at ORDER BY e.version)
            FILTER (WHERE e.event_type = 'Appointment.Held'))[1] AS held_at,
        (array_agg(e.occurred_at ORDER BY e.version)
            FILTER (WHERE e.event_type = 'Appointment.Booked'))[1] AS first_booked_at,
        (array_agg(e.correlation_id ORDER BY e.version)
            FILTER (WHERE e.event_type = 'Appointment.Booked'))[1] AS booking_correlation,
        COALESCE(max(e.version) FILTER (WHERE e.event_type = 'Appointment.Rescheduled')
            > min(e.version) FILTER (WHERE e.event_type = 'Appointment.Booked'), false)
            AS rescheduled
    FROM appointment_events e"""
"""The facts of an appointment's life: when it was first held and first booked (and by which
request), and whether it moved once booked."""

ZONE = "COALESCE(l.time_zone, 'UTC')"
DERIVED = {
    "view": "text",
    "held_by": "uuid[]",
    "local_date": "date",
    "held_at": "timestamptz",
    "held_local_date": "date",
    "first_booked_at": "timestamptz",
    "booking_correlation": "uuid",
    "rescheduled": "boolean",
    "provider_minutes": "float8",
    "freed_minutes": "float8",
}
"""The columns derived beside each appointment's row, and their types."""


def _shown(rows: str, columns: Sequence[str] = ("appointment_id",)) -> str:
    """Appointment ``rows`` (as ``a``: these ``columns``) with what is derived from them."""
    chosen = ", ".join(f"a.{c}" for c in columns)
    return f"""SELECT {chosen}, {VIEW} AS view, COALESCE(h.held_by, '{{}}') AS held_by,
        (a.start_at AT TIME ZONE {ZONE})::date AS local_date, f.held_at,
        (f.held_at AT TIME ZONE {ZONE})::date AS held_local_date, f.first_booked_at,
        f.booking_correlation, COALESCE(f.rescheduled, false) AS rescheduled,
        COALESCE(h.provider_minutes, 0) AS provider_minutes,
        COALESCE(h.freed_minutes, 0) AS freed_minutes
    FROM {rows} a
    LEFT JOIN ({PARTICIPANTS} JOIN {rows} c ON c.appointment_id = p.appointment_id
               GROUP BY p.appointment_id) h ON h.appointment_id = a.appointment_id
    LEFT JOIN ({LIFE} WHERE e.appointment_id IN (SELECT appointment_id FROM {rows} x)
               GROUP BY e.appointment_id) f ON f.appointment_id = a.appointment_id
    LEFT JOIN appointment_types t ON t.appointment_type_id = a.appointment_type_id
    LEFT JOIN locations l ON l.location_id = a.location_id"""


RENDER = f"""UPDATE appointments u SET {", ".join(f"{c} = r.{c}" for c in DERIVED)}
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
    """CREATE OR REPLACE FUNCTION iso_offset(o interval) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN
        CASE WHEN o < interval '0' THEN '-' || to_char(-o, 'HH24:MI')
             ELSE '+' || to_char(o, 'HH24:MI') END
        || CASE WHEN extract(second FROM o) = 0 THEN ''
                ELSE to_char(CASE WHEN o < interval '0' THEN -o ELSE o END, ':SS') END""",
    # Offsets with seconds are those of local mean time, before a zone's first standard.
    """CREATE OR REPLACE FUNCTION iso_local(t timestamptz, zone text) RETURNS text
        LANGUAGE sql STABLE PARALLEL SAFE RETURN
        to_char(t AT TIME ZONE zone, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN date_trunc('second', t) = t THEN ''
                ELSE to_char(t AT TIME ZONE zone, '.US') END
        || iso_offset(t AT TIME ZONE zone - t AT TIME ZONE 'UTC')""",
    *(f"ALTER TABLE appointments ADD COLUMN IF NOT EXISTS {c} {t}" for c, t in DERIVED.items()),
    """CREATE INDEX IF NOT EXISTS appointments_by_local_date
        ON appointments (organization_id, local_date)""",
    """CREATE INDEX IF NOT EXISTS appointments_by_held_local_date
        ON appointments (organization_id, held_local_date) WHERE held_local_date IS NOT NULL""",
    # Appointments written before these were derived (a no-op once every one has them).
    f"""WITH chosen AS (SELECT appointment_id FROM appointments
        WHERE view IS NULL OR held_by IS NULL OR provider_minutes IS NULL)
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
            if op.table in ("appointments", "appointment_resources", "appointment_events"):
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
    names = ", ".join([*columns, *DERIVED])
    await conn.execute(f"INSERT INTO appointments ({names}) {_shown(STAGED, columns)}")
    await conn.execute(f"DROP TABLE {STAGED}")
