"""The scheduling operations end to end, with booking, availability and the bridge as
processes on the real broker and PostgreSQL: $find proposes what availability offers; $hold
blocks the time against every channel; $book books a hold, a proposal or a whole Appointment
(once, with If-None-Exist), moves and cancels; a $book that loses a race gets an
OperationOutcome; every change is booking's, made with the EMR client as the actor; bad input
is an OperationOutcome and changes nothing."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from emr_client import ADMIN_TOKEN, fhir_client

from clinic.devstack.testing import STAFF, RunningService, command, open_clinic
from clinic.emr_bridge.fhir import validated

MRN = "urn:oid:2.16.840.1.113883.3.1234"
FHIR = {"Content-Type": "application/fhir+json"}


def parameters(**values: Any) -> dict[str, Any]:
    found = []
    for name, value in values.items():
        name = name.replace("_", "-")
        if isinstance(value, dict) and "resourceType" in value:
            found.append({"name": name, "resource": value})
        elif isinstance(value, dict):
            found.append({"name": name, "valueReference": value})
        else:
            found.append({"name": name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": found}


class Bridge:
    def __init__(self, start: Callable[..., RunningService], schema: str) -> None:
        self.booking = start("clinic.booking", "BOOKING_", BOOKING_LOAD_DEMO_DATA="false")
        self.availability = start(
            "clinic.availability",
            "AVAILABILITY_",
            schema=f"{schema}_av",
            AVAILABILITY_CONSUMER_GROUP=f"availability-{schema}",
            BOOKING_URL=self.booking.url,
        )
        self.bridge = start(
            "clinic.emr_bridge",
            "EMR_BRIDGE_",
            schema=f"{schema}_br",
            EMR_BRIDGE_CONSUMER_GROUP=f"bridge-{schema}",
            EMR_BRIDGE_MLLP_PORT="0",
            EMR_BRIDGE_ADMIN_TOKEN=ADMIN_TOKEN,
            BOOKING_URL=self.booking.url,
            AVAILABILITY_URL=self.availability.url,
        )
        self.b = httpx.Client(base_url=self.booking.url, timeout=30, headers=STAFF)
        self.clinic = open_clinic(self.b, "Praxis Mitte")
        self.org = self.clinic.org
        self.f = fhir_client(self.bridge.url, self.org)
        self.ana = self.patient("Ana", "MRN-1")
        self.ben = self.patient("Ben", "MRN-2")
        self.wait(lambda: self.f.get(f"/Patient/{self.ben}").status_code == 200, "patients")
        for known in (f"HealthcareService/{self.clinic.kind}", f"Location/{self.clinic.location}"):
            self.wait(lambda known=known: self.f.get(f"/{known}").status_code == 200, known)

    def patient(self, name: str, mrn: str) -> str:
        body = {
            "given_name": name,
            "family_name": "Lind",
            "birth_date": "1970-05-05",
            "language": "en",
            "identifiers": [{"system": MRN, "value": mrn}],
        }
        pid: str = command(self.b, f"{self.clinic.base}/patients", body)["id"]
        return pid

    @staticmethod
    def wait(check: Callable[[], Any], what: str, within: float = 30.0) -> Any:
        deadline = time.monotonic() + within
        while not (found := check()):
            assert time.monotonic() < deadline, f"no {what} within {within}s"
            time.sleep(0.1)
        return found

    def op(self, path: str, body: dict[str, Any], status: int = 200, **headers: str) -> Any:
        response = self.f.post(path, json=body, headers={**FHIR, **headers})
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")
        answer = response.json()
        validated(answer)
        if answer["resourceType"] == "Bundle":
            for entry in answer["entry"]:
                validated(entry["resource"])
            return answer["entry"][0]["resource"] if answer["entry"] else None
        return answer

    def find(self, days: int, patient: str | None = None, count: int = 5) -> list[dict[str, Any]]:
        day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).date().isoformat()
        params = {"start": f"{day}T08:00:00Z", "end": f"{day}T12:00:00Z", "_count": str(count)}
        if patient:
            params["patient"] = f"Patient/{patient}"
        response = self.f.get("/Appointment/$find", params=params)
        assert response.status_code == 200, response.text
        bundle = validated(response.json())
        assert bundle["total"] == len(bundle["entry"])
        return [validated(e["resource"]) for e in bundle["entry"]]

    def actors(self, aid: str) -> list[dict[str, str]]:
        history = self.b.get(f"{self.clinic.base}/appointments/{aid}/history").json()
        return [e["actor"] for e in history["events"]]

    def close(self) -> None:
        self.b.close()
        self.f.close()


@pytest.fixture
def bridge(start_service: Callable[..., RunningService], schema_name: str) -> Any:
    platform = Bridge(start_service, schema_name)
    yield platform
    platform.close()


def test_find_hold_book_move_and_cancel_through_booking_as_the_emr(bridge: Bridge) -> None:
    proposals = bridge.find(2, bridge.ana)
    assert proposals
    first = proposals[0]
    assert first["status"] == "proposed"
    assert {p["status"] for p in first["participant"]} == {"needs-action"}
    assert first["start"] >= (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%d")

    held = bridge.op(
        "/Appointment/$hold",
        parameters(appointment_reference={"reference": f"Appointment/{first['id']}"}),
    )
    assert held["status"] == "pending"
    assert held["meta"]["versionId"] == "1"
    conflicting = {
        "appointment_type_id": bridge.clinic.kind,
        "location_id": bridge.clinic.location,
        "patient_id": bridge.ben,
        "start": first["start"],
    }
    taken = bridge.b.post(
        f"{bridge.clinic.base}/appointments",
        json=conflicting,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert taken.status_code == 409, taken.text  # the hold blocks the front desk too

    booked = bridge.op(
        "/Appointment/$book",
        parameters(appointment_reference={"reference": f"Appointment/{held['id']}"}),
    )
    assert (booked["id"], booked["status"]) == (held["id"], "booked")

    later = bridge.find(3)[0]
    stale = {**booked, "start": later["start"], "end": later["end"]}
    bridge.op(
        "/Appointment/$book", parameters(appointment_resource=stale), 412, **{"If-Match": 'W/"1"'}
    )
    moved = bridge.op(
        "/Appointment/$book",
        parameters(appointment_resource=stale),
        **{"If-Match": f'W/"{booked["meta"]["versionId"]}"'},
    )
    assert moved["start"] == later["start"]
    read = bridge.f.get(f"/Appointment/{booked['id']}")
    assert read.json()["start"] == later["start"]
    assert read.headers["etag"] == f'W/"{moved["meta"]["versionId"]}"'

    cancelled = bridge.op(f"/Appointment/{booked['id']}/$cancel", parameters(reason="ill"))
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelationReason"]["text"] == "ill"
    actors = bridge.actors(booked["id"])
    assert {(a["role"], a["channel"]) for a in actors} == {("emr", "fhir")}


def test_a_whole_appointment_is_booked_once_and_a_lost_race_is_an_operation_outcome(
    bridge: Bridge,
) -> None:
    slot = bridge.find(4)[0]
    resource = {
        "resourceType": "Appointment",
        "status": "pending",
        "start": slot["start"],
        "end": slot["end"],
        "serviceType": [
            {
                "coding": [
                    {
                        "system": "https://clinic.example/fhir/CodeSystem/appointment-type",
                        "code": bridge.clinic.kind,
                    }
                ]
            }
        ],
        "participant": [
            {"actor": {"reference": f"Patient/{bridge.ana}"}, "status": "accepted"},
            {"actor": {"reference": f"Location/{bridge.clinic.location}"}, "status": "accepted"},
        ],
    }
    condition = {"If-None-Exist": f"patient={bridge.ana}&date={slot['start']}"}
    created = bridge.op(
        "/Appointment/$book", parameters(appointment_resource=resource), 201, **condition
    )
    again = bridge.op("/Appointment/$book", parameters(appointment_resource=resource), **condition)
    assert again["id"] == created["id"]
    assert bridge.f.get("/Appointment", params={"patient": bridge.ana}).json()["total"] == 1
    arrived = bridge.op(
        "/Appointment/$book",
        parameters(appointment_resource={**created, "status": "entered-in-error"}),
        **{"If-Match": f'W/"{created["meta"]["versionId"]}"'},
    )
    assert arrived["status"] == "entered-in-error"

    race = [bridge.find(5, patient)[0] for patient in (bridge.ana, bridge.ben)]
    assert race[0]["start"] == race[1]["start"]

    def book(proposal: dict[str, Any]) -> httpx.Response:
        body = parameters(appointment_reference={"reference": f"Appointment/{proposal['id']}"})
        return bridge.f.post("/Appointment/$book", json=body, headers=FHIR)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(book, race))
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    lost = next(a for a in answers if a.status_code == 409).json()
    assert lost["resourceType"] == "OperationOutcome"
    assert lost["issue"][0]["code"] == "conflict"
    validated(lost)

    trail = bridge.f.get("/AuditEvent", params={"_count": "100"})
    assert trail.status_code == 200, trail.text
    events = [e["resource"] for e in trail.json()["entry"]]
    done = {(e["subtype"][-1]["code"], e["outcome"]) for e in events}
    assert {("$find", "0"), ("$book", "0"), ("$book", "4")} <= done, done
    booked = [e for e in events if e["subtype"][-1]["code"] == "$book" and e["outcome"] == "0"]
    assert f"Appointment/{created['id']}" in {e["entity"][0]["what"]["reference"] for e in booked}


DEEP = b'{"resourceType": "Parameters", "x": ' + b'{"a": ' * 200 + b"1" + b"}" * 201
BAD = [
    ("malformed JSON", "/Appointment/$book", b"{", FHIR, 400),
    ("not Parameters", "/Appointment/$book", b'{"resourceType": "Patient"}', FHIR, 400),
    (
        "an unknown parameter",
        "/Appointment/$hold",
        b'{"resourceType": "Parameters", "parameter": [{"name": "colour", "valueString": "x"}]}',
        FHIR,
        400,
    ),
    (
        "an unknown proposal",
        "/Appointment/$hold",
        b'{"resourceType": "Parameters", "parameter": [{"name": "appointment-reference",'
        b' "valueReference": {"reference": "Appointment/nope"}}]}',
        FHIR,
        404,
    ),
    (
        "a reference of the wrong type",
        "/Appointment/$book",
        b'{"resourceType": "Parameters", "parameter": [{"name": "appointment-reference",'
        b' "valueReference": {"reference": "Patient/1"}}]}',
        FHIR,
        400,
    ),
    ("text, not JSON", "/Appointment/$book", b"book it", {"Content-Type": "text/plain"}, 415),
    (
        "invalid FHIR inside",
        "/Appointment/$book",
        b'{"resourceType": "Parameters", "parameter": [{"name": "appointment-resource",'
        b' "resource": {"resourceType": "Appointment", "status": "nonsense", "participant": []}}]}',
        FHIR,
        400,
    ),
    ("an unknown appointment", f"/Appointment/{uuid.uuid4()}/$cancel", b"", FHIR, 404),
    ("JSON nested 200 deep", "/Appointment/$book", DEEP, FHIR, 400),
    (
        "a NUL in a string",
        "/Appointment/$hold",
        b'{"resourceType": "Parameters", "parameter": [{"name": "appointment-reference",'
        b' "valueReference": {"reference": "Appointment/a\\u0000b"}}]}',
        FHIR,
        400,
    ),
    (
        "a reason given twice",
        f"/Appointment/{uuid.uuid4()}/$cancel",
        b'{"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "a"},'
        b' {"name": "reason", "valueString": "b"}]}',
        FHIR,
        400,
    ),
    (
        "a participant on another server",
        "/Appointment/$book",
        b'{"resourceType": "Parameters", "parameter": [{"name": "appointment-resource", "resource":'
        b' {"resourceType": "Appointment", "status": "pending", "participant": [{"actor":'
        b' {"reference": "http://elsewhere.example/fhir/Patient/1"}, "status": "accepted"}]}}]}',
        FHIR,
        400,
    ),
    (
        "a non-ASCII idempotency key",
        f"/Appointment/{uuid.uuid4()}/$cancel",
        b"",
        {**FHIR, "Idempotency-Key": "cl\xe9".encode("latin-1")},
        404,
    ),
]


def test_bad_operation_input_is_an_operation_outcome_and_changes_nothing(bridge: Bridge) -> None:
    before = bridge.f.get("/Appointment").json()["total"]
    for name, path, body, headers, status in BAD:
        response = bridge.f.post(path, content=body, headers=headers)
        assert response.status_code == status, (name, response.text)
        assert response.json()["resourceType"] == "OperationOutcome", name
        validated(response.json())
    for params in (
        {"start": "2027-01-01"},
        {"start": "x", "end": "y"},
        {"start": "2027-01-02", "end": "2027-01-01"},
        {"start": "2027-01-01", "end": "2029-01-01"},
        {"start": "2027-01-01", "end": "2027-01-02", "appointmentType": "nope"},
        {"start": "2027-01-01", "end": "2027-01-02", "organization": "Organization/x"},
    ):
        response = bridge.f.get("/Appointment/$find", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
    other = httpx.post(
        f"{bridge.bridge.url}/fhir/{uuid.uuid4()}/Appointment/$hold",
        json=parameters(appointment_reference={"reference": "Appointment/1"}),
        headers={**FHIR, "Authorization": bridge.f.headers["authorization"]},
        timeout=30,
    )
    assert other.status_code == 403  # this client's token is for its own organisation
    assert bridge.f.get("/Appointment").json()["total"] == before
