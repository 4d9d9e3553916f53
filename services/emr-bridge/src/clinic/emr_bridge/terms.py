"""What a stored resource is found by (pure): the columns FHIR search reads, taken from the
resource as served, so a search finds exactly what a read shows.

- ``start_at``/``end_at``: Appointment and Slot times (``date``, ``start``);
- ``status``: Appointment and Slot status;
- ``refs``: every reference a search may follow (participants' actors, a Slot's Schedule, a
  Schedule's actors, a role's practitioner and locations), as ``Type/id``;
- ``tokens``: identifiers, as ``system|value`` and as the bare ``value`` (a search without a
  system matches any);
- ``names``: lower-case names and name parts (``name`` matches their starts);
- ``birthdate``: a Patient's.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def _time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _names(body: dict[str, Any]) -> list[str]:
    names: list[str] = []
    raw = body.get("name")
    if isinstance(raw, str):
        names.append(raw)
    elif isinstance(raw, list):
        for name in raw:
            names += [name.get("text", ""), name.get("family", ""), *name.get("given", ())]
    for device_name in body.get("deviceName", ()):
        names.append(device_name["name"])
    words = {w for n in names for w in [n, *n.split()] if w}
    return sorted(w.lower() for w in words)


def _refs(body: dict[str, Any]) -> list[str]:
    kind = body["resourceType"]
    found: list[dict[str, Any]] = []
    if kind == "Appointment":
        found = [p["actor"] for p in body.get("participant", ()) if "actor" in p]
    elif kind == "Slot":
        found = [body["schedule"]]
    elif kind == "Schedule":
        found = list(body.get("actor", ()))
    elif kind == "PractitionerRole":
        found = [body["practitioner"], *body.get("location", ())]
    return sorted({r["reference"] for r in found if "reference" in r})


def terms(body: dict[str, Any]) -> dict[str, Any]:
    tokens: set[str] = set()
    for identifier in body.get("identifier", ()):
        value = identifier.get("value")
        if value:
            tokens |= {f"{identifier.get('system', '')}|{value}", value}
    birth = body.get("birthDate")
    return {
        "start_at": _time(body.get("start")),
        "end_at": _time(body.get("end")),
        "status": body.get("status") if body["resourceType"] in ("Appointment", "Slot") else None,
        "refs": _refs(body),
        "tokens": sorted(tokens),
        "names": _names(body),
        "birthdate": dt.date.fromisoformat(birth) if birth else None,
    }
