"""Hold expiry as a fact: with two booking replicas sweeping the same event store, every
hold left alone is recorded as ``Appointment.HoldExpired`` on Kafka within a bounded delay,
exactly once; and a patient's appointments are served, page by page, from the directory."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from clinic.devstack.components import Infrastructure
from clinic.devstack.testing import RunningService, command, days_ahead, read_topics
from clinic.events import Envelope, Topic

HOLD_SECONDS = 3.0
SWEEP_SECONDS = 0.5
BOUND_SECONDS = HOLD_SECONDS + SWEEP_SECONDS + 10.0
"""The hold, one sweep interval, and slack for a loaded CI machine."""


def small_clinic(http: httpx.Client) -> dict[str, Any]:
    org = command(http, "/organizations", {"name": "Sweep Group"})["id"]
    base = f"/organizations/{org}"
    location = command(http, f"{base}/locations", {"name": "L", "time_zone": "UTC"})["id"]
    doctor = command(
        http,
        f"{base}/resources",
        {"category": "provider", "name": "Dr. S", "kind": "physician", "location_ids": [location]},
    )["id"]
    hours = [
        {"location_id": location, "weekday": d, "start": "00:00", "end": "23:59"} for d in range(7)
    ]
    command(http, f"{base}/resources/{doctor}/schedule/weekly-hours", {"hours": hours}, "PUT")
    step = {
        "name": "visit",
        "duration_minutes": 15,
        "requirements": [{"role": "physician", "category": "provider"}],
    }
    kind = command(http, f"{base}/appointment-types", {"name": "V", "steps": [step]})["id"]
    patient = command(
        http,
        f"{base}/patients",
        {"given_name": "Hal", "family_name": "Sweep", "birth_date": "1970-01-01"},
    )["id"]
    return {"base": base, "location": location, "type": kind, "patient": patient}


def test_every_hold_left_alone_expires_on_the_topic_once_with_two_replicas(
    start_service: Callable[..., RunningService], infrastructure: Infrastructure
) -> None:
    settings = {
        "BOOKING_HOLD_MINUTES": str(HOLD_SECONDS / 60),
        "BOOKING_HOLD_SWEEP_SECONDS": str(SWEEP_SECONDS),
    }
    replicas = [start_service("clinic.booking", "BOOKING_", **settings) for _ in range(2)]
    clients = [httpx.Client(base_url=r.url, timeout=30) for r in replicas]
    clinic = small_clinic(clients[0])
    start = days_ahead(2)
    held, confirmed = [], None
    for n in range(8):
        hold = command(
            clients[n % 2],
            f"{clinic['base']}/holds",
            {
                "appointment_type_id": clinic["type"],
                "location_id": clinic["location"],
                "patient_id": clinic["patient"],
                "start": (start + dt.timedelta(minutes=15 * n)).isoformat(),
            },
        )
        held.append(uuid.UUID(hold["id"]))
    held_at = time.monotonic()
    confirmed = held.pop()
    command(clients[1], f"{clinic['base']}/appointments/{confirmed}/confirm", {})

    def expired(records: list[Any]) -> Counter[uuid.UUID]:
        envelopes = (Envelope.from_json(r.value) for r in records)
        return Counter(
            e.aggregate_id
            for e in envelopes
            if e.type == "Appointment.HoldExpired" and e.aggregate_id in {*held, confirmed}
        )

    records = asyncio.run(
        read_topics(
            infrastructure.kafka_bootstrap_servers,
            [str(Topic.APPOINTMENTS)],
            lambda rs: set(expired(rs)) == set(held),
            within=BOUND_SECONDS + 30,
        )
    )
    took = time.monotonic() - held_at
    assert took < BOUND_SECONDS, f"the last HoldExpired reached Kafka {took:.1f} s after holding"

    # Several more sweeps of both replicas later: still once each, and never the confirmed.
    time.sleep(SWEEP_SECONDS * 4)
    records = asyncio.run(
        read_topics(
            infrastructure.kafka_bootstrap_servers,
            [str(Topic.APPOINTMENTS)],
            lambda rs: set(expired(rs)) >= set(held),
            within=30,
        )
    )
    assert expired(records) == Counter({h: 1 for h in held})
    [envelope] = [
        e
        for e in (Envelope.from_json(r.value) for r in records)
        if e.type == "Appointment.HoldExpired" and e.aggregate_id == held[0]
    ]
    assert envelope.actor is not None
    assert (envelope.actor.user_id, envelope.actor.role) == ("hold-sweeper", "system")
    assert dt.datetime.fromisoformat(envelope.payload["expired_at"]) <= envelope.occurred_at
    for client in clients:
        view = client.get(f"{clinic['base']}/appointments/{held[0]}").json()
        assert view["status"] == "cancelled"
        metrics = client.get("/metrics").text
        assert "booking_holds_swept_total" in metrics
    for client in clients:
        client.close()


def test_a_patients_appointments_come_a_page_at_a_time_by_start(
    start_service: Callable[..., RunningService],
) -> None:
    service = start_service("clinic.booking", "BOOKING_")
    with httpx.Client(base_url=service.url, timeout=30) as http:
        clinic = small_clinic(http)
        base, patient = clinic["base"], clinic["patient"]
        other = command(
            http,
            f"{base}/patients",
            {"given_name": "Other", "family_name": "Person", "birth_date": "1980-01-01"},
        )["id"]
        start = days_ahead(3)
        booked = []
        for n, who in enumerate([patient] * 5 + [other]):
            booked.append(
                command(
                    http,
                    f"{base}/appointments",
                    {
                        "appointment_type_id": clinic["type"],
                        "location_id": clinic["location"],
                        "patient_id": who,
                        # booked latest first: the answer still comes by start
                        "start": (start + dt.timedelta(minutes=15 * (5 - n))).isoformat(),
                    },
                )
            )
        command(http, f"{base}/appointments/{booked[0]['id']}/cancel", {"reason": "x"})
        mine = sorted((b for b in booked if b["patient_id"] == patient), key=lambda b: b["start"])
        path = f"{base}/patients/{patient}/appointments"

        def pages(**params: Any) -> list[dict[str, Any]]:
            seen, cursor = [], None
            deadline = time.monotonic() + 15
            while True:
                query = {**params, **({"cursor": cursor} if cursor else {})}
                response = http.get(path, params=query)
                assert response.status_code == 200, response.text
                page = response.json()
                seen += page["appointments"]
                cursor = page["next_cursor"]
                if cursor is None:
                    return seen
                assert time.monotonic() < deadline

        deadline = time.monotonic() + 15
        while len(everything := pages(limit=2)) < 5 or everything[-1]["status"] == "booked":
            assert time.monotonic() < deadline, everything  # the directory trails by moments
            time.sleep(0.1)
        assert [a["id"] for a in everything] == [b["id"] for b in mine]
        assert [a["status"] for a in everything] == ["booked"] * 4 + ["cancelled"]
        assert [a["id"] for a in pages(status="cancelled")] == [booked[0]["id"]]
        later = (start + dt.timedelta(minutes=30)).isoformat()
        assert len(pages(**{"from": later})) == 4  # those ending after it (+30 ... +75)

        # Unknown or another tenant's patient: 404; a forged cursor or a bad status: 422.
        for wrong in (
            f"{base}/patients/{uuid.uuid4()}",
            f"/organizations/{uuid.uuid4()}/patients/{patient}",
        ):
            response = http.get(f"{wrong}/appointments")
            assert response.status_code == 404, response.text
            assert response.headers["content-type"] == "application/problem+json"
        for params in ({"cursor": "not-a-cursor"}, {"status": "lost"}, {"limit": 0}):
            response = http.get(path, params=params)
            assert response.status_code == 422, (params, response.text)
            assert response.headers["content-type"] == "application/problem+json"
