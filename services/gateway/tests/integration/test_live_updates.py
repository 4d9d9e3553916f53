"""Live updates over HTTP from the real broker: booking's appointment facts reach the open
streams (GET /v1/live) that may see them, within a bounded wait, and no other."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from gateway_platform import Clinic, Platform, open_gateway_clinic, wait_until

pytestmark = pytest.mark.integration
BOUND = 20.0


class Listener(threading.Thread):
    """Reads one live stream in the background, keeping its events."""

    def __init__(self, platform: Platform, token: str) -> None:
        super().__init__(daemon=True)
        self.client = platform.client(token)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.stopped = threading.Event()
        self.status = 0

    def run(self) -> None:
        kind = ""
        with self.client.stream("GET", "/v1/live", timeout=httpx.Timeout(30, read=10)) as answer:
            self.status = answer.status_code
            self.content_type = answer.headers.get("content-type", "")
            for line in answer.iter_lines():  # the heartbeat (1 s here) wakes it to stop
                if self.stopped.is_set():
                    return
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    self.events.append((kind, json.loads(line[6:])))

    def appointments(self) -> list[tuple[str, str]]:
        return [(d["appointment_id"], d["event"]) for k, d in self.events if k == "appointment"]

    def live(self) -> bool:
        return any(k == "live" for k, _ in self.events)


def waited(check: Any, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not check():
        assert time.monotonic() < deadline, f"not within {BOUND}s: {what}"
        time.sleep(0.1)


def book(client: httpx.Client, clinic: Clinic, patient: str, location: str) -> str:
    day = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    query = {"appointment_type_id": clinic.ids.kind, "location_id": location,
             "from": day, "to": day, "page_size": 5}  # fmt: skip
    slots = wait_until(lambda: client.get("/v1/slots", params=query).json()["slots"])
    assert slots, "no free time found"
    slot = slots[0]
    answer = client.post(
        "/v1/appointments",
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "appointment_type_id": clinic.ids.kind,
            "location_id": location,
            "patient_id": patient,
            "start": slot["start"],
        },
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_each_booking_reaches_the_streams_that_may_see_it_and_a_cancellation_follows(
    gateway_platform: Platform,
) -> None:
    platform = gateway_platform
    clinic = open_gateway_clinic(platform, "Live Clinic")
    stranger = open_gateway_clinic(platform, "Another Group")
    ana, ben = clinic.patients
    tokens = {
        "desk here": clinic.tokens["front_desk"],
        "desk there": platform.token(
            "front_desk", clinic.ids.org, locations=[clinic.second_location]
        ),
        "org admin": clinic.tokens["org_admin"],
        "ana": clinic.tokens["patient"],
        "ben": platform.token("patient", clinic.ids.org, patient_id=ben),
        "stranger": stranger.tokens["org_admin"],
    }
    listeners = {name: Listener(platform, token) for name, token in tokens.items()}
    for listener in listeners.values():
        listener.start()
    try:
        waited(lambda: all(x.live() for x in listeners.values()), "every stream live")
        assert {x.status for x in listeners.values()} == {200}
        assert listeners["ana"].content_type.startswith("text/event-stream")

        admin = platform.client(clinic.tokens["org_admin"])
        here = book(admin, clinic, ana, clinic.ids.location)
        there = book(admin, clinic, ben, clinic.second_location)
        cancelled = admin.post(
            f"/v1/appointments/{here}/cancel",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={"reason": "feeling better"},
        )
        assert cancelled.status_code == 200, cancelled.text
        elsewhere = book(
            platform.client(stranger.tokens["org_admin"]),
            stranger,
            stranger.patients[0],
            stranger.ids.location,
        )

        expected = {
            "desk here": {(here, "Appointment.Booked"), (here, "Appointment.Cancelled")},
            "desk there": {(there, "Appointment.Booked")},
            "org admin": {(here, "Appointment.Booked"), (here, "Appointment.Cancelled"),
                          (there, "Appointment.Booked")},
            "ana": {(here, "Appointment.Booked"), (here, "Appointment.Cancelled")},
            "ben": {(there, "Appointment.Booked")},
            "stranger": {(elsewhere, "Appointment.Booked")},
        }  # fmt: skip
        for name, facts in expected.items():
            waited(lambda n=name, f=facts: f <= set(listeners[n].appointments()), name)
        time.sleep(1.5)  # anything that should not come has had time to come
        for name, facts in expected.items():
            assert set(listeners[name].appointments()) == facts, name
        booked_event = next(d for k, d in listeners["desk here"].events if k == "appointment")
        assert booked_event["location_id"] == clinic.ids.location
        assert booked_event["status"] == "booked"
        assert booked_event["version"] == 1
    finally:
        for listener in listeners.values():
            listener.stopped.set()
        for listener in listeners.values():
            listener.join(timeout=5)


def test_ops_may_not_open_a_stream_and_a_stream_without_a_token_is_refused(
    gateway_platform: Platform,
) -> None:
    clinic = open_gateway_clinic(gateway_platform, "Quiet Clinic")
    with gateway_platform.client(clinic.tokens["ops"]) as ops:
        assert ops.get("/v1/live").status_code == 403
    with gateway_platform.client(None) as anonymous:
        answer = anonymous.get("/v1/live")
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"


def test_a_stream_ends_when_its_token_expires_and_a_user_holds_only_so_many_at_once(
    gateway_platform: Platform,
) -> None:
    clinic = open_gateway_clinic(gateway_platform, "Busy Clinic")
    org = clinic.ids.org
    started = time.monotonic()
    short = gateway_platform.token("org_admin", org, expires_in=3)
    with (
        gateway_platform.client(short) as client,
        client.stream("GET", "/v1/live", timeout=httpx.Timeout(30, read=10)) as answer,
    ):
        assert answer.status_code == 200
        lines = list(answer.iter_lines())  # ends by itself
    assert time.monotonic() - started < 10
    assert "event: live" in lines
    # A token past its expiry (still inside the clock-skew leeway) opens no stream at all.
    stale = gateway_platform.token("org_admin", org, expires_in=1)
    time.sleep(1.5)
    with gateway_platform.client(stale) as client:
        refused = client.get("/v1/live")
    assert refused.status_code == 401, refused.text

    # GATEWAY_LIVE_MAX_STREAMS_PER_USER is 3 here: a fourth for the same user is a 429.
    same = gateway_platform.token("org_admin", org, subject="desk-tabs")
    listeners = [Listener(gateway_platform, same) for _ in range(3)]
    for listener in listeners:
        listener.start()
    try:
        waited(lambda: all(listener.live() for listener in listeners), "three streams open")
        with gateway_platform.client(same) as client:
            refused = client.get("/v1/live")
        assert refused.status_code == 429, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) > 0
        assert "GATEWAY_LIVE_MAX_STREAMS_PER_USER" in refused.json()["detail"]
        other = Listener(gateway_platform, gateway_platform.token("org_admin", org))
        other.start()
        waited(other.live, "another user's stream open")
        other.stopped.set()
    finally:
        for listener in listeners:
            listener.stopped.set()
