"""End to end on the platform as `make up` starts it (demo data, the local identity provider,
the mail sink), driven through the gateway only with the tokens `make up` hands out: a
patient searches, holds, books, reschedules and cancels; the front desk sees each change on
the location's day; the confirmation email reaches the SMTP server; the audit names the
actor of every step."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from clinic.devstack.stack import Stack, demo_tokens

BOUND = 30.0


def _within(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + BOUND
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within {BOUND}s: {what}"
        time.sleep(0.2)
    return found


def test_a_patient_books_moves_and_cancels_through_the_gateway_and_everyone_sees_it(
    stack: Stack,
) -> None:
    _, services = stack.up(timeout=120)
    gateway, sinks = services["gateway"].url, services["sinks"].url
    demo = httpx.get(f"{services['booking'].url}/demo", timeout=30).json()
    tokens = {role: path.read_text() for role, path in
              demo_tokens(stack.state_dir, services["issuer"].url, demo).items()}  # fmt: skip

    def client(role: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        return httpx.Client(base_url=gateway, headers=headers, timeout=30)

    patient, desk, admin = client("patient"), client("front_desk"), client("org_admin")
    me = patient.get("/v1/me").json()
    location = desk.get("/v1/me").json()["location_ids"][0]
    email = next(c["value"] for c in patient.get(f"/v1/patients/{me['patient_id']}").json()
                 ["contacts"] if c["system"] == "email")  # fmt: skip

    # 1. The patient picks a type patients book, and searches a weekday a week ahead.
    types = patient.get("/v1/appointment-types", params={"location_id": location}).json()
    kind = types["appointment_types"][0]["id"]
    day = dt.date.today() + dt.timedelta(days=7)
    day += dt.timedelta(days=(7 - day.weekday()) % 7 if day.weekday() >= 5 else 0)
    query = {"appointment_type_id": kind, "location_id": location,
             "from": day.isoformat(), "to": day.isoformat()}  # fmt: skip
    slots = _within(lambda: patient.get("/v1/slots", params=query).json().get("slots"), "slots")
    assert all(name for s in slots for name in s["resource_names"].values())

    # 2. Holds the first, books it.
    key = str(uuid.uuid4())
    held = patient.post("/v1/holds", json={"appointment_type_id": kind, "location_id": location,
                        "start": slots[0]["start"]}, headers={"Idempotency-Key": key})  # fmt: skip
    assert held.status_code == 201, held.text
    appointment = held.json()["id"]
    booked = patient.post(f"/v1/appointments/{appointment}/confirm",
                          headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert booked.status_code == 200, booked.text

    def on_desk(status: str, start: str) -> bool:
        day_view = desk.get(f"/v1/locations/{location}/calendar",
                            params={"date": day.isoformat()}).json()  # fmt: skip
        return any(a["id"] == appointment and a["status"] == status and a["start"] == start
                   for column in day_view["resources"] for a in column["appointments"])  # fmt: skip

    _within(lambda: on_desk("booked", slots[0]["start"]), "the booking on the desk's calendar")

    # 3. The confirmation reaches the SMTP server.
    def mail_to_patient() -> list[dict[str, Any]]:
        return [m for m in httpx.get(f"{sinks}/mail", timeout=10).json() if email in m["to"]]

    _within(mail_to_patient, f"a confirmation email to {email}")

    # 4. Moves it, then cancels it; the desk sees each.
    moved = patient.post(f"/v1/appointments/{appointment}/reschedule",
                         json={"start": slots[-1]["start"]},
                         headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert moved.status_code == 200, moved.text
    _within(lambda: on_desk("booked", slots[-1]["start"]), "the move on the desk's calendar")
    cancelled = patient.post(f"/v1/appointments/{appointment}/cancel",
                             json={"reason": "I feel better"},
                             headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    _within(lambda: on_desk("cancelled", slots[-1]["start"]), "the cancellation on the calendar")

    # 5. The audit shows every step with its actor.
    entries = admin.get("/v1/audit-events", params={"target_id": appointment}).json()
    steps = {(e["operation"], e["actor"], e["outcome"]) for e in entries["audit_events"]}
    actor = "demo-patient"
    for step in ("holds.create", "appointments.confirm", "appointments.reschedule",
                 "appointments.cancel"):  # fmt: skip
        assert any(op == step and who == actor for op, who, _ in steps), (step, steps)
    history = desk.get(f"/v1/appointments/{appointment}/history").json()["events"]
    assert {e["actor"]["user_id"] for e in history if e["actor"]} == {actor}


def test_one_booking_through_the_gateway_is_one_trace_across_every_service(stack: Stack) -> None:
    """Ops follow one booking from the gateway through booking, the relay and Kafka into
    every consumer, in the trace receiver `make up OBS=1` starts (issue 19)."""
    _, services = stack.up(timeout=120)
    gateway, receiver = services["gateway"].url, services["traces"].url
    demo = httpx.get(f"{services['booking'].url}/demo", timeout=30).json()
    token = demo_tokens(stack.state_dir, services["issuer"].url, demo)["patient"].read_text()
    patient = httpx.Client(
        base_url=gateway, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    location = demo["locations"]["Berlin Mitte"]
    kind = patient.get("/v1/appointment-types", params={"location_id": location}).json()[
        "appointment_types"
    ][0]["id"]
    day = dt.date.today() + dt.timedelta(days=14)
    day += dt.timedelta(days=(7 - day.weekday()) % 7 if day.weekday() >= 5 else 0)
    query = {"appointment_type_id": kind, "location_id": location,
             "from": day.isoformat(), "to": day.isoformat()}  # fmt: skip
    slots = _within(lambda: patient.get("/v1/slots", params=query).json().get("slots"), "slots")

    trace_id = uuid.uuid4().hex  # the client's own trace, continued by the gateway
    booked = patient.post(
        "/v1/appointments",
        json={"appointment_type_id": kind, "location_id": location, "start": slots[0]["start"]},
        headers={
            "Idempotency-Key": str(uuid.uuid4()),
            "traceparent": f"00-{trace_id}-{'a' * 16}-01",
        },
    )
    assert booked.status_code == 201, booked.text

    wanted = {
        ("gateway", "SERVER", "POST /v1/appointments"),
        ("booking", "SERVER", "POST /organizations/{org}/appointments"),
        ("booking", "PRODUCER", "publish booking.appointments.v1"),
        ("availability", "CONSUMER", "process booking.appointments.v1"),
        ("notification", "CONSUMER", "process booking.appointments.v1"),
        ("emr-bridge", "CONSUMER", "process booking.appointments.v1"),
    }

    def spans() -> list[dict[str, Any]] | None:
        answer = httpx.get(f"{receiver}/traces/{trace_id}", timeout=10)
        if answer.status_code != 200:
            return None
        found = answer.json()["spans"]
        seen = {(s["service"], s["kind"], s["name"]) for s in found}
        return found if wanted <= seen else None

    trace = _within(spans, f"spans of {sorted(wanted)} in trace {trace_id}")
    by_id = {s["span_id"]: s for s in trace}
    # Each consumer's span hangs under the booking's publish, which hangs under the gateway.
    for service in ("availability", "notification", "emr-bridge"):
        span = next(
            s
            for s in trace
            if (s["service"], s["kind"], s["name"])
            == (service, "CONSUMER", "process booking.appointments.v1")
        )
        assert span["attributes"]["clinic.aggregate.id"] == booked.json()["id"]
        chain = []
        while span is not None:
            chain.append(span["service"])
            span = by_id.get(span["parent_span_id"])
        assert chain[0] == service
        assert chain[-1] == "gateway", chain
        assert "booking" in chain, chain
