"""Reading the stored resources: one (current or a version), one's history, a search page
with its total and included resources. Every read is scoped to one organisation: another
organisation's resource is not found, as if it did not exist."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg

from clinic.emr_bridge import search
from clinic.emr_bridge.search import Query


@dataclass(frozen=True)
class Stored:
    resource_type: str
    id: str
    version: int
    last_updated: dt.datetime
    body: dict[str, Any] | None
    """None: this version marks the resource deleted."""
    source_version: int | None = None
    """For an Appointment: booking's version of it that the projection holds."""


async def current(
    conn: psycopg.AsyncConnection, org: UUID, resource_type: str, rid: str
) -> Stored | None:
    cursor = await conn.execute(
        "SELECT resource_type, id, version, last_updated, body FROM fhir_resources"
        " WHERE organization_id = %s AND resource_type = %s AND id = %s",
        [org, resource_type, rid],
    )
    row = await cursor.fetchone()
    return Stored(*row) if row else None


async def appointment(conn: psycopg.AsyncConnection, org: UUID, rid: str) -> Stored | None:
    """The current Appointment with booking's version of it, read together."""
    cursor = await conn.execute(
        "SELECT r.resource_type, r.id, r.version, r.last_updated, r.body, a.version"
        " FROM fhir_resources r LEFT JOIN appointments a ON a.appointment_id::text = r.id"
        " WHERE r.organization_id = %s AND r.resource_type = 'Appointment' AND r.id = %s",
        [org, rid],
    )
    row = await cursor.fetchone()
    return Stored(*row) if row else None


async def version(
    conn: psycopg.AsyncConnection, org: UUID, resource_type: str, rid: str, number: int
) -> Stored | None:
    cursor = await conn.execute(
        "SELECT resource_type, id, version, last_updated, body FROM fhir_history"
        " WHERE organization_id = %s AND resource_type = %s AND id = %s AND version = %s",
        [org, resource_type, rid, number],
    )
    row = await cursor.fetchone()
    return Stored(*row) if row else None


async def history(
    conn: psycopg.AsyncConnection,
    org: UUID,
    resource_type: str,
    rid: str,
    count: int,
    before: int | None,
    since: dt.datetime | None,
) -> tuple[list[Stored], int]:
    """Versions newest first (below ``before`` when paging), and how many there are."""
    cursor = await conn.execute(
        "SELECT resource_type, id, version, last_updated, body FROM fhir_history"
        " WHERE organization_id = %s AND resource_type = %s AND id = %s"
        " AND (%s::int IS NULL OR version < %s) AND (%s::timestamptz IS NULL OR last_updated >= %s)"
        " ORDER BY version DESC LIMIT %s",
        [org, resource_type, rid, before, before, since, since, count],
    )
    rows = [Stored(*row) for row in await cursor.fetchall()]
    cursor = await conn.execute(
        "SELECT count(*) FROM fhir_history WHERE organization_id = %s AND resource_type = %s"
        " AND id = %s AND (%s::timestamptz IS NULL OR last_updated >= %s)",
        [org, resource_type, rid, since, since],
    )
    found = await cursor.fetchone()
    return rows, int(found[0]) if found else 0


@dataclass(frozen=True)
class Page:
    matches: list[dict[str, Any]]
    included: list[dict[str, Any]]
    total: int
    next_cursor: str | None


async def find(conn: psycopg.AsyncConnection, org: UUID, query: Query) -> Page:
    page_sql, page_params, total_sql, total_params = search.statements(query, org)
    cursor = await conn.execute(total_sql, total_params)
    counted = await cursor.fetchone()
    total = int(counted[0]) if counted else 0
    if query.count == 0:
        return Page([], [], total, None)
    cursor = await conn.execute(page_sql, page_params)
    rows = await cursor.fetchall()
    more = len(rows) > query.count
    rows = rows[: query.count]
    matches = [body for _, _, body in rows]
    next_cursor = search.encode_cursor(rows[-1][1], rows[-1][0]) if more and rows else None
    included = await _included(conn, org, query, matches)
    return Page(matches, included, total, next_cursor)


async def _included(
    conn: psycopg.AsyncConnection, org: UUID, query: Query, matches: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    wanted: set[tuple[str, str]] = set()
    for include in query.includes:
        targets = search.INCLUDE_TARGETS[include]
        for body in matches:
            for participant in body.get("participant", ()):
                kind, _, rid = participant.get("actor", {}).get("reference", "").partition("/")
                if kind in targets:
                    wanted.add((kind, rid))
    wanted -= {(m["resourceType"], m["id"]) for m in matches}
    if not wanted:
        return []
    cursor = await conn.execute(
        "SELECT body FROM fhir_resources WHERE organization_id = %s AND body IS NOT NULL"
        " AND (resource_type, id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
        " ORDER BY resource_type, id",
        [org, [k for k, _ in wanted], [i for _, i in wanted]],
    )
    return [body for (body,) in await cursor.fetchall()]
