"""Patient demographics from an EMR, as the change booking's ``PATCH .../patients/{id}`` takes
(pure): from a FHIR Patient (``PUT Patient/{id}``) or an HL7 PID segment (ADT^A08).

Only what booking keeps is taken: name, birth date, gender, address, and phone and email
contacts. Identifiers find the patient; preferences and consents are the patient's own and
never come from an EMR.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

GENDERS_V2 = {
    "F": "female",
    "M": "male",
    "O": "other",
    "U": "unknown",
    "A": "other",
    "N": "unknown",
}
CONTACT_USES = frozenset({"home", "work", "mobile", "temp", "old"})
_COUNTRY = re.compile(r"^[A-Z]{2}$")


class DemographicsError(ValueError):
    """Demographics that cannot become booking's change."""


def _address(
    lines: list[str], city: str, district: str, state: str, postal: str, country: str
) -> dict[str, Any]:
    address: dict[str, Any] = {
        "lines": [x for x in lines if x][:4],
        "city": city[:100],
        "district": district[:100],
        "state": state[:100],
        "postal_code": postal[:20],
    }
    if _COUNTRY.match(country):
        address["country"] = country
    return address


def from_fhir(patient: dict[str, Any]) -> dict[str, Any]:
    """Booking's change from a (validated) FHIR Patient."""
    names = patient.get("name") or []
    if not names:
        raise DemographicsError("Patient.name is required")
    name = next((n for n in names if n.get("use") in ("official", "usual")), names[0])
    given = (name.get("given") or [""])[0]
    family = name.get("family") or ""
    if not given or not family:
        raise DemographicsError("Patient.name needs a family name and a given name")
    if "birthDate" not in patient or len(patient["birthDate"]) != 10:
        raise DemographicsError("Patient.birthDate (YYYY-MM-DD) is required")
    change: dict[str, Any] = {
        "given_name": given,
        "family_name": family,
        "birth_date": patient["birthDate"],
        "gender": patient.get("gender", "unknown"),
    }
    contacts = []
    for telecom in patient.get("telecom", ()):
        if telecom.get("system") in ("phone", "email", "sms") and telecom.get("value"):
            contact = {"system": telecom["system"], "value": telecom["value"]}
            if telecom.get("use") in CONTACT_USES:
                contact["use"] = telecom["use"]
            contacts.append(contact)
    change["contacts"] = contacts[:10]
    addresses = patient.get("address") or []
    if addresses:
        a = addresses[0]
        change["address"] = _address(
            list(a.get("line", ())),
            a.get("city", ""),
            a.get("district", ""),
            a.get("state", ""),
            a.get("postalCode", ""),
            a.get("country", ""),
        )
    return change


def identifiers_of_fhir(patient: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (i.get("system", ""), i["value"]) for i in patient.get("identifier", ()) if "value" in i
    ]


def from_pid(pid: list[list[list[str]]]) -> dict[str, Any]:
    """Booking's change from a PID segment, given as fields of repetitions of components
    (already unescaped)."""

    def component(field: int, index: int, repetition: int = 0) -> str:
        try:
            return pid[field][repetition][index]
        except IndexError:
            return ""

    family, given = component(5, 0), component(5, 1)
    if not family or not given:
        raise DemographicsError("PID-5 needs a family name and a given name")
    born = component(7, 0)[:8]
    try:
        birth = dt.datetime.strptime(born, "%Y%m%d").date()
    except ValueError:
        raise DemographicsError(f"PID-7 {born!r} is not a date (YYYYMMDD)") from None
    sex = component(8, 0)
    if sex and sex not in GENDERS_V2:
        raise DemographicsError(f"PID-8 {sex!r} is not an administrative sex (F, M, O, U, A, N)")
    change: dict[str, Any] = {
        "given_name": given,
        "family_name": family,
        "birth_date": birth.isoformat(),
        "gender": GENDERS_V2.get(sex, "unknown"),
    }
    if len(pid) > 11 and pid[11] and any(pid[11][0]):
        change["address"] = _address(
            [component(11, 0), component(11, 1)],
            component(11, 2),
            "",
            component(11, 3),
            component(11, 4),
            component(11, 5),
        )
    contacts = []
    for field, use in ((13, "home"), (14, "work")):
        for repetition in range(len(pid[field]) if len(pid) > field else 0):
            number = component(field, 0, repetition) or component(field, 11, repetition)
            email = component(field, 3, repetition)
            if email:
                contacts.append({"system": "email", "value": email})
            elif len(number) >= 3:
                kind = "mobile" if component(field, 2, repetition) == "CP" else use
                contacts.append({"system": "phone", "value": number, "use": kind})
    if contacts:
        change["contacts"] = contacts[:10]
    return change


def check(change: dict[str, Any], identifiers: list[tuple[str, str]]) -> None:
    """Refuse, before anything is sent to booking, what booking would refuse part-way
    through an update (so an update changes all it asks for, or nothing)."""
    for name in ("given_name", "family_name"):
        if not 1 <= len(change[name]) <= 200:
            raise DemographicsError(f"{name} must have 1 to 200 characters")
    born = dt.date.fromisoformat(change["birth_date"])
    if not dt.date(1900, 1, 1) <= born <= dt.date(2199, 12, 31):
        raise DemographicsError("birthDate must be from 1900 to 2199")
    for contact in change.get("contacts", ()):
        if not 3 <= len(contact["value"]) <= 200:
            raise DemographicsError("a telecom value must have 3 to 200 characters")
    address = change.get("address") or {}
    limits = {"city": 100, "district": 100, "state": 100, "postal_code": 20}
    if any(len(address.get(part, "")) > limit for part, limit in limits.items()) or any(
        not 1 <= len(line) <= 200 for line in address.get("lines", ())
    ):
        raise DemographicsError("an address part is too long (lines 200, city 100, postal 20)")
    for system, value in identifiers:
        if not (1 <= len(system) <= 200 and 1 <= len(value) <= 100):
            raise DemographicsError(
                "an identifier's system has 1 to 200 characters, its value 1 to 100"
            )
        if not (system + value).isprintable():
            raise DemographicsError("an identifier holds a character that cannot be printed")
