"""Every role against every route of /v1, as a table: ✓ the role may call it (the answer is
whatever the request deserves, never 401 or 403), ✗ it is refused with 403. Then every route
that takes an id, given another organisation's id: 404 for every role, and nothing of the
other organisation changes. And a patient cannot read another patient.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import httpx
import pytest
from gateway_platform import Clinic, Platform, open_gateway_clinic, wait_until

pytestmark = pytest.mark.integration

ROLES = ("patient", "front_desk", "provider", "clinic_admin", "org_admin", "ops")
DAY = (dt.date.today() + dt.timedelta(days=3)).isoformat()
LATER = (dt.date.today() + dt.timedelta(days=40)).isoformat()
HOURS = {"hours": [{"location_id": "{location}", "weekday": d, "start": "00:00", "end": "23:59"}
                   for d in range(7)]}  # fmt: skip
TYPE = {"name": "Matrix visit", "steps": [{"name": "visit", "duration_minutes": 15,
        "requirements": [{"role": "physician", "category": "provider"}]}]}  # fmt: skip
RESERVE = {"appointment_type_id": "{type}", "location_id": "{location}",
           "patient_id": "{patient}", "start": "{slot}"}  # fmt: skip
NEW_PATIENT = {"given_name": "Cleo", "family_name": "Matrix", "birth_date": "1990-02-03"}
WAIT = {"patient_id": "{patient}", "appointment_type_id": "{type}",
        "location_ids": ["{location}"], "earliest": DAY, "latest": LATER}  # fmt: skip
BLOCK = {"kind": "blocked", "start": f"{LATER}T10:00:00Z", "end": f"{LATER}T11:00:00Z"}
SEARCH = "appointment_type_id={type}&location_id={location}&from=" + DAY + "&to=" + DAY
R = "{random}"

# method, path, body, then per role (patient, front desk, provider, clinic admin, org admin, ops)
MATRIX: list[tuple[str, str, Any, str]] = [
    ("GET", "/v1", None,                                                            "✓✓✓✓✓✓"),
    ("GET", "/v1/me", None,                                                         "✓✓✓✓✓✓"),
    ("GET", "/v1/live", None,                                                       "✓✓✓✓✓✗"),
    ("GET", f"/v1/links/{R}", None,                                                 "✓✓✓✓✓✓"),
    ("POST", f"/v1/links/{R}", {},                                                  "✓✓✓✓✓✓"),
    ("GET", "/v1/slots?" + SEARCH, None,                                            "✓✓✓✓✓✓"),
    ("GET", "/v1/slots/next-available?appointment_type_id={type}", None,            "✓✓✓✓✓✓"),
    ("POST", "/v1/holds", RESERVE,                                                  "✓✓✓✓✓✗"),
    ("POST", "/v1/appointments", RESERVE,                                           "✓✓✓✓✓✗"),
    ("GET", "/v1/appointments/{appointment}", None,                                 "✓✓✓✓✓✗"),
    ("GET", "/v1/appointments/{appointment}/history", None,                         "✓✓✓✓✓✗"),
    ("GET", "/v1/appointments/{appointment}/messages", None,                        "✓✓✓✓✓✗"),
    ("POST", "/v1/appointments/{appointment}/confirm", None,                        "✓✓✓✓✓✗"),
    ("POST", "/v1/appointments/{appointment}/confirm-attendance", None,             "✓✓✓✓✓✗"),
    ("POST", "/v1/appointments/{appointment}/check-in", None,                       "✗✓✓✓✓✗"),
    ("POST", "/v1/appointments/{appointment}/arrive", None,                         "✗✓✓✓✓✗"),
    ("POST", "/v1/appointments/{appointment}/complete", None,                       "✗✓✓✓✓✗"),
    ("POST", "/v1/appointments/{appointment}/no-show", None,                        "✗✓✓✓✓✗"),
    ("POST", "/v1/appointments/{appointment}/reschedule", {"start": "{slot}"},      "✓✓✓✓✓✗"),
    ("POST", "/v1/appointments/{appointment}/cancel", {"reason": "matrix"},         "✓✓✓✓✓✗"),
    ("GET", "/v1/patients?identifier=urn:x|1", None,                                "✗✓✓✓✓✗"),
    ("POST", "/v1/patients", NEW_PATIENT,                                           "✗✓✗✓✓✗"),
    ("GET", "/v1/patients/{patient}", None,                                         "✓✓✓✓✓✗"),
    ("PATCH", "/v1/patients/{patient}", {"given_name": "ana"},                      "✓✓✗✓✓✗"),
    ("PUT", "/v1/patients/{patient}/preferences", {"language": "en"},               "✓✓✗✓✓✗"),
    ("GET", "/v1/patients/{patient}/contact-preferences", None,                     "✓✓✓✓✓✗"),
    ("PUT", "/v1/patients/{patient}/opt-outs/sms", None,                            "✓✓✗✓✓✗"),
    ("DELETE", "/v1/patients/{patient}/opt-outs/sms", None,                         "✓✓✗✓✓✗"),
    ("GET", "/v1/patients/{patient}/appointments", None,                            "✓✓✓✓✓✗"),
    ("GET", "/v1/me/appointments", None,                                            "✓✗✗✗✗✗"),
    ("POST", "/v1/waitlist-entries", WAIT,                                          "✓✓✗✓✓✗"),
    ("GET", "/v1/waitlist-entries", None,                                           "✓✓✓✓✓✗"),
    ("GET", "/v1/waitlist-entries/{entry}", None,                                   "✓✓✓✓✓✗"),
    ("POST", "/v1/waitlist-entries/{entry}/leave", {"reason": "matrix"},            "✓✓✗✓✓✗"),
    ("GET", "/v1/waitlist-offers", None,                                            "✗✓✗✓✓✗"),
    ("GET", "/v1/locations/{location}/calendar?date=" + DAY, None,                  "✗✓✓✓✓✗"),
    ("GET", "/v1/providers/{provider}/calendar?date=" + DAY + "&days=7", None,      "✗✓✓✓✓✗"),
    ("GET", f"/v1/rooms/{R}/calendar?date=" + DAY, None,                            "✗✓✓✓✓✗"),
    ("GET", f"/v1/devices/{R}/calendar?date=" + DAY, None,                          "✗✓✓✓✓✗"),
    ("GET", "/v1/locations", None,                                                  "✓✓✓✓✓✓"),
    ("GET", "/v1/locations/{location}", None,                                       "✓✓✓✓✓✓"),
    ("POST", "/v1/locations", {"name": "X", "time_zone": "Europe/Berlin"},          "✗✗✗✗✓✗"),
    ("PATCH", "/v1/locations/{location}", {"name": "Mitte"},                        "✗✗✗✗✓✗"),
    ("POST", f"/v1/locations/{R}/retire", {"reason": "matrix"},                     "✗✗✗✗✓✗"),
    ("GET", "/v1/providers", None,                                                  "✓✓✓✓✓✓"),
    ("GET", "/v1/providers/{provider}", None,                                       "✓✓✓✓✓✓"),
    ("POST", "/v1/providers", {"name": "Dr. C", "kind": "physician",
                               "location_ids": ["{location}"]},                     "✗✗✗✓✓✗"),
    ("PATCH", "/v1/providers/{provider}", {"name": "Dr. A"},                        "✗✗✗✓✓✗"),
    ("POST", f"/v1/providers/{R}/retire", {"reason": "matrix"},                     "✗✗✗✓✓✗"),
    ("GET", "/v1/providers/{provider}/schedule", None,                              "✗✓✓✓✓✓"),
    ("PUT", "/v1/providers/{provider}/schedule/weekly-hours", HOURS,                "✗✗✗✓✓✗"),
    ("POST", "/v1/providers/{provider}/schedule/exceptions", BLOCK,                 "✗✗✗✓✓✗"),
    ("DELETE", f"/v1/providers/{{provider}}/schedule/exceptions/{R}", None,         "✗✗✗✓✓✗"),
    ("GET", "/v1/rooms", None,                                                      "✓✓✓✓✓✓"),
    ("GET", f"/v1/rooms/{R}", None,                                                 "✓✓✓✓✓✓"),
    ("POST", "/v1/rooms", {"name": "Room 9", "kind": "exam-room",
                           "location_ids": ["{location}"]},                         "✗✗✗✓✓✗"),
    ("GET", "/v1/devices", None,                                                    "✓✓✓✓✓✓"),
    ("GET", f"/v1/devices/{R}", None,                                               "✓✓✓✓✓✓"),
    ("POST", "/v1/devices", {"name": "ECG", "kind": "ecg",
                             "location_ids": ["{location}"]},                       "✗✗✗✓✓✗"),
    ("PATCH", f"/v1/devices/{R}", {"name": "ECG"},                                  "✗✗✗✓✓✗"),
    ("POST", f"/v1/devices/{R}/retire", {"reason": "matrix"},                       "✗✗✗✓✓✗"),
    ("GET", f"/v1/devices/{R}/schedule", None,                                      "✗✓✓✓✓✓"),
    ("PUT", f"/v1/devices/{R}/schedule/weekly-hours", HOURS,                        "✗✗✗✓✓✗"),
    ("POST", f"/v1/devices/{R}/schedule/exceptions", BLOCK,                         "✗✗✗✓✓✗"),
    ("DELETE", f"/v1/devices/{R}/schedule/exceptions/{R}", None,                    "✗✗✗✓✓✗"),
    ("PATCH", f"/v1/rooms/{R}", {"name": "Room 9"},                                 "✗✗✗✓✓✗"),
    ("POST", f"/v1/rooms/{R}/retire", {"reason": "matrix"},                         "✗✗✗✓✓✗"),
    ("GET", f"/v1/rooms/{R}/schedule", None,                                        "✗✓✓✓✓✓"),
    ("PUT", f"/v1/rooms/{R}/schedule/weekly-hours", HOURS,                          "✗✗✗✓✓✗"),
    ("POST", f"/v1/rooms/{R}/schedule/exceptions", BLOCK,                           "✗✗✗✓✓✗"),
    ("DELETE", f"/v1/rooms/{R}/schedule/exceptions/{R}", None,                      "✗✗✗✓✓✗"),
    ("GET", "/v1/appointment-types", None,                                          "✓✓✓✓✓✓"),
    ("GET", "/v1/appointment-types/{type}", None,                                   "✓✓✓✓✓✓"),
    ("POST", "/v1/appointment-types", TYPE,                                         "✗✗✗✓✓✗"),
    ("PATCH", "/v1/appointment-types/{type}", {"preparation": "bring your card"},   "✗✗✗✓✓✗"),
    ("POST", f"/v1/appointment-types/{R}/retire", {"reason": "matrix"},             "✗✗✗✓✓✗"),
    ("GET", "/v1/kpis?from=" + DAY + "&to=" + DAY, None,                            "✗✗✗✓✓✓"),
    ("GET", "/v1/audit-events", None,                                               "✗✗✗✗✓✗"),
]  # fmt: skip


def test_the_table_names_every_operation_of_the_api() -> None:
    from clinic.gateway.main import create_app

    def shape(path: str) -> str:
        return re.sub(r"\{[a-z_]+\}", "{}", path.split("?")[0].replace("/sms", "/{}"))

    tabled = {(method, shape(path)) for method, path, _, _ in MATRIX}
    served = {
        (method.upper(), shape(path))
        for path, operations in create_app().openapi()["paths"].items()
        for method in operations
    }
    assert served - tabled == set()
    assert tabled - served == set()


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, known in ids.items():
            value = value.replace("{" + name + "}", known)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def _send(client: httpx.Client, method: str, path: str, body: Any) -> httpx.Response:
    headers = {"Idempotency-Key": str(uuid.uuid4())} if method != "GET" else {}
    if path.startswith("/v1/live"):  # a stream that never ends: its first event will do
        with client.stream(method, path) as answer:
            if answer.status_code == 200:
                next(answer.iter_lines())
            else:
                answer.read()
            return answer
    return client.request(method, path, json=body, headers=headers)


def _ids(platform: Platform, clinic: Clinic) -> dict[str, str]:
    """The clinic's ids, with a booked appointment of the first patient at the first
    location, a waitlist entry of theirs, and a free slot."""
    desk = platform.client(clinic.tokens["org_admin"])
    query = {"appointment_type_id": clinic.ids.kind, "location_id": clinic.ids.location,
             "from": DAY, "to": DAY, "page_size": 20}  # fmt: skip
    found = wait_until(lambda: desk.get("/v1/slots", params=query).json().get("slots"))
    assert found, "no free time found"
    ids = {"type": clinic.ids.kind, "location": clinic.ids.location,
           "provider": clinic.ids.doctor, "patient": clinic.patients[0]}  # fmt: skip
    booked = _send(
        desk, "POST", "/v1/appointments", _fill(RESERVE, {**ids, "slot": found[0]["start"]})
    )
    assert booked.status_code == 201, booked.text
    entry = _send(desk, "POST", "/v1/waitlist-entries", _fill(WAIT, ids))
    assert entry.status_code == 201, entry.text
    return {**ids, "appointment": booked.json()["id"], "entry": entry.json()["id"],
            "slot": found[-1]["start"]}  # fmt: skip


@pytest.fixture(scope="module")
def clinics(gateway_platform: Platform) -> tuple[Clinic, dict[str, str], Clinic, dict[str, str]]:
    here = open_gateway_clinic(gateway_platform, "Matrix Clinic")
    other = open_gateway_clinic(gateway_platform, "Other Group")
    return here, _ids(gateway_platform, here), other, _ids(gateway_platform, other)


def test_every_role_is_allowed_or_refused_each_route_as_the_table_says(
    gateway_platform: Platform, clinics: tuple[Clinic, dict[str, str], Clinic, dict[str, str]]
) -> None:
    clinic, ids, _, _ = clinics
    wrong: list[str] = []
    for method, template, body, expected in MATRIX:
        for role, mark in zip(ROLES, expected, strict=True):
            filled = {**ids, "random": str(uuid.uuid4())}
            with gateway_platform.client(clinic.tokens[role]) as client:
                answer = _send(client, method, _fill(template, filled), _fill(body, filled))
            if answer.status_code >= 500 or answer.status_code == 401:
                wrong.append(
                    f"{role} {method} {template}: {answer.status_code} {answer.text[:200]}"
                )
            elif mark == "✗" and answer.status_code != 403:
                wrong.append(f"{role} {method} {template}: {answer.status_code}, expected 403")
            elif mark == "✓" and answer.status_code == 403:
                wrong.append(f"{role} {method} {template}: 403 {answer.json()['detail']}")
    assert not wrong, "\n".join(wrong)


def test_another_organisations_ids_are_not_found_and_nothing_of_it_changes(
    gateway_platform: Platform, clinics: tuple[Clinic, dict[str, str], Clinic, dict[str, str]]
) -> None:
    clinic, _, other, theirs = clinics
    booking = httpx.Client(base_url=gateway_platform.booking, timeout=30)
    base = other.ids.base
    before = booking.get(f"{base}/appointments/{theirs['appointment']}").json()
    patient_before = booking.get(f"{base}/patients/{theirs['patient']}").json()
    wrong: list[str] = []
    for method, template, body, expected in MATRIX:
        takes_id = any("{" + name + "}" in template + str(body)
                       for name in ("appointment", "patient", "location", "provider", "type",
                                    "entry"))  # fmt: skip
        if not takes_id:
            continue
        for role, mark in zip(ROLES, expected, strict=True):
            if mark != "✓" or template.startswith("/v1/me"):
                continue
            filled = {**theirs, "random": str(uuid.uuid4())}
            with gateway_platform.client(clinic.tokens[role]) as client:
                answer = _send(client, method, _fill(template, filled), _fill(body, filled))
            # A patient naming anyone but themself is refused (403) whoever that is, so the
            # answer says nothing about whether the other id exists.
            names_patient = role == "patient" and "{patient}" in str(body)
            if answer.status_code != (403 if names_patient else 404):
                wrong.append(
                    f"{role} {method} {template}: {answer.status_code} {answer.text[:200]}"
                )
    assert not wrong, "\n".join(wrong)
    assert booking.get(f"{base}/appointments/{theirs['appointment']}").json() == before
    assert booking.get(f"{base}/patients/{theirs['patient']}").json() == patient_before


def test_a_patient_cannot_read_another_patient_or_their_appointments(
    gateway_platform: Platform, clinics: tuple[Clinic, dict[str, str], Clinic, dict[str, str]]
) -> None:
    clinic, ids, _, _ = clinics
    ben = clinic.patients[1]
    with gateway_platform.client(clinic.tokens["org_admin"]) as admin:
        query = {"appointment_type_id": ids["type"], "location_id": ids["location"],
                 "from": LATER, "to": LATER}  # fmt: skip
        slots = admin.get("/v1/slots", params=query).json()["slots"]
        for_ben = {"appointment_type_id": ids["type"], "location_id": ids["location"],
                   "patient_id": ben}  # fmt: skip
        bens = _send(admin, "POST", "/v1/appointments", {**for_ben, "start": slots[0]["start"]})
        assert bens.status_code == 201, bens.text
    with gateway_platform.client(clinic.tokens["patient"]) as ana:
        for path in (f"/v1/patients/{ben}", f"/v1/patients/{ben}/appointments",
                     f"/v1/patients/{ben}/contact-preferences",
                     f"/v1/appointments/{bens.json()['id']}",
                     f"/v1/appointments/{bens.json()['id']}/history"):  # fmt: skip
            answer = ana.get(path)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        cancel = _send(ana, "POST", f"/v1/appointments/{bens.json()['id']}/cancel", {"reason": "x"})
        assert cancel.status_code == 404
        booked_for_ben = _send(
            ana, "POST", "/v1/appointments", {**for_ben, "start": slots[1]["start"]}
        )
        assert booked_for_ben.status_code == 403
    with gateway_platform.client(clinic.tokens["org_admin"]) as admin:
        still = admin.get(f"/v1/appointments/{bens.json()['id']}").json()
        assert still["status"] == "booked"
