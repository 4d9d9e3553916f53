"""The FHIR R4 resources the bridge serves, written from booking's facts (pure).

Each builder gives the resource as FHIR JSON (a dict); ``validated`` checks it against the
R4B models of ``fhir.resources`` (structure and types) and against the R4 value sets the
models leave unchecked (Appointment.status, participant status and required, Slot.status,
gender, contact point system and use, identifier use), so nothing the bridge serves carries
a code an EMR would reject.

Ids are booking's UUIDs (FHIR ids allow 64 characters of ``[A-Za-z0-9-.]``); references
are relative (``Patient/{id}``). Booking's own codes travel as codings of the platform's
systems (``SYSTEM`` + ``/appointment-type`` etc.) with their names as display.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from uuid import UUID

from fhir.resources.R4B import get_fhir_model_class

from clinic.events import patients as pat
from clinic.events import reference as ref

SYSTEM = "https://clinic.example/fhir/CodeSystem"
"""The platform's code systems (appointment types, resource kinds, specialties)."""

VALUE_SETS: dict[str, frozenset[str]] = {
    # http://hl7.org/fhir/R4/valueset-appointmentstatus.html
    "appointment-status": frozenset({"proposed", "pending", "booked", "arrived", "fulfilled",
                                     "cancelled", "noshow", "entered-in-error", "checked-in",
                                     "waitlist"}),
    # http://hl7.org/fhir/R4/valueset-participationstatus.html
    "participation-status": frozenset({"accepted", "declined", "tentative", "needs-action"}),
    # http://hl7.org/fhir/R4/valueset-participantrequired.html
    "participant-required": frozenset({"required", "optional", "information-only"}),
    # http://hl7.org/fhir/R4/valueset-slotstatus.html
    "slot-status": frozenset({"busy", "free", "busy-unavailable", "busy-tentative",
                              "entered-in-error"}),
    # http://hl7.org/fhir/R4/valueset-administrative-gender.html
    "administrative-gender": frozenset({"male", "female", "other", "unknown"}),
    # http://hl7.org/fhir/R4/valueset-contact-point-system.html
    "contact-point-system": frozenset({"phone", "fax", "email", "pager", "url", "sms",
                                       "other"}),
    # http://hl7.org/fhir/R4/valueset-device-status.html
    "device-status": frozenset({"active", "inactive", "entered-in-error", "unknown"}),
    # http://hl7.org/fhir/R4/valueset-location-status.html
    "location-status": frozenset({"active", "suspended", "inactive"}),
    # http://hl7.org/fhir/R4/valueset-contact-point-use.html
    "contact-point-use": frozenset({"home", "work", "temp", "old", "mobile"}),
}  # fmt: skip


class InvalidResourceError(ValueError):
    """A resource the bridge would have served that FHIR R4 does not allow (a bug)."""


