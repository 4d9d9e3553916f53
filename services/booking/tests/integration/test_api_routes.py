"""Every route of booking's API called over HTTP, as a clinic's front desk would in one day:
reference data, schedules, holds, bookings and every status change, the waitlist, and the
calendar's "why is this time taken?" views."""

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from clinic.devstack.testing import RunningService


class Desk:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30)

    def send(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.http.request(
            method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert response.status_code == status, (method, path, response.text)
        return response.json()

    def get(self, path: str, status: int = 200, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        assert response.status_code == status, (path, response.text)
        return response.json()


def test_a_front_desk_day_over_http_reaches_every_route(
    start_service: Callable[..., RunningService],
) -> None:
    desk = Desk(start_service("clinic.booking", "BOOKING_").url)

    # 1. Reference data: a group, a location open around the clock, a doctor and a room.
    org = desk.send("POST", "/organizations", {"name": "Route Group"}, 201)["id"]
    base = f"/organizations/{org}"
    assert desk.get(base)["name"] == "Route Group"
    location = desk.send("POST", f"{base}/locations", {"name": "Allday", "time_zone": "UTC"}, 201)[
        "id"
    ]
    assert desk.get(f"{base}/locations/{location}")["time_zone"] == "UTC"
    doctor = desk.send(
        "POST",
        f"{base}/resources",
        {
            "category": "provider",
            "name": "Dr. Route",
            "kind": "physician",
            "specialties": ["gp"],
            "location_ids": [location],
        },
        201,
    )["id"]
    assert desk.get(f"{base}/resources/{doctor}")["kind"] == "physician"
    allowance = desk.send(
        "PUT", f"{base}/resources/{doctor}/overbooking-allowance", {"allowance": 1}
    )
    assert allowance["overbooking_allowance"] == 1
    hours = [
        {"location_id": location, "weekday": d, "start": "00:00", "end": "23:59"} for d in range(7)
    ]
    schedule = desk.send(
        "PUT", f"{base}/resources/{doctor}/schedule/weekly-hours", {"hours": hours}
    )
    assert len(schedule["weekly_hours"]) == 7
    far = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=40)
    leave = desk.send(
        "POST",
        f"{base}/resources/{doctor}/schedule/exceptions",
        {
            "kind": "leave",
            "start": far.isoformat(),
            "end": (far + dt.timedelta(hours=2)).isoformat(),
            "reason": "training",
        },
        201,
    )
    [exception] = leave["exceptions"]
    removed = desk.send(
        "DELETE", f"{base}/resources/{doctor}/schedule/exceptions/{exception['id']}"
    )
    assert removed["exceptions"] == []
    assert desk.get(f"{base}/resources/{doctor}/schedule")["version"] == removed["version"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    desk.send(  # extra hours across midnight, whenever the test runs
        "POST",
        f"{base}/resources/{doctor}/schedule/exceptions",
        {
            "kind": "extra",
            "start": now.isoformat(),
            "end": (now + dt.timedelta(hours=8)).isoformat(),
            "location_id": location,
        },
        201,
    )
    visit = desk.send(
        "POST",
        f"{base}/appointment-types",
        {
            "name": "Visit",
            "steps": [
                {
                    "name": "visit",
                    "duration_minutes": 30,
                    "requirements": [{"role": "physician", "category": "provider"}],
                }
            ],
        },
        201,
    )["id"]
    assert desk.get(f"{base}/appointment-types/{visit}")["duration_minutes"] == 30
    patient = desk.send(
        "POST",
        f"{base}/patients",
        {"given_name": "Ada", "family_name": "Route", "birth_date": "1980-02-03"},
        201,
    )["id"]
    assert desk.get(f"{base}/patients/{patient}")["given_name"] == "Ada"

    # 2. A hold, confirmed; a booking an hour from now, rescheduled, checked in, seen
    #    arriving and completed; a third cancelled; a fourth struck out as entered in error.
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).replace(
        minute=0, second=0, microsecond=0
    )
    when = {"appointment_type_id": visit, "location_id": location, "patient_id": patient}
    hold = desk.send("POST", f"{base}/holds", {**when, "start": far.isoformat()}, 201)
    assert hold["status"] == "pending"
    assert desk.send("POST", f"{base}/appointments/{hold['id']}/confirm")["status"] == "booked"
    booked = desk.send("POST", f"{base}/appointments", {**when, "start": soon.isoformat()}, 201)
    moved = desk.send(
        "POST",
        f"{base}/appointments/{booked['id']}/reschedule",
        {"start": (soon + dt.timedelta(minutes=30)).isoformat()},
    )
    assert moved["start"] == (soon + dt.timedelta(minutes=30)).isoformat().replace("+00:00", "Z")
    no_show = desk.http.post(
        f"{base}/appointments/{booked['id']}/no-show",
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert no_show.status_code == 409  # it has not started yet
    for path, status in (
        ("check-in", "checked-in"),
        ("arrive", "arrived"),
        ("complete", "fulfilled"),
    ):
        assert desk.send("POST", f"{base}/appointments/{booked['id']}/{path}")["status"] == status
    assert desk.get(f"{base}/appointments/{booked['id']}")["status"] == "fulfilled"
    history = desk.get(f"{base}/appointments/{booked['id']}/history")["events"]
    assert [e["event"] for e in history] == [
        "Booked",
        "Rescheduled",
        "CheckedIn",
        "Arrived",
        "Fulfilled",
    ]
    later = far + dt.timedelta(hours=3)
    other = desk.send("POST", f"{base}/appointments", {**when, "start": later.isoformat()}, 201)
    cancelled = desk.send(
        "POST", f"{base}/appointments/{other['id']}/cancel", {"by": "clinic", "reason": "ill"}
    )
    assert cancelled["status"] == "cancelled"
    wrong = desk.send(
        "POST",
        f"{base}/appointments",
        {**when, "start": (later + dt.timedelta(hours=1)).isoformat()},
        201,
    )
    struck = desk.send(
        "POST",
        f"{base}/appointments/{wrong['id']}/entered-in-error",
        {"reason": "wrong patient"},
    )
    assert struck["status"] == "entered-in-error"

    # 3. Why is this time taken? The confirmed hold owns its minutes on the doctor's day.
    day = desk.get(f"{base}/resources/{doctor}/days/{far.date().isoformat()}")
    assert [c["appointment_id"] for c in day["claims"]] == [hold["id"]]
    assert day["history"][0]["event"] == "Opened"
    owner = desk.get(
        f"{base}/resources/{doctor}/owner", at=(far + dt.timedelta(minutes=10)).isoformat()
    )
    assert [o["appointment_id"] for o in owner["owners"]] == [hold["id"]]
    assert desk.get(f"{base}/resources/{doctor}/owner", at=later.isoformat())["free"]

    # 4. The waitlist: join, read, leave.
    entry = desk.send(
        "POST",
        f"{base}/waitlist",
        {
            "patient_id": patient,
            "appointment_type_id": visit,
            "location_ids": [location],
            "earliest": far.date().isoformat(),
            "latest": (far + dt.timedelta(days=7)).date().isoformat(),
        },
        201,
    )
    assert desk.get(f"{base}/waitlist/{entry['id']}")["status"] == "waitlist"
    left = desk.send("POST", f"{base}/waitlist/{entry['id']}/leave", {"reason": "booked"})
    assert left["status"] == "left"
