"""FHIR search, parsed and turned into SQL over ``fhir_resources`` (pure: no I/O).

Every parameter a resource type supports is in ``PARAMETERS`` (the CapabilityStatement is
written from it, so it lists exactly what works). Anything else, a modifier or prefix not
listed, or a value that does not parse is refused with the reason (``SearchError``): a
search that silently ignored a criterion would return more than the client asked for.

Types as FHIR defines them:

- ``date`` (Appointment ``date``, Slot ``start``, Patient ``birthdate``, ``_lastUpdated``):
  ``eq`` (default), ``ne``, ``gt``, ``lt``, ``ge``, ``le``, ``sa``, ``eb`` with a value of
  year, month, day or instant precision; the value is the range of its precision (a day is
  all of that day, in UTC when no offset is given), compared with the resource's value;
- ``reference``: ``Type/id``, a bare id, or an absolute URL ending with ``Type/id``;
- ``token``: ``code``, ``system|code`` or ``|code``;
- ``string``: case-insensitive match of the start of any name or name part.

Comma-separated values are alternatives (OR); repeated parameters all apply (AND).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)


def is_number(value: str) -> bool:
    """A whole number written with ASCII digits (``str.isdigit`` also takes superscripts,
    which ``int`` then refuses)."""
    return value.isascii() and value.isdigit()


class SearchError(ValueError):
    """A search the bridge cannot run exactly as asked."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    """date, reference, token or string."""
    column: str
    documentation: str
    targets: tuple[str, ...] = ()
    """For references: the resource types it may point to."""


def _p(name: str, kind: str, column: str, doc: str, *targets: str) -> Parameter:
    return Parameter(name, kind, column, doc, targets)


ACTORS = ("Patient", "Practitioner", "PractitionerRole", "Location", "Device", "HealthcareService")
COMMON = (
    _p("_id", "token", "id", "The resource's id."),
    _p("_lastUpdated", "date", "last_updated", "When its current version was recorded."),
)
PARAMETERS: dict[str, tuple[Parameter, ...]] = {
    "Appointment": (
        _p("date", "date", "start_at", "Appointment.start."),
        _p("actor", "reference", "refs", "Any participant.", *ACTORS),
        _p("patient", "reference", "refs", "The patient participant.", "Patient"),
        _p("practitioner", "reference", "refs", "A practitioner participant.", "Practitioner"),
        _p("location", "reference", "refs", "The clinic or room.", "Location"),
        _p("status", "token", "status", "Appointment.status."),
        _p("identifier", "token", "tokens", "Appointment.identifier."),
    ),
    "Slot": (
        _p("schedule", "reference", "refs", "The Schedule the Slot belongs to.", "Schedule"),
        _p("start", "date", "start_at", "Slot.start."),
        _p(
            "status",
            "token",
            "status",
            "Slot.status: busy, busy-tentative (held) or busy-unavailable (leave, holidays, "
            "blocked time). Free time is not stored as Slots: find it with Appointment/$find.",
        ),
    ),
    "Schedule": (
        _p(
            "actor",
            "reference",
            "refs",
            "The provider, room or device, or its clinic.",
            "Practitioner",
            "Location",
            "Device",
        ),
    ),
    "Patient": (
        _p("identifier", "token", "tokens", "Patient.identifier (MRN per system)."),
        _p("name", "string", "names", "Any part of the patient's name."),
        _p("family", "string", "names", "Any part of the patient's name."),
        _p("birthdate", "date", "birthdate", "Patient.birthDate."),
    ),
    "Practitioner": (_p("name", "string", "names", "The practitioner's name."),),
    "PractitionerRole": (
        _p("practitioner", "reference", "refs", "The practitioner.", "Practitioner"),
        _p("location", "reference", "refs", "Where they work.", "Location"),
    ),
    "Location": (_p("name", "string", "names", "The location's name."),),
    "Organization": (_p("name", "string", "names", "The organisation's name."),),
    "HealthcareService": (_p("name", "string", "names", "The appointment type's name."),),
    "Device": (_p("device-name", "string", "names", "The device's name."),),
}
INCLUDES: dict[str, tuple[str, ...]] = {
    "Appointment": (
        "Appointment:patient",
        "Appointment:actor",
        "Appointment:practitioner",
        "Appointment:location",
    ),
}
"""``_include`` values per type (the participants whose resources come along)."""
INCLUDE_TARGETS = {
    "Appointment:patient": ("Patient",),
    "Appointment:actor": ACTORS,
    "Appointment:practitioner": ("Practitioner",),
    "Appointment:location": ("Location",),
}
DEFAULT_COUNT = 50
MAX_COUNT = 500
CONTROL = ("_count", "_include", "_cursor", "_format", "_pretty", "_total", "_summary")
FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
PRETTY = frozenset({"true", "false"})
ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
SORT_BY_TIME = frozenset({"Appointment", "Slot"})


@dataclass
class Query:
    resource_type: str
    where: list[sql.Composable] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    after: tuple[str | None, str] | None = None
    """The sort key and id of the last entry of the previous page."""
    includes: list[str] = field(default_factory=list)
    criteria: list[tuple[str, str]] = field(default_factory=list)
    """The search parameters as given (for the self and next links)."""

    @property
    def by_time(self) -> bool:
        return self.resource_type in SORT_BY_TIME


def parse(resource_type: str, items: Sequence[tuple[str, str]]) -> Query:
    """The query ``items`` (name, value pairs as in the URL) ask for."""
    known = {p.name: p for p in (*COMMON, *PARAMETERS[resource_type])}
    query = Query(resource_type)
    for raw, value in items:
        name, _, modifier = raw.partition(":")
        if name in CONTROL:
            _control(query, name, modifier, value)
            continue
        parameter = known.get(name)
        if parameter is None:
            supported = ", ".join(sorted(known))
            raise SearchError(
                f"unknown search parameter {raw!r} for {resource_type} (supported: {supported})"
            )
        if value == "":
            raise SearchError(f"search parameter {raw!r} has no value")
        alternatives = [_condition(parameter, modifier, v, query) for v in _split(value)]
        query.where.append(sql.SQL("({})").format(sql.SQL(" OR ").join(alternatives)))
        query.criteria.append((raw, value))
    return query


def _split(value: str) -> list[str]:
    """Comma-separated alternatives; ``\\,`` is a comma within a value."""
    parts = re.split(r"(?<!\\),", value)
    return [p.replace("\\,", ",") for p in parts]


def _control(query: Query, name: str, modifier: str, value: str) -> None:
    if modifier:
        raise SearchError(f"{name} takes no modifier")
    if name == "_count":
        if not is_number(value) or int(value) > MAX_COUNT:
            raise SearchError(f"_count must be a whole number from 0 to {MAX_COUNT}")
        query.count = int(value)
    elif name == "_include":
        allowed = INCLUDES.get(query.resource_type, ())
        if value not in allowed:
            raise SearchError(
                f"_include={value} is not supported for {query.resource_type}"
                f" (supported: {', '.join(allowed) or 'none'})"
            )
        query.includes.append(value)
        query.criteria.append((name, value))
    elif name == "_cursor":
        query.after = decode_cursor(value)
    elif name == "_format":
        if value not in FORMATS:
            raise SearchError("only JSON is served (_format=json)")
    elif name == "_total":
        if value not in ("accurate", "estimate", "none"):
            raise SearchError("_total must be none, estimate or accurate")
    elif name == "_summary":
        if value != "false":
            raise SearchError("only _summary=false (whole resources) is supported")
    elif name == "_pretty" and value not in ("true", "false"):
        raise SearchError("_pretty must be true or false")


def _condition(parameter: Parameter, modifier: str, value: str, query: Query) -> sql.Composable:
    if parameter.type == "date":
        if modifier:
            raise SearchError(f"{parameter.name} takes no modifier")
        return _date(parameter, value, query)
    if parameter.type == "reference":
        return _reference(parameter, modifier, value, query)
    if parameter.type == "token":
        if modifier:
            raise SearchError(f"{parameter.name} takes no modifier")
        return _token(parameter, value, query)
    if modifier not in ("", "exact"):
        raise SearchError(f"{parameter.name} supports no modifier but :exact")
    column = sql.Identifier(parameter.column)
    if modifier == "exact":
        query.params.append(value.lower())
        return sql.SQL("%s = ANY({})").format(column)
    query.params.append(_like(value.lower()) + "%")
    return sql.SQL("EXISTS (SELECT 1 FROM unnest({}) AS n WHERE n LIKE %s)").format(column)


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- dates ---------------------------------------------------------------------------------------

_DATE = re.compile(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})(T.+)?)?)?$")


def date_range(value: str) -> tuple[dt.datetime, dt.datetime]:
    """The instants a FHIR date value stands for: [start, end)."""
    match = _DATE.match(value)
    if match is None:
        raise SearchError(
            f"{value!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or an "
            "instant such as 2027-03-01T09:00:00Z)"
        )
    year, month, day, time = match.groups()
    try:
        if time:
            instant = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if instant.tzinfo is None:
                instant = instant.replace(tzinfo=dt.UTC)
            precision = (
                dt.timedelta(seconds=1)
                if instant.microsecond == 0
                else dt.timedelta(microseconds=1)
            )
            start, end = instant, instant + precision
        elif day:
            start = dt.datetime(int(year), int(month), int(day), tzinfo=dt.UTC)
            end = start + dt.timedelta(days=1)
        elif month:
            start = dt.datetime(int(year), int(month), 1, tzinfo=dt.UTC)
            end = (start + dt.timedelta(days=32)).replace(day=1)
        else:
            start = dt.datetime(int(year), 1, 1, tzinfo=dt.UTC)
            end = start.replace(year=int(year) + 1)
    except (ValueError, OverflowError) as error:
        raise SearchError(f"{value!r} is not a valid date: {error}") from None
    if start < EARLIEST or end > LATEST:
        raise SearchError(f"{value!r} is outside the calendar this service keeps (1900-2199)")
    return start, end


def _date(parameter: Parameter, value: str, query: Query) -> sql.Composable:
    prefix, rest = (value[:2], value[2:]) if value[:2] in PREFIXES else ("eq", value)
    if value[:2].isalpha() and value[:2] not in PREFIXES:
        raise SearchError(f"unknown prefix {value[:2]!r} (supported: {', '.join(PREFIXES)})")
    start, end = date_range(rest)
    if parameter.column == "birthdate":
        start_value: Any = start.date()
        end_value: Any = end.date()
    else:
        start_value, end_value = start, end
    column = sql.Identifier(parameter.column)
    comparisons = {
        "eq": ("{c} >= %s AND {c} < %s", [start_value, end_value]),
        "ne": ("NOT ({c} >= %s AND {c} < %s)", [start_value, end_value]),
        "ge": ("{c} >= %s", [start_value]),
        "gt": ("{c} >= %s", [end_value]),
        "le": ("{c} < %s", [end_value]),
        "lt": ("{c} < %s", [start_value]),
        "sa": ("{c} >= %s", [end_value]),
        "eb": ("{c} < %s", [start_value]),
    }
    template, values = comparisons[prefix]
    query.params += values
    return sql.SQL(f"({{c}} IS NOT NULL AND {template})").format(c=column)


# -- references and tokens -----------------------------------------------------------------------

_REFERENCE = re.compile(r"^(?:.*/)?([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/.*)?$")


def reference_values(parameter: Parameter, modifier: str, value: str) -> list[str]:
    """The ``Type/id`` strings a reference value matches."""
    targets = parameter.targets
    if modifier:
        if modifier not in targets:
            raise SearchError(
                f"{parameter.name}:{modifier} is not a type it refers to ({', '.join(targets)})"
            )
        targets = (modifier,)
    if ID.match(value):
        return [f"{t}/{value}" for t in targets]
    match = _REFERENCE.match(value)
    if match is None:
        raise SearchError(f"{value!r} is not a reference (Type/id, id, or a URL ending so)")
    kind, rid = match.groups()
    if kind not in targets:
        raise SearchError(f"{parameter.name} refers to {', '.join(targets)}, not {kind}")
    return [f"{kind}/{rid}"]


def _reference(parameter: Parameter, modifier: str, value: str, query: Query) -> sql.Composable:
    query.params.append(reference_values(parameter, modifier, value))
    return sql.SQL("refs && %s::text[]")


def _token(parameter: Parameter, value: str, query: Query) -> sql.Composable:
    system, bar, code = value.rpartition("|")
    if not code:
        raise SearchError(f"{parameter.name}={value!r} has no code")
    if parameter.column == "id":
        if bar or not ID.match(code):
            raise SearchError(f"{code!r} is not a FHIR id")
        query.params.append(code)
        return sql.SQL("id = %s")
    if parameter.column == "status":
        if query.resource_type == "Slot" and code == "free":
            raise SearchError(
                "free Slots are not served: free time is what availability "
                "offers at the moment asked, found with Appointment/$find"
            )
        query.params.append(code)
        return sql.SQL("status = %s")
    query.params.append(f"{system}|{code}" if bar else code)
    return sql.SQL("tokens @> ARRAY[%s]::text[]")


# -- paging ---------------------------------------------------------------------------------------


_CURSOR_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?\+00:00$"
)
"""The times this service writes into cursors (UTC): nothing else is read back."""


def encode_cursor(sort: dt.datetime | None, rid: str) -> str:
    raw = json.dumps([sort.astimezone(dt.UTC).isoformat() if sort else None, rid]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[str | None, str]:
    try:
        padded = value + "=" * (-len(value) % 4)
        sort, rid = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if sort is not None and not _CURSOR_TIME.match(sort):
            raise ValueError(sort)
        if not isinstance(rid, str) or not ID.match(rid):
            raise ValueError(rid)
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise SearchError("_cursor is not one this service gave") from None
    return sort, rid


def statements(
    query: Query, organization_id: Any
) -> tuple[sql.Composed, list[Any], sql.Composed, list[Any]]:
    """The page's SELECT (one row more than the page, to know whether another follows) and
    the total's COUNT, each with its parameters."""
    base = [
        sql.SQL("organization_id = %s"),
        sql.SQL("resource_type = %s"),
        sql.SQL("body IS NOT NULL"),
        *query.where,
    ]
    params = [organization_id, query.resource_type, *query.params]
    where = sql.SQL(" AND ").join(base)
    total = sql.SQL("SELECT count(*) FROM fhir_resources WHERE {}").format(where)
    sort = sql.SQL("start_at") if query.by_time else sql.SQL("NULL::timestamptz")
    page_where = where
    page_params = list(params)
    if query.after is not None:
        after_sort, after_id = query.after
        if query.by_time:
            page_where = sql.SQL("{} AND (start_at, id) > (%s::timestamptz, %s)").format(where)
            page_params += [after_sort, after_id]
        else:
            page_where = sql.SQL("{} AND id > %s").format(where)
            page_params.append(after_id)
    page = sql.SQL(
        "SELECT id, {sort}, body FROM fhir_resources WHERE {where} ORDER BY {sort}, id LIMIT %s"
    ).format(sort=sort, where=page_where)
    page_params.append(query.count + 1)
    return page, page_params, total, params
