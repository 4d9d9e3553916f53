"""Inputs of the scheduling operations, read from a FHIR ``Parameters`` body or from the
query string (pure).

``$find`` (IHE ITI-115): ``start`` and ``end`` required (``startTime``/``endTime``
accepted, as some vendors spell them); repeatable ``specialty``, ``appointmentType``
(``visit-type`` too), ``practitioner``, ``location``; ``organization``, ``patient``,
``_count``. ``$hold`` (ITI-116): ``appointment-reference``. ``$book`` (ITI-117):
``appointment-reference`` or ``appointment-resource``. ``$cancel``: optional ``reason``.
Unknown parameters are refused, as a search refuses them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from clinic.emr_bridge.fhir import InvalidResourceError, validated
from clinic.emr_bridge.search import (
    FORMATS,
    ID,
    MAX_COUNT,
    PRETTY,
    SearchError,
    date_range,
    is_number,
)

FIND = {
    "start": "start",
    "startTime": "start",
    "end": "end",
    "endTime": "end",
    "specialty": "specialty",
    "appointmentType": "appointmentType",
    "visit-type": "appointmentType",
    "practitioner": "practitioner",
    "location": "location",
    "organization": "organization",
    "patient": "patient",
    "_count": "_count",
}
"""Accepted names -> the name they stand for."""
HOLD = {"appointment-reference": "appointment-reference"}
BOOK = {
    "appointment-reference": "appointment-reference",
    "appointment-resource": "appointment-resource",
}
CANCEL = {"reason": "reason"}
MAX_WINDOW = dt.timedelta(days=366)
_VALUE = re.compile(r"^value[A-Z]")


class ParameterError(ValueError):
    """Operation input the bridge cannot act on as given."""


def from_body(body: Any, names: dict[str, str]) -> dict[str, list[Any]]:
    """The values of a ``Parameters`` resource, by (canonical) name."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        raise ParameterError("the body must be a FHIR Parameters resource")
    try:
        validated(body)
    except InvalidResourceError as error:
        raise ParameterError(f"the Parameters resource is not valid FHIR: {error}") from None
    found: dict[str, list[Any]] = {}
    for parameter in body.get("parameter", ()):
        name = parameter["name"]
        if name not in names:
            raise ParameterError(
                f"unknown parameter {name!r} (supported: {', '.join(sorted(set(names)))})"
            )
        values = [v for k, v in parameter.items() if _VALUE.match(k) or k == "resource"]
        if len(values) != 1:
            raise ParameterError(f"parameter {name!r} needs exactly one value")
        found.setdefault(names[name], []).append(_plain(values[0]))
    return found


def from_query(items: Iterable[tuple[str, str]], names: dict[str, str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for name, value in items:
        if (name == "_format" and value in FORMATS) or (name == "_pretty" and value in PRETTY):
            continue
        if name not in names:
            raise ParameterError(
                f"unknown parameter {name!r} (supported: {', '.join(sorted(set(names)))})"
            )
        found.setdefault(names[name], []).extend(v for v in value.split(",") if v)
    return found


def _plain(value: Any) -> Any:
    """A parameter's value as a string where FHIR has one (a code, a reference, a coding's
    code), else as given (a resource)."""
    if isinstance(value, dict):
        if "reference" in value:
            return value["reference"]
        if "code" in value:
            return value["code"]
        if value.get("coding"):
            return value["coding"][0].get("code", "")
        return value
    return value if isinstance(value, str) else str(value)


def _one(values: dict[str, list[Any]], name: str, required: bool = False) -> Any:
    given = values.get(name, [])
    if len(given) > 1:
        raise ParameterError(f"{name} is given more than once")
    if required and not given:
        raise ParameterError(f"{name} is required")
    return given[0] if given else None


def _instant(value: Any, name: str, end: bool) -> dt.datetime:
    if not isinstance(value, str):
        raise ParameterError(f"{name} must be a date or dateTime")
    try:
        start, stop = date_range(value)
    except SearchError as error:
        raise ParameterError(f"{name}: {error}") from None
    return stop if end and "T" not in value else start


def reference_id(value: Any, kind: str, name: str) -> str:
    """The id of a ``kind`` a parameter refers to (``Kind/id``, an absolute URL ending so,
    or a bare id)."""
    if not isinstance(value, str) or not value:
        raise ParameterError(f"{name} must be a reference to a {kind}")
    trimmed = value.split("/_history/")[0].rstrip("/")
    parts = trimmed.split("/")
    if len(parts) >= 2 and parts[-2] != kind:
        raise ParameterError(f"{name} must refer to a {kind}, not {parts[-2]}")
    rid = parts[-1]
    if not ID.match(rid):
        raise ParameterError(f"{name}: {rid!r} is not a FHIR id")
    return rid


@dataclass(frozen=True)
class FindRequest:
    start: dt.datetime
    end: dt.datetime
    appointment_types: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    practitioners: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()
    organization: str | None = None
    patient: str | None = None
    count: int = 20
    raw: dict[str, Sequence[Any]] = field(default_factory=dict)


def find_request(values: dict[str, list[Any]]) -> FindRequest:
    start = _instant(_one(values, "start", required=True), "start", end=False)
    end = _instant(_one(values, "end", required=True), "end", end=True)
    if end <= start:
        raise ParameterError("end must be after start")
    if end - start > MAX_WINDOW:
        raise ParameterError("start and end may be at most 366 days apart")
    count_value = _one(values, "_count")
    count = 20
    if count_value is not None:
        if not is_number(str(count_value)) or not 1 <= int(count_value) <= MAX_COUNT:
            raise ParameterError(f"_count must be a whole number from 1 to {MAX_COUNT}")
        count = int(count_value)
    organization = _one(values, "organization")
    patient = _one(values, "patient")

    def ids(name: str, kind: str) -> tuple[str, ...]:
        return tuple(reference_id(v, kind, name) for v in values.get(name, ()))

    def codes(name: str) -> tuple[str, ...]:
        found = tuple(str(v).rpartition("|")[2] for v in values.get(name, ()))
        if any(not c or len(c) > 200 for c in found):
            raise ParameterError(f"{name} needs a code")
        return found

    return FindRequest(
        start=start,
        end=end,
        appointment_types=codes("appointmentType"),
        specialties=codes("specialty"),
        practitioners=ids("practitioner", "Practitioner"),
        locations=ids("location", "Location"),
        organization=reference_id(organization, "Organization", "organization")
        if organization
        else None,
        patient=reference_id(patient, "Patient", "patient") if patient else None,
        count=count,
    )


def one_appointment(values: dict[str, list[Any]]) -> tuple[str | None, dict[str, Any] | None]:
    """``$book``/``$hold``: the appointment referred to, or the one given whole."""
    reference = _one(values, "appointment-reference")
    resource = _one(values, "appointment-resource")
    if (reference is None) == (resource is None):
        raise ParameterError("give exactly one of appointment-reference and appointment-resource")
    if resource is not None:
        if not isinstance(resource, dict) or resource.get("resourceType") != "Appointment":
            raise ParameterError("appointment-resource must be an Appointment")
        return None, resource
    return reference_id(reference, "Appointment", "appointment-reference"), None
