"""The organisation's reference data as lists, a page at a time: its locations, resources
(providers, rooms, devices) and appointment types, read from the projection's tables as
booking's topics left them.

Every list is ordered by name, then id, and paged by a token that carries the last item's
name and id: a page starts after that pair, so an item renamed, added or retired between
two pages moves in the order without any other item being listed twice or skipped.
Availability keeps no list of organisations: an organisation it has no rows of (unknown,
or not yet projected) has empty lists.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import psycopg

from clinic.platform.paging import InvalidCursorError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def encode_page_token(name: str, item_id: UUID) -> str:
    """The token of a page that ends with the item ``(name, item_id)``; opaque to clients."""
    raw = orjson.dumps([name, str(item_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[str, UUID]:
    """The ``(name, id)`` a page ends with; a 422 problem for a token this service did not
    give (a name PostgreSQL could not compare, with NUL or a lone surrogate, never was)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        name, item_id = orjson.loads(raw)
        if not isinstance(name, str) or not isinstance(item_id, str) or "\x00" in name:
            raise ValueError("not a name and an id")
        name.encode()
        return name, UUID(item_id)
    except (ValueError, TypeError, binascii.Error, UnicodeError, orjson.JSONDecodeError):
        raise InvalidCursorError("give back the next_page_token of the previous page") from None


@dataclass(frozen=True)
class Page:
    """One page of a list: ``page_size`` plus one row are read, the extra one only says
    that another page follows."""

    page_size: int
    page_token: str | None

    def after(self, id_column: str) -> tuple[str, list[Any]]:
        """The SQL condition for rows after the token (none without one), with its
        parameters."""
        if self.page_token is None:
            return "", []
        name, item_id = decode_page_token(self.page_token)
        return f" AND (x.name, x.{id_column}) > (%s, %s)", [name, item_id]

    def split(self, rows: Sequence[Any]) -> tuple[Sequence[Any], str | None]:
        """Rows read as ``(name, id, ...)``: the page, and the next page's token (None on
        the last page)."""
        page = rows[: self.page_size]
        more = len(rows) > self.page_size
        return page, encode_page_token(page[-1][0], page[-1][1]) if more else None


async def _read(
    conn: psycopg.AsyncConnection,
    table: str,
    columns: str,
    where: list[str],
    params: list[Any],
    page: Page,
) -> tuple[Sequence[Any], str | None]:
    """Rows ``(name, id, *columns)`` of ``table`` (as ``x``) of one organisation (the first
    parameter) that meet ``where``, ordered by name and id, one page of them."""
    id_column = f"{table.removesuffix('s')}_id"
    after, after_params = page.after(id_column)
    conditions = " AND ".join(["x.organization_id = %s", *where])
    query = (
        f"SELECT x.name, x.{id_column}, {columns} FROM {table} x "
        f"WHERE {conditions}{after} ORDER BY x.name, x.{id_column} LIMIT %s"
    )
    found = await conn.execute(query, [*params, *after_params, page.page_size + 1])
    return page.split(await found.fetchall())


def _live(include_retired: bool) -> list[str]:
    return [] if include_retired else ["NOT x.retired"]


async def locations(
    conn: psycopg.AsyncConnection, organization_id: UUID, include_retired: bool, page: Page
) -> dict[str, Any]:
    """The organisation's locations (retired ones only if asked)."""
    rows, token = await _read(
        conn,
        "locations",
        "x.time_zone, x.address, x.retired",
        _live(include_retired),
        [organization_id],
        page,
    )
    return {"locations": [location_item(*row) for row in rows], "next_page_token": token}


def location_item(
    name: str, location_id: UUID, time_zone: str, address: dict[str, str], retired: bool
) -> dict[str, Any]:
    return {
        "id": str(location_id),
        "name": name,
        "time_zone": time_zone,
        "address": address,
        "retired": retired,
    }


@dataclass(frozen=True)
class ResourceFilters:
    category: str | None = None
    kind: str | None = None
    location_id: UUID | None = None
    specialty: str | None = None
    include_retired: bool = False

    def sql(self) -> tuple[list[str], list[Any]]:
        where, params = _live(self.include_retired), []
        for condition, value in (
            ("x.category = %s", self.category),
            ("x.kind = %s", self.kind),
            ("%s = ANY(x.location_ids)", self.location_id),
            ("%s = ANY(x.specialties)", self.specialty),
        ):
            if value is not None:
                where.append(condition)
                params.append(value)
        return where, params


async def resources(
    conn: psycopg.AsyncConnection, organization_id: UUID, filters: ResourceFilters, page: Page
) -> dict[str, Any]:
    """The organisation's providers, rooms and devices that match every filter given."""
    where, params = filters.sql()
    rows, token = await _read(
        conn,
        "resources",
        "x.category, x.kind, x.specialties, x.location_ids, x.time_zone, x.retired, x.languages",
        where,
        [organization_id, *params],
        page,
    )
    return {"resources": [resource_item(*row) for row in rows], "next_page_token": token}


