"""The FHIR R4 API over HTTP, on a projection written from a booking history: read, vread,
_history and search with each parameter answer what the resources say, with valid FHIR
only; every error is an OperationOutcome and another organisation sees nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from bridge_history import MRN, History
from emr_client import ADMIN_TOKEN, fhir_client
from prometheus_client import CollectorRegistry

from clinic.devstack.testing import RunningService
from clinic.emr_bridge.consumer import ProjectionWriter
from clinic.emr_bridge.fhir import validated
from clinic.emr_bridge.resources import Resources, replay
from clinic.platform.database import Database

FHIR_JSON = "application/fhir+json"


class Clinic:
    def __init__(self, history: History, resources: Resources, url: str) -> None:
        self.history = history
        self.resources = resources
        self.url = url
        self.base = f"{url}/fhir/{history.org}"
        self.http = fhir_client(url, str(history.org), "system/*.rs")

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith(FHIR_JSON)
        body: dict[str, Any] = response.json()
        validated(body)
        for entry in body.get("entry", ()):
            if "resource" in entry:
                validated(entry["resource"])
        return body

    def ids(self, path: str, **params: Any) -> set[str]:
        bundle = self.get(path, _count=500, **params)
        assert bundle["total"] == len(
            [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
        )
        return {e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"}

    def live(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            rid: v.body
            for (t, rid), v in self.resources.current.items()
            if t == kind and v.body is not None
        }


@pytest.fixture
async def clinic(
    database: Database, start_service: Callable[..., RunningService], schema_name: str
) -> AsyncIterator[Clinic]:
    history = History(17)
    events = history.play(150)
    async with database.pool.connection() as conn, conn.transaction():
        await ProjectionWriter(CollectorRegistry()).write_many(conn, events)
    _, resources = replay(events)
    service = start_service(
        "clinic.emr_bridge",
        "EMR_BRIDGE_",
        EMR_BRIDGE_CONSUMER_GROUP=f"bridge-{schema_name}",
        EMR_BRIDGE_MLLP_PORT="0",
        EMR_BRIDGE_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    clinic = Clinic(history, resources, service.url)
    yield clinic
    clinic.http.close()


def test_read_vread_and_history_serve_every_version_with_its_etag(clinic: Clinic) -> None:
    for (kind, rid), versions in clinic.resources.history.items():
        latest = versions[-1]
        response = clinic.http.get(f"/{kind}/{rid}")
        if latest.body is None:
            assert response.status_code == 410
            assert response.json()["resourceType"] == "OperationOutcome"
            continue
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == f'W/"{latest.version}"'
        assert response.json()["meta"]["versionId"] == str(latest.version)
    appointment = next(
        ref for ref, v in clinic.resources.history.items() if ref[0] == "Appointment" and len(v) > 2
    )
    versions = clinic.resources.history[appointment]
    first = clinic.get(f"/{appointment[0]}/{appointment[1]}/_history/1")
    assert first == versions[0].body
    bundle = clinic.get(f"/{appointment[0]}/{appointment[1]}/_history", _count=2)
    assert bundle["type"] == "history"
    assert bundle["total"] == len(versions)
    assert [e["resource"]["meta"]["versionId"] for e in bundle["entry"]] == [
        str(len(versions)),
        str(len(versions) - 1),
    ]
    following = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    rest = clinic.http.get(following).json()
    assert rest["entry"][0]["resource"]["meta"]["versionId"] == str(len(versions) - 2)


def with_actor(appointments: dict[str, dict[str, Any]], reference: str) -> set[str]:
    return {
        a
        for a, b in appointments.items()
        if any(p["actor"]["reference"] == reference for p in b["participant"])
    }


def test_appointments_are_found_by_each_search_parameter(clinic: Clinic) -> None:
    appointments = clinic.live("Appointment")
    h = clinic.history
    assert clinic.ids("/Appointment") == set(appointments)

    day = min(b["start"] for b in appointments.values())[:10]
    on_day = {a for a, b in appointments.items() if b["start"].startswith(day)}
    assert clinic.ids("/Appointment", date=day) == on_day
    after = {a for a, b in appointments.items() if b["start"][:10] >= day}
    assert clinic.ids("/Appointment", date=f"ge{day}") == after
    assert clinic.ids("/Appointment", date=f"lt{day}") == set(appointments) - after
    assert clinic.ids("/Appointment", date=f"gt{day}") == after - on_day
    assert clinic.ids("/Appointment", date=f"le{day}") == (set(appointments) - after) | on_day
    instant = sorted(b["start"] for b in appointments.values())[len(appointments) // 2]
    assert clinic.ids("/Appointment", date=f"ge{instant}") == {
        a for a, b in appointments.items() if b["start"] >= instant
    }

    patient = str(next(iter(h.records)))
    mine = with_actor(appointments, f"Patient/{patient}")
    assert clinic.ids("/Appointment", patient=patient) == mine
    assert clinic.ids("/Appointment", patient=f"Patient/{patient}") == mine
    assert clinic.ids("/Appointment", actor=f"Patient/{patient}") == mine
    assert clinic.ids("/Appointment", practitioner=str(h.doctor)) == set(appointments)
    assert clinic.ids("/Appointment", location=f"Location/{h.location}") == set(appointments)
    with_device = with_actor(appointments, f"Device/{h.device}")
    assert clinic.ids("/Appointment", actor=str(h.device)) == with_device
    for status in {b["status"] for b in appointments.values()}:
        assert clinic.ids("/Appointment", status=status) == {
            a for a, b in appointments.items() if b["status"] == status
        }
    assert clinic.ids("/Appointment", status="booked,cancelled") == {
        a for a, b in appointments.items() if b["status"] in ("booked", "cancelled")
    }
    one = next(iter(appointments))
    system = appointments[one]["identifier"][0]["system"]
    assert clinic.ids("/Appointment", identifier=f"{system}|{one}") == {one}
    assert clinic.ids("/Appointment", identifier=one) == {one}
    assert clinic.ids("/Appointment", _id=one) == {one}
    assert clinic.ids("/Appointment", patient=patient, status="nonexistent") == set()


def test_paging_counts_the_total_and_follows_next_links_to_the_end(clinic: Clinic) -> None:
    appointments = clinic.live("Appointment")
    seen: list[str] = []
    bundle = clinic.get("/Appointment", _count=7)
    assert bundle["total"] == len(appointments)
    while True:
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            break
        bundle = clinic.http.get(following[0]).json()
    assert len(seen) == len(set(seen)) == len(appointments)
    starts = [appointments[a]["start"] for a in seen]
    assert starts == sorted(starts)
    assert clinic.get("/Appointment", _count=0)["entry"] == []


def test_include_brings_the_patient_and_every_actor_once(clinic: Clinic) -> None:
    bundle = clinic.get("/Appointment", _count=5, _include="Appointment:patient")
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    included = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "include"]
    wanted = {
        p["actor"]["reference"]
        for e in matches
        for p in e["resource"]["participant"]
        if p["actor"]["reference"].startswith("Patient/")
    }
    assert {f"Patient/{r['id']}" for r in included} == wanted
    bundle = clinic.get("/Appointment", _count=5, _include="Appointment:actor")
    kinds = {
        e["resource"]["resourceType"] for e in bundle["entry"] if e["search"]["mode"] == "include"
    }
    assert kinds == {"Patient", "Practitioner", "Location"} | (kinds & {"Device"})


def test_slots_schedules_patients_and_reference_data_are_searchable(clinic: Clinic) -> None:
    h = clinic.history
    slots = clinic.live("Slot")
    doctors = {s for s, b in slots.items() if b["schedule"]["reference"] == f"Schedule/{h.doctor}"}
    assert clinic.ids("/Slot", schedule=f"Schedule/{h.doctor}") == doctors
    assert clinic.ids("/Slot", status="busy-unavailable") == {
        s for s, b in slots.items() if b["status"] == "busy-unavailable"
    }
    first = min(b["start"] for b in slots.values())
    assert clinic.ids("/Slot", start=f"gt{first}") == {
        s for s, b in slots.items() if b["start"] > first
    }
    assert clinic.ids("/Schedule", actor=f"Practitioner/{h.doctor}") == {str(h.doctor)}
    assert clinic.ids("/Schedule", actor=f"Location/{h.location}") == {
        str(h.doctor),
        str(h.room),
        str(h.device),
    }
    pid, record = next(iter(h.records.items()))
    assert str(pid) in clinic.ids("/Patient", identifier=f"{MRN}|{record.identifiers[0].value}")
    assert clinic.ids("/Patient", identifier=f"urn:other|{record.identifiers[0].value}") == set()
    named = clinic.ids("/Patient", name=record.given_name[:3].lower())
    assert named == {str(p) for p in h.records}  # every Pat...
    assert str(pid) in clinic.ids("/Patient", birthdate=record.birth_date.isoformat())
    assert clinic.ids("/Practitioner", name="adl") == {str(h.doctor)}
    assert clinic.ids("/PractitionerRole", location=str(h.location)) == {str(h.doctor)}
    assert clinic.ids("/PractitionerRole", practitioner=f"Practitioner/{h.doctor}") == {
        str(h.doctor)
    }
    assert clinic.ids("/Patient", family=record.family_name.lower()) >= {str(pid)}
    assert clinic.ids("/Organization", name="chari") == {str(h.org)}
    assert len(clinic.ids("/HealthcareService", name="check")) == 1
    assert clinic.ids("/Location", name="mitte") == {str(h.location)}
    assert len(clinic.ids("/HealthcareService")) == 2
    assert clinic.ids("/Organization") == {str(h.org)}
    assert clinic.ids("/Device", **{"device-name": "ecg"}) == {str(h.device)}


def test_the_capability_statement_lists_the_search_parameters(clinic: Clinic) -> None:
    statement = clinic.get("/metadata")
    assert statement["fhirVersion"] == "4.0.1"
    [rest] = statement["rest"]
    appointment = next(r for r in rest["resource"] if r["type"] == "Appointment")
    names = {p["name"] for p in appointment["searchParam"]}
    assert {"date", "actor", "patient", "practitioner", "location", "status", "identifier"} <= names
    assert "Appointment:patient" in appointment["searchInclude"]
    assert {o["name"] for o in appointment["operation"]} == {"find", "hold", "book", "cancel"}
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    assert "update" in {i["code"] for i in patient["interaction"]}
    assert rest["security"]["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert clinic.http.get("/metadata").status_code == 200
    assert httpx.get(f"{clinic.base}/metadata", timeout=30).status_code == 200  # public


ERRORS = [
    ("an unknown resource type", "/Observation", {}, 404),
    ("an unknown search parameter", "/Appointment", {"colour": "blue"}, 400),
    ("a parameter of another type", "/Slot", {"patient": "x"}, 400),
    ("a malformed date", "/Appointment", {"date": "2027-13-01"}, 400),
    ("an unknown prefix", "/Appointment", {"date": "xx2027-01-01"}, 400),
    ("a date before the calendar", "/Appointment", {"date": "0001-01-01"}, 400),
    ("a reference of the wrong type", "/Appointment", {"patient": "Practitioner/1"}, 400),
    ("an unsupported include", "/Patient", {"_include": "Patient:link"}, 400),
    ("a _count too large", "/Appointment", {"_count": "100000"}, 400),
    ("a _count in words", "/Appointment", {"_count": "ten"}, 400),
    ("a forged cursor", "/Appointment", {"_cursor": "bm90IGEgY3Vyc29y"}, 400),
    ("control characters", "/Patient", {"name": "\x01\x02"}, 400),
    ("XML", "/Patient", {"_format": "xml"}, 400),
    ("free Slots", "/Slot", {"status": "free"}, 400),
    ("NUL in a search value", "/Patient", {"name": "a\x00"}, 400),
    ("NUL in an id", "/Patient/a%00b", {}, 400),
    ("a superscript count", "/Appointment", {"_count": "\u00b2"}, 400),
    ("a superscript version", "/Organization/{org}/_history/%C2%B2", {}, 404),
    ("full-width digits in a date", "/Appointment", {"date": "\uff12\uff10\uff12\uff17"}, 400),
    (
        "a cursor with an offset of 20 hours",
        "/Appointment",
        {"_cursor": "WyIyMDI3LTAxLTAxVDAwOjAwOjAwKzIwOjAwIiwgImEiXQ"},
        400,
    ),
    ("XML on a read", "/Organization/{org}", {"_format": "xml"}, 400),
    ("a summary on a read", "/Organization/{org}", {"_summary": "count"}, 400),
    ("nothing changed since", "/Organization/{org}/_history", {"_since": "2199-01-01"}, 200),
    ("a malformed id", "/Patient/not%20an%20id", {}, 404),
    ("an unknown id", f"/Patient/{uuid.uuid4()}", {}, 404),
    ("an unknown version", "/Organization/{org}/_history/99", {}, 404),
    ("a version in words", "/Organization/{org}/_history/one", {}, 404),
    ("history with a bad _since", "/Organization/{org}/_history", {"_since": "yesterday"}, 400),
]


def test_bad_requests_get_an_operation_outcome_and_another_organisation_sees_nothing(
    clinic: Clinic,
) -> None:
    org = clinic.history.org
    for name, path, params, status in ERRORS:
        response = clinic.http.get(path.format(org=org), params=params)
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"].startswith(FHIR_JSON), name
        body = response.json()
        if status != 200:
            assert body["resourceType"] == "OperationOutcome", name
            validated(body)
            assert body["issue"][0]["diagnostics"], name
    for method in ("POST", "DELETE", "PATCH"):
        response = clinic.http.request(method, f"/Organization/{org}", content=b"{")
        assert response.status_code in (400, 405, 422), response.text
        assert response.json()["resourceType"] == "OperationOutcome"

    stranger = str(uuid.uuid4())
    patient = next(iter(clinic.history.records))
    with fhir_client(clinic.url, stranger, "system/*.rs") as other:
        for kind, rid in list(clinic.resources.current)[:30]:
            assert other.get(f"/{kind}/{rid}").status_code == 404
        assert other.get("/Appointment").json()["total"] == 0
        assert other.get(f"/Patient/{patient}/_history").status_code == 404
        theirs = other.headers["authorization"]
    for path in ("/Appointment", f"/Patient/{patient}"):
        foreign = httpx.get(f"{clinic.base}{path}", headers={"Authorization": theirs}, timeout=30)
        assert foreign.status_code == 403, foreign.text  # a token of another organisation
        assert foreign.json()["resourceType"] == "OperationOutcome"
        anonymous = httpx.get(f"{clinic.base}{path}", timeout=30)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
    with fhir_client(clinic.url, str(clinic.history.org), "system/Slot.rs") as narrow:
        refused = narrow.get(f"/Patient/{patient}")
        assert refused.status_code == 403, refused.text
        assert refused.json()["issue"][0]["code"] == "forbidden"


def test_lastupdated_finds_what_changed_since(clinic: Clinic) -> None:
    versions = sorted(v.last_updated for v in clinic.resources.current.values() if v.body)
    middle = versions[len(versions) // 2].astimezone(dt.UTC)
    stamp = middle.isoformat().replace("+00:00", "Z")
    found = clinic.ids("/Appointment", _lastUpdated=f"ge{stamp}")
    assert found == {
        rid
        for (t, rid), v in clinic.resources.current.items()
        if t == "Appointment" and v.body is not None and v.last_updated >= middle
    }