@cache
def _model(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` after checking it with the R4B model of its type and the value sets."""
    try:
        _model(resource["resourceType"]).model_validate(resource)
    except (KeyError, ValueError) as error:
        raise InvalidResourceError(f"{resource.get('resourceType')}: {error}") from error
    return coded(resource)


def coded(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` after checking its codes against the R4 value sets only (for resources
    written on a request's path by builders the tests validate in full)."""
    for path, value_set, value in _codes(resource):
        if value not in VALUE_SETS[value_set]:
            raise InvalidResourceError(f"{path} = {value!r} is not in {value_set}")
    return resource


def _codes(resource: dict[str, Any]) -> Iterable[tuple[str, str, str]]:
    kind = resource["resourceType"]
    if kind == "Appointment":
        yield "Appointment.status", "appointment-status", resource["status"]
        for p in resource.get("participant", ()):
            yield "Appointment.participant.status", "participation-status", p["status"]
            if "required" in p:
                yield "Appointment.participant.required", "participant-required", p["required"]
    if kind == "Slot":
        yield "Slot.status", "slot-status", resource["status"]
    if kind == "Device":
        yield "Device.status", "device-status", resource["status"]
    if kind == "Location":
        yield "Location.status", "location-status", resource["status"]
    if kind == "Patient" and "gender" in resource:
        yield "Patient.gender", "administrative-gender", resource["gender"]
    for telecom in resource.get("telecom", ()):
        yield f"{kind}.telecom.system", "contact-point-system", telecom["system"]
        if "use" in telecom:
            yield f"{kind}.telecom.use", "contact-point-use", telecom["use"]


def instant(value: dt.datetime) -> str:
    """A FHIR instant: UTC, seconds, ``Z``."""
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def meta(version: int, updated: dt.datetime) -> dict[str, str]:
    return {"versionId": str(version), "lastUpdated": instant(updated)}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": f"{SYSTEM}/{system}", "code": code}
    return {"coding": [coding | ({"display": display} if display else {})],
            **({"text": display} if display else {})}  # fmt: skip


def _address(parts: Mapping[str, str]) -> dict[str, Any]:
    known = {k.lower().replace("-", "_"): v for k, v in parts.items() if v}
    lines = [known.pop(k) for k in ("line", "line1", "line2", "line3", "street") if k in known]
    address: dict[str, Any] = {"line": lines} if lines else {}
    for ours, theirs in (("city", "city"), ("district", "district"), ("state", "state"),
                         ("postal_code", "postalCode"), ("country", "country")):  # fmt: skip
        if ours in known:
            address[theirs] = known.pop(ours)
    if known:  # parts FHIR has no element for: kept readable
        address["text"] = ", ".join(f"{k}: {v}" for k, v in sorted(known.items()))
    return address


# -- reference data ----------------------------------------------------------------------------


def organization(
    event: ref.OrganizationRegistered, version: int, at: dt.datetime
) -> dict[str, Any]:
    return validated({
        "resourceType": "Organization", "id": str(event.organization_id),
        "meta": meta(version, at), "active": True, "name": event.name,
    })  # fmt: skip


def location(
    event: ref.LocationRegistered, org: UUID, version: int, at: dt.datetime, retired: bool = False
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Location", "id": str(event.location_id), "meta": meta(version, at),
        "status": "inactive" if retired else "active", "name": event.name,
        "managingOrganization": {"reference": f"Organization/{org}"},
        "extension": [{"url": f"{SYSTEM}/time-zone", "valueCode": event.time_zone}],
    }  # fmt: skip
    address = _address(event.address)
    if address:
        resource["address"] = address
    return validated(resource)


def practitioner(
    event: ref.ResourceRegistered, version: int, at: dt.datetime, retired: bool = False
) -> dict[str, Any]:
    """A provider, as the person (a room or device is not a Practitioner), with the
    languages they see patients in (``communication``, BCP 47 codes)."""
    resource: dict[str, Any] = {
        "resourceType": "Practitioner", "id": str(event.resource_id), "meta": meta(version, at),
        "active": not retired, "name": [{"text": event.name}],
    }  # fmt: skip
    if event.languages:
        resource["communication"] = [
            {"coding": [{"system": "urn:ietf:bcp:47", "code": code}]} for code in event.languages
        ]
    return validated(resource)


def practitioner_role(
    event: ref.ResourceRegistered, org: UUID, version: int, at: dt.datetime, retired: bool = False
) -> dict[str, Any]:
    """What the provider does, where, for which organisation (id: the resource's)."""
    return validated({
        "resourceType": "PractitionerRole", "id": str(event.resource_id),
        "meta": meta(version, at), "active": not retired,
        "practitioner": {"reference": f"Practitioner/{event.resource_id}",
                         "display": event.name},
        "organization": {"reference": f"Organization/{org}"},
        "code": [_coding("resource-kind", event.kind, event.kind)],
        "specialty": [_coding("specialty", s, s) for s in event.specialties],
        "location": [{"reference": f"Location/{x}"} for x in event.location_ids],
    })  # fmt: skip


def healthcare_service(
    event: ref.AppointmentTypeDefined,
    org: UUID,
    version: int,
    at: dt.datetime,
    retired: bool = False,
) -> dict[str, Any]:
    """An appointment type patients or staff can book."""
    resource: dict[str, Any] = {
        "resourceType": "HealthcareService", "id": str(event.appointment_type_id),
        "meta": meta(version, at), "active": not retired,
        "providedBy": {"reference": f"Organization/{org}"},
        "type": [_coding("appointment-type", str(event.appointment_type_id), event.name)],
        "name": event.name, "appointmentRequired": True,
    }  # fmt: skip
    if event.specialty:
        resource["specialty"] = [_coding("specialty", event.specialty, event.specialty)]
    if event.preparation:
        resource["comment"] = event.preparation
    return validated(resource)


def room(
    event: ref.ResourceRegistered, org: UUID, version: int, at: dt.datetime, retired: bool = False
) -> dict[str, Any]:
    """A room is a Location (an instance of physical type "room") within the clinic's."""
    resource: dict[str, Any] = {
        "resourceType": "Location", "id": str(event.resource_id), "meta": meta(version, at),
        "status": "inactive" if retired else "active", "name": event.name, "mode": "instance",
        "type": [_coding("resource-kind", event.kind, event.kind)],
        "physicalType": {"coding": [{"system": PHYSICAL_TYPE, "code": "ro", "display": "Room"}]},
        "managingOrganization": {"reference": f"Organization/{org}"},
    }  # fmt: skip
    if event.location_ids:
        resource["partOf"] = {"reference": f"Location/{event.location_ids[0]}"}
    return validated(resource)


PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"


def device(
    event: ref.ResourceRegistered, org: UUID, version: int, at: dt.datetime, retired: bool = False
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Device", "id": str(event.resource_id), "meta": meta(version, at),
        "status": "inactive" if retired else "active",
        "deviceName": [{"name": event.name, "type": "user-friendly-name"}],
        "type": _coding("resource-kind", event.kind, event.kind),
        "owner": {"reference": f"Organization/{org}"},
    }  # fmt: skip
    if event.location_ids:
        resource["location"] = {"reference": f"Location/{event.location_ids[0]}"}
    return validated(resource)


CATEGORY_TO_ACTOR = {"provider": "Practitioner", "room": "Location", "device": "Device"}

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def schedule(
    event: ref.ResourceRegistered,
    hours: Iterable[Mapping[str, Any]],
    version: int,
    at: dt.datetime,
    retired: bool = False,
) -> dict[str, Any]:
    """The resource's bookable time: its actor, the clinics it works at, and its weekly
    hours as text (FHIR has no element for them; the Slots show what is taken)."""
    actor = CATEGORY_TO_ACTOR.get(event.category, "Device")
    actors = [{"reference": f"{actor}/{event.resource_id}", "display": event.name}]
    actors += [{"reference": f"Location/{x}"} for x in event.location_ids]
    resource: dict[str, Any] = {
        "resourceType": "Schedule", "id": str(event.resource_id), "meta": meta(version, at),
        "active": not retired, "actor": actors,
    }  # fmt: skip
    if event.specialties:
        resource["specialty"] = [_coding("specialty", s, s) for s in event.specialties]
    lines = [
        f"{WEEKDAYS[int(h['weekday'])]} {str(h['start'])[:5]}-{str(h['end'])[:5]}"
        f" at Location/{h['location_id']}"
        + (f" from {h['effective_from']}" if h.get("effective_from") else "")
        + (f" until {h['effective_until']}" if h.get("effective_until") else "")
        for h in sorted(hours, key=lambda h: (int(h["weekday"]), str(h["start"])))
    ]
    if lines:
        resource["comment"] = f"Weekly hours ({event.time_zone}): " + "; ".join(lines)
    return validated(resource)


def slot(
    slot_id: str,
    resource_id: UUID,
    status: str,
    start: dt.datetime,
    end: dt.datetime,
    version: int,
    at: dt.datetime,
    overbooked: bool = False,
    comment: str | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Slot", "id": slot_id, "meta": meta(version, at),
        "schedule": {"reference": f"Schedule/{resource_id}"}, "status": status,
        "start": instant(start), "end": instant(end),
    }  # fmt: skip
    if overbooked:
        resource["overbooked"] = True
    if comment:
        resource["comment"] = comment
    return validated(resource)


# -- patients -----------------------------------------------------------------------------------


def patient(
    patient_id: UUID, record: pat.PatientRecord, org: UUID, version: int, at: dt.datetime
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient", "id": str(patient_id), "meta": meta(version, at),
        "active": record.merged_into is None,
        "identifier": [{"system": i.system, "value": i.value} for i in record.identifiers],
        "name": [{"family": record.family_name, "given": [record.given_name]}],
        "gender": str(record.gender), "birthDate": record.birth_date.isoformat(),
        "managingOrganization": {"reference": f"Organization/{org}"},
        "communication": [{"language": {"coding": [
            {"system": "urn:ietf:bcp:47", "code": record.language}]}, "preferred": True}],
    }  # fmt: skip
    telecom = [
        {"system": c.system, "value": c.value} | ({"use": c.use} if c.use else {})
        for c in record.contacts
        if c.system in VALUE_SETS["contact-point-system"]
    ]
    if telecom:
        resource["telecom"] = telecom
    if record.address is not None:
        a = record.address
        address = _address({"city": a.city, "district": a.district, "state": a.state,
                            "postal_code": a.postal_code, "country": a.country})  # fmt: skip
        if a.lines:
            address = {"line": list(a.lines), **address}
        if address:
            resource["address"] = [address]
    if record.merged_into is not None:
        resource["link"] = [{"other": {"reference": f"Patient/{record.merged_into}"},
                             "type": "replaced-by"}]  # fmt: skip
    if not resource["identifier"]:
        del resource["identifier"]
    return validated(resource)


# -- appointments ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppointmentState:
    """An appointment as booking's events left it (the bridge's projection keeps this)."""

    appointment_id: UUID
    organization_id: UUID
    patient_id: UUID
    location_id: UUID
    appointment_type_id: UUID
    type_name: str
    status: str
    start: dt.datetime
    end: dt.datetime
    created: dt.datetime
    participants: tuple[tuple[str, UUID, str], ...] = field(default_factory=tuple)
    """(resource kind, resource id, role)."""
    cancellation_reason: str | None = None
    attendance_confirmed: bool = False
    specialty: str | None = None


def appointment(state: AppointmentState, version: int, at: dt.datetime) -> dict[str, Any]:
    """The patient ``accepted`` once they confirmed they will come, ``needs-action`` until
    then; ``declined`` once cancelled. The place and the resources that hold the time are
    ``accepted`` participants (a room is a Location, a device a Device)."""
    cancelled = state.status in ("cancelled", "entered-in-error")
    patient_status = (
        "declined" if cancelled
        else "accepted" if state.attendance_confirmed or state.status not in ("pending", "booked")
        else "needs-action"
    )  # fmt: skip
    held = "declined" if cancelled else "accepted"
    participants: list[dict[str, Any]] = [
        {"actor": {"reference": f"Patient/{state.patient_id}"}, "required": "required",
         "status": patient_status},
        {"actor": {"reference": f"Location/{state.location_id}"}, "required": "required",
         "status": held},
    ]  # fmt: skip
    for kind, resource_id, role in state.participants:
        actor = CATEGORY_TO_ACTOR.get(kind, "Device")
        participants.append({
            "type": [_coding("role", role, role)],
            "actor": {"reference": f"{actor}/{resource_id}"}, "required": "required",
            "status": held,
        })  # fmt: skip
    resource: dict[str, Any] = {
        "resourceType": "Appointment", "id": str(state.appointment_id),
        "meta": meta(version, at), "status": state.status,
        "serviceType": [_coding("appointment-type", str(state.appointment_type_id),
                                state.type_name or None)],
        "start": instant(state.start), "end": instant(state.end),
        "minutesDuration": max(1, int((state.end - state.start).total_seconds() // 60)),
        "created": instant(state.created),
        "identifier": [{"system": f"{SYSTEM}/appointment", "value": str(state.appointment_id)}],
        "participant": participants,
    }  # fmt: skip
    if state.specialty:
        resource["specialty"] = [_coding("specialty", state.specialty, state.specialty)]
    if state.cancellation_reason and cancelled:
        resource["cancelationReason"] = {"text": state.cancellation_reason}
    return validated(resource)
