"""HL7 v2.5.1 SIU messages written from booking's facts (pure).

Which message each fact becomes (``trigger``):

- an appointment booked (directly, or a hold confirmed) -> S12 new booking; a hold alone is
  not announced (it may lapse; an EMR sees the booking or nothing);
- moved -> S13 reschedule; cancelled -> S15; marked no-show -> S26; entered in error -> S17
  delete; checked in, arrived, fulfilled or attendance confirmed -> S14 modification (the
  filler status, SCH-25, says which);
- leave, a holiday or blocked time added to a resource's schedule -> S23 blocked; removed ->
  S24 opened.

Segments: MSH, SCH, PID (with every identifier, the MRN first), PV1 (outpatient), RGS, AIS
(the appointment type), AIG (devices), AIL (the clinic and the room), AIP (providers). Times
are written as the location's wall-clock time with its UTC offset (``YYYYMMDDHHMMSS+ZZZZ``).
Text is escaped as HL7 requires (``\\F\\``, ``\\S\\``, ``\\T\\``, ``\\R\\``, ``\\E\\``), so a
name with a ``|`` or ``^`` cannot break a segment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

VERSION = "2.5.1"
SENDING_APPLICATION = "CLINIC"
FILLER_STATUS = {
    "booked": "Booked",
    "pending": "Pending",
    "cancelled": "Cancelled",
    "noshow": "Noshow",
    "fulfilled": "Complete",
    "arrived": "Started",
    "checked-in": "Started",
    "entered-in-error": "Deleted",
    "waitlist": "Waitlist",
    "proposed": "Pending",
}
"""FHIR Appointment.status -> HL7 table 0278 (filler status codes)."""
GENDER = {"female": "F", "male": "M", "other": "O", "unknown": "U"}
BLOCKING = {"leave": "Leave", "holiday": "Holiday", "blocked": "Blocked"}


def escape(text: str) -> str:
    """Text as an HL7 field value with the default delimiters ``|^~\\&``."""
    out = (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
    )
    return "".join(c if c >= " " else f"\\X{ord(c):02X}\\" for c in out)


def timestamp(value: dt.datetime, zone: str = "UTC") -> str:
    local = value.astimezone(ZoneInfo(zone))
    return local.strftime("%Y%m%d%H%M%S") + local.strftime("%z")


def _components(*parts: str) -> str:
    return "^".join(escape(p) for p in parts).rstrip("^")


@dataclass(frozen=True)
class Endpoint:
    """Where messages go, and how MSH names both sides."""

    sending_facility: str
    receiving_application: str
    receiving_facility: str


@dataclass(frozen=True)
class Person:
    id: str
    given: str
    family: str
    birth_date: dt.date
    gender: str
    identifiers: tuple[tuple[str, str], ...] = ()
    """(system, value), MRNs first."""


@dataclass(frozen=True)
class Resource:
    id: str
    category: str
    """provider, room or device."""
    name: str
    role: str


@dataclass(frozen=True)
class Visit:
    """An appointment as the message tells it."""

    appointment_id: str
    status: str
    start: dt.datetime
    end: dt.datetime
    type_id: str
    type_name: str
    location_id: str
    location_name: str
    time_zone: str
    patient: Person | None
    resources: tuple[Resource, ...] = field(default_factory=tuple)
    reason: str = ""


def msh(endpoint: Endpoint, trigger: str, control_id: str, at: dt.datetime) -> str:
    structure = {
        "S12": "SIU_S12",
        "S13": "SIU_S12",
        "S14": "SIU_S12",
        "S15": "SIU_S12",
        "S17": "SIU_S12",
        "S26": "SIU_S12",
        "S23": "SIU_S12",
        "S24": "SIU_S12",
    }.get(trigger, "SIU_S12")
    return "|".join(
        [
            "MSH",
            "^~\\&",
            SENDING_APPLICATION,
            escape(endpoint.sending_facility),
            escape(endpoint.receiving_application),
            escape(endpoint.receiving_facility),
            timestamp(at),
            "",
            f"SIU^{trigger}^{structure}",
            control_id,
            "P",
            VERSION,
            "",
            "",
            "",
            "",
            "",
            "UNICODE UTF-8",
        ]
    )


def _minutes(start: dt.datetime, end: dt.datetime) -> str:
    return str(max(1, int((end - start).total_seconds() // 60)))


def _sch(
    filler_id: str,
    status: str,
    start: dt.datetime,
    end: dt.datetime,
    zone: str,
    reason: tuple[str, str] = ("", ""),
    event_reason: str = "",
) -> str:
    begin, finish = timestamp(start, zone), timestamp(end, zone)
    return "|".join(
        [
            "SCH",
            "",
            f"{escape(filler_id)}^{SENDING_APPLICATION}",
            "",
            "",
            "",
            _components(event_reason) if event_reason else "",
            _components(*reason),
            "ROUTINE^Routine^HL70276",
            _minutes(start, end),
            "min",
            f"^^{_minutes(start, end)}^{begin}^{finish}",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            _components(status, status, "HL70278"),
        ]
    )


def _pid(person: Person) -> str:
    ids = [f"{escape(value)}^^^{escape(system)}^MR" for system, value in person.identifiers]
    ids.append(f"{escape(person.id)}^^^{SENDING_APPLICATION}^PI")
    return "|".join(
        [
            "PID",
            "1",
            "",
            "~".join(ids),
            "",
            _components(person.family, person.given),
            "",
            person.birth_date.strftime("%Y%m%d"),
            GENDER.get(person.gender, "U"),
        ]
    )


def _segment(
    name: str, number: int, action: str, what: str, kind: str, begin: str, minutes: str
) -> str:
    """An AIS, AIG, AIL or AIP: the resource, its kind or role, and when and how long (AIG
    has two fields more before its start)."""
    before_start = ["", "", ""] if name == "AIG" else [""]
    return "|".join(
        [name, str(number), action, what, kind, *before_start, begin, "", "", minutes, "min"]
    )


def _resource_segment(
    resource: Resource,
    number: int,
    action: str,
    begin: str,
    minutes: str,
    location_id: str = "",
    location_name: str = "",
) -> str:
    """AIP for a provider, AIL for a room (within its clinic), AIG for a device."""
    if resource.category == "provider":
        return _segment(
            "AIP",
            number,
            action,
            _components(resource.id, resource.name),
            _components(resource.role),
            begin,
            minutes,
        )
    if resource.category == "room":
        place = f"{escape(location_id)}^{escape(resource.id)}^^{escape(location_name)}"
        return _segment(
            "AIL",
            number,
            action,
            place.rstrip("^"),
            "ROOM^" + escape(resource.name),
            begin,
            minutes,
        )
    return _segment(
        "AIG",
        number,
        action,
        _components(resource.id, resource.name),
        _components(resource.role),
        begin,
        minutes,
    )


def _resources(visit: Visit, action: str) -> list[str]:
    begin = timestamp(visit.start, visit.time_zone)
    minutes = _minutes(visit.start, visit.end)
    segments = [
        "|".join(
            [
                "AIS",
                "1",
                action,
                _components(visit.type_id, visit.type_name),
                begin,
                "",
                "",
                minutes,
                "min",
            ]
        ),
        _segment(
            "AIL",
            1,
            action,
            f"{escape(visit.location_id)}^^^{escape(visit.location_name)}",
            "CLINIC^Clinic",
            begin,
            minutes,
        ),
    ]
    counters = {"AIG": 0, "AIL": 1, "AIP": 0}
    names = {"provider": "AIP", "room": "AIL"}
    for resource in visit.resources:
        name = names.get(resource.category, "AIG")
        counters[name] += 1
        segments.append(
            _resource_segment(
                resource,
                counters[name],
                action,
                begin,
                minutes,
                visit.location_id,
                visit.location_name,
            )
        )
    return segments


ACTIONS = {"S12": "A", "S13": "U", "S14": "U", "S15": "D", "S17": "D", "S26": "U"}


def appointment_message(
    endpoint: Endpoint, trigger: str, control_id: str, at: dt.datetime, visit: Visit
) -> str:
    """An SIU message about one appointment, segments separated by CR."""
    action = ACTIONS[trigger]
    segments = [
        msh(endpoint, trigger, control_id, at),
        _sch(
            visit.appointment_id,
            FILLER_STATUS.get(visit.status, "Booked"),
            visit.start,
            visit.end,
            visit.time_zone,
            (visit.type_id, visit.type_name),
            visit.reason,
        ),
    ]
    if visit.patient is not None:
        segments += [_pid(visit.patient), "PV1|1|O"]
    segments.append(f"RGS|1|{action}")
    segments += _resources(visit, action)
    return "\r".join(segments) + "\r"


def blocked_message(
    endpoint: Endpoint,
    trigger: str,
    control_id: str,
    at: dt.datetime,
    block_id: str,
    kind: str,
    start: dt.datetime,
    end: dt.datetime,
    zone: str,
    resource: Resource,
) -> str:
    """S23 (time blocked) or S24 (opened again) for one resource."""
    action = "A" if trigger == "S23" else "D"
    begin, minutes = timestamp(start, zone), _minutes(start, end)
    what = BLOCKING.get(kind, kind)
    segments = [
        msh(endpoint, trigger, control_id, at),
        _sch(block_id, "Blocked", start, end, zone, ("BLOCKED", what), what),
        f"RGS|1|{action}",
    ]
    segments.append(_resource_segment(resource, 1, action, begin, minutes))
    return "\r".join(segments) + "\r"


def trigger_of(event_type: str, payload: Mapping[str, Any], announced: bool) -> str | None:
    """The SIU trigger an appointment event becomes, if any. ``announced``: whether the
    endpoint has been told of the booking (S12) already."""
    if event_type == "Appointment.Booked":
        return "S12" if not announced else None
    if not announced:
        return None  # never booked as far as the EMR knows: nothing to change or cancel
    if event_type == "Appointment.Rescheduled":
        return "S13"
    if event_type == "Appointment.Cancelled":
        return "S15"
    if event_type == "Appointment.AttendanceConfirmed":
        return "S14"
    if event_type == "Appointment.StatusChanged":
        status = str(payload.get("status"))
        return {"noshow": "S26", "entered-in-error": "S17", "cancelled": "S15"}.get(status, "S14")
    return None


def parse_ack(text: str) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id it acknowledges, error text) of an ACK."""
    code, control, error = "", "", ""
    for segment in text.replace("\n", "\r").split("\r"):
        fields = segment.split("|")
        if fields[0] == "MSA":
            code = fields[1] if len(fields) > 1 else ""
            control = fields[2] if len(fields) > 2 else ""
            error = fields[3] if len(fields) > 3 else ""
        elif fields[0] == "ERR" and not error:
            error = "|".join(fields[1:])
    return code, control, error


def lines(message: str) -> Sequence[str]:
    return [s for s in message.split("\r") if s]


def segment_names(message: str) -> list[str]:
    return [s.split("|", 1)[0] for s in lines(message)]


def identifiers(records: Iterable[Mapping[str, str]]) -> tuple[tuple[str, str], ...]:
    """Identifiers of a patient record, MRNs (systems naming an MR) first."""
    pairs = [(str(r.get("system", "")), str(r.get("value", ""))) for r in records]
    return tuple(sorted(pairs, key=lambda p: 0 if "mr" in p[0].lower() else 1))