def resource_item(
    name: str,
    resource_id: UUID,
    category: str,
    kind: str,
    specialties: list[str],
    location_ids: list[UUID],
    time_zone: str,
    retired: bool,
    languages: list[str],
) -> dict[str, Any]:
    return {
        "id": str(resource_id),
        "category": category,
        "kind": kind,
        "name": name,
        "specialties": list(specialties),
        "languages": list(languages),
        "location_ids": [str(i) for i in location_ids],
        "time_zone": time_zone,
        "retired": retired,
    }


OFFERED_AT = """EXISTS (SELECT 1 FROM locations l WHERE l.location_id = %s
        AND l.organization_id = x.organization_id AND NOT l.retired)
    AND NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements(x.definition -> 'steps') s,
            jsonb_array_elements(s -> 'requirements') q
        WHERE NOT EXISTS (
            SELECT 1 FROM resources r
            WHERE r.organization_id = x.organization_id AND NOT r.retired
                AND %s = ANY(r.location_ids) AND r.category = q ->> 'category'
                AND (q ->> 'resource_id' IS NULL OR r.resource_id = (q ->> 'resource_id')::uuid)
                AND (q ->> 'kind' IS NULL OR r.kind = q ->> 'kind')
                AND (q ->> 'specialty' IS NULL OR q ->> 'specialty' = ANY(r.specialties))))"""
"""A type is offered at a location (a live one of its organisation) when every requirement
of every step has a resource there that can fill it: the pool the slot search picks from
(``index.Index.candidates``). Whether any of them has free time is the search's question."""


@dataclass(frozen=True)
class TypeFilters:
    location_id: UUID | None = None
    patient_bookable: bool | None = None
    include_retired: bool = False

    def sql(self) -> tuple[list[str], list[Any]]:
        where, params = _live(self.include_retired), list[Any]()
        if self.location_id is not None:
            where.append(OFFERED_AT)
            params += [self.location_id, self.location_id]
        if self.patient_bookable is not None:
            where.append("(x.definition ->> 'patient_bookable')::boolean = %s")
            params.append(self.patient_bookable)
        return where, params


async def appointment_types(
    conn: psycopg.AsyncConnection, organization_id: UUID, filters: TypeFilters, page: Page
) -> dict[str, Any]:
    """The organisation's appointment types that match every filter given."""
    where, params = filters.sql()
    rows, token = await _read(
        conn,
        "appointment_types",
        "x.definition, x.retired",
        where,
        [organization_id, *params],
        page,
    )
    return {
        "appointment_types": [appointment_type_item(*row) for row in rows],
        "next_page_token": token,
    }


def appointment_type_item(
    name: str, appointment_type_id: UUID, definition: dict[str, Any], retired: bool
) -> dict[str, Any]:
    """A type as booking defined it (``AppointmentType.Defined`` without its id and name,
    as the projection stores it), with its duration: from its start to its last step's
    end. Fields a later version of the event added read as the event's defaults."""
    steps = definition["steps"]
    return {
        "id": str(appointment_type_id),
        "name": name,
        "duration_minutes": max(
            (s["offset_minutes"] + s["duration_minutes"] for s in steps), default=0
        ),
        "steps": [
            {
                "name": s["name"],
                "offset_minutes": s["offset_minutes"],
                "duration_minutes": s["duration_minutes"],
                "requirements": [
                    {
                        "role": r["role"],
                        "category": r["category"],
                        "resource_id": r.get("resource_id"),
                        "kind": r.get("kind"),
                        "specialty": r.get("specialty"),
                    }
                    for r in s["requirements"]
                ],
            }
            for s in steps
        ],
        "buffer_before_minutes": definition["buffer_before_minutes"],
        "buffer_after_minutes": definition["buffer_after_minutes"],
        "seats": definition["seats"],
        "minimum_notice_minutes": definition["minimum_notice_minutes"],
        "maximum_horizon_days": definition["maximum_horizon_days"],
        "cancellation_cutoff_minutes": definition["cancellation_cutoff_minutes"],
        "reschedule_cutoff_minutes": definition.get("reschedule_cutoff_minutes"),
        "patient_bookable": definition["patient_bookable"],
        "specialty": definition.get("specialty"),
        "preparation": definition.get("preparation", ""),
        "patient_facing": {
            language: {
                "name": text["name"],
                "description": text.get("description", ""),
                "preparation": text.get("preparation", ""),
            }
            for language, text in definition.get("patient_facing", {}).items()
        },
        "reminder_plan": [
            {"before_minutes": r["before_minutes"], "channel": r.get("channel")}
            for r in definition.get("reminder_plan", [])
        ],
        "retired": retired,
    }
