"""A patient and a front desk use the platform through the gateway only."""

from __future__ import annotations

import datetime as dt

import pytest
from gateway_platform import Platform, open_gateway_clinic, wait_until

pytestmark = pytest.mark.integration


def _tomorrow() -> str:
    return (dt.date.today() + dt.timedelta(days=2)).isoformat()


def test_a_patient_searches_holds_books_reschedules_and_cancels_and_the_desk_sees_each_step(
    gateway_platform: Platform,
) -> None:
    clinic = open_gateway_clinic(gateway_platform, "Gateway Story Berlin")
    ids = clinic.ids
    patient = gateway_platform.client(clinic.tokens["patient"])
    desk = gateway_platform.client(clinic.tokens["front_desk"])
    admin = gateway_platform.client(clinic.tokens["org_admin"])

    # 1. The patient searches (the projection trails booking by a moment).
    query = {"appointment_type_id": ids.kind, "location_id": ids.location,
             "from": _tomorrow(), "to": _tomorrow(), "page_size": 3}  # fmt: skip
    found = wait_until(
        lambda: (
            (r := patient.get("/v1/slots", params=query)).status_code == 200
            and r.json()["slots"]
            and r
        )
    )
    assert found, "no slots"
    page = found.json()
    assert len(page["slots"]) == 3
    assert page["next_page_token"]
    slot = page["slots"][0]
    assert slot["resource_names"] == {"physician": "Dr. A"}

    # 2. Holds it, then books the hold.
    held = patient.post("/v1/holds", json={"appointment_type_id": ids.kind,
        "location_id": ids.location, "start": slot["start"]},
        headers={"Idempotency-Key": "hold-1"})  # fmt: skip
    assert held.status_code == 201, held.text
    appointment = held.json()
    assert appointment["status"] == "pending"  # held (FHIR: pending)
    assert appointment["patient_id"] == clinic.patients[0]
    assert held.headers["location"] == f"/v1/appointments/{appointment['id']}"
    booked = patient.post(f"/v1/appointments/{appointment['id']}/confirm",
                          headers={"Idempotency-Key": "confirm-1"})  # fmt: skip
    assert booked.status_code == 200, booked.text
    assert booked.json()["status"] == "booked"

    # 3. The desk sees it on the location's day.
    def on_calendar(status: str) -> bool:
        day = desk.get(f"/v1/locations/{ids.location}/calendar", params={"date": _tomorrow()})
        assert day.status_code == 200, day.text
        return any(
            a["id"] == appointment["id"] and a["status"] == status
            for column in day.json()["resources"]
            for a in column["appointments"]
        )

    assert wait_until(lambda: on_calendar("booked"))

    # 4. Reschedules to the next slot, then cancels.
    moved = patient.post(f"/v1/appointments/{appointment['id']}/reschedule",
                         json={"start": page["slots"][2]["start"]},
                         headers={"Idempotency-Key": "move-1"})  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json()["start"] == page["slots"][2]["start"]
    cancelled = patient.post(f"/v1/appointments/{appointment['id']}/cancel",
                             json={"reason": "feeling better"},
                             headers={"Idempotency-Key": "cancel-1"})  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    assert wait_until(lambda: on_calendar("cancelled"))

    # 5. The history names the patient as the actor of each step, through the API.
    history = desk.get(f"/v1/appointments/{appointment['id']}/history").json()["events"]
    assert {e["actor"]["user_id"] for e in history} == {"patient-ana"}
    assert {e["actor"]["channel"] for e in history} == {"api"}

    # 6. The audit shows every step with its actor.
    entries = admin.get("/v1/audit-events", params={"target_id": appointment["id"]}).json()
    steps = [(e["operation"], e["actor"], e["outcome"]) for e in entries["audit_events"]]
    for operation in ("appointments.confirm", "appointments.reschedule", "appointments.cancel"):
        assert (operation, "patient-ana", 200) in steps, steps
    assert ("holds.create", "patient-ana", 201) in steps
    assert any(op == "appointments.history" and who == "desk-1" for op, who, _ in steps)
