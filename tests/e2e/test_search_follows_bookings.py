"""End to end on the real broker and PostgreSQL: booking's decisions reach availability's
search through the relay, Kafka and the projection."""

import time
from collections.abc import Callable

import httpx

from clinic.devstack.testing import command

WEEKDAYS = range(5)


def wait_until(check: Callable[[], bool], within: float = 15.0) -> float:
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, "not visible in time"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_booked_slot_leaves_search_and_comes_back_when_cancelled(
    booking_and_availability: Callable[..., tuple[httpx.Client, httpx.Client]],
) -> None:
    b, a = booking_and_availability(demo=False)

    # 1. A clinic with one provider working weekdays 09:00-12:00 in Berlin.
    org = command(b, "/organizations", {"name": "E2E Group"})["id"]
    base = f"/organizations/{org}"
    location = command(b, f"{base}/locations", {"name": "Mitte", "time_zone": "Europe/Berlin"})[
        "id"
    ]
    provider = command(
        b,
        f"{base}/resources",
        {
            "category": "provider",
            "name": "Dr. E2E",
            "kind": "physician",
            "specialties": ["gp"],
            "location_ids": [location],
        },
    )["id"]
    command(
        b,
        f"{base}/resources/{provider}/schedule/weekly-hours",
        {
            "hours": [
                {"location_id": location, "weekday": d, "start": "09:00", "end": "12:00"}
                for d in WEEKDAYS
            ]
        },
        method="PUT",
    )
    kind = command(
        b,
        f"{base}/appointment-types",
        {
            "name": "Consult",
            "steps": [
                {
                    "name": "consult",
                    "duration_minutes": 30,
                    "requirements": [
                        {"role": "physician", "category": "provider", "specialty": "gp"}
                    ],
                }
            ],
        },
    )["id"]
    patient = command(
        b,
        f"{base}/patients",
        {"given_name": "Eve", "family_name": "Tester", "birth_date": "1990-05-05"},
    )["id"]

    # 2. Search shows the provider's slots (next Monday + 7 days, 09:00 local first).
    import datetime as dt

    today = dt.date.today()
    monday = today + dt.timedelta(days=(7 - today.weekday()) % 7 + 7)
    params = {
        "appointment_type_id": kind,
        "location_id": location,
        "from": monday.isoformat(),
        "to": monday.isoformat(),
    }

    def starts() -> list[str]:
        response = a.get(f"{base}/slots", params=params)
        return (
            [s["local_start"] for s in response.json().get("slots", [])]
            if response.status_code == 200
            else []
        )

    nine = f"{monday.isoformat()}T09:00:00+01:00"
    wait_until(lambda: nine in starts(), within=30)
    assert len(starts()) == 11  # 09:00 ... 11:30 every 15 minutes

    # 3. Book 09:00: it leaves search within a bounded wait.
    appointment = command(
        b,
        f"{base}/appointments",
        {
            "appointment_type_id": kind,
            "location_id": location,
            "patient_id": patient,
            "local_start": f"{monday.isoformat()}T09:00:00",
        },
    )
    took = wait_until(lambda: nine not in starts())
    assert f"{monday.isoformat()}T09:15:00+01:00" not in starts()  # overlaps the booking
    assert f"{monday.isoformat()}T09:30:00+01:00" in starts()

    # 4. Cancel: the slot comes back.
    command(b, f"{base}/appointments/{appointment['id']}/cancel", {"reason": "e2e"})
    wait_until(lambda: nine in starts())
    assert took < 15

    # 5. A type only staff may book: staff find its time, a patient's search is refused,
    #    whether the gateway names the patient in X-Actor-Role or staff search as one.
    staff_only = command(
        b,
        f"{base}/appointment-types",
        {
            "name": "Minor surgery",
            "patient_bookable": False,
            "steps": [
                {
                    "name": "surgery",
                    "duration_minutes": 30,
                    "requirements": [{"role": "physician", "category": "provider"}],
                }
            ],
        },
    )["id"]
    surgery = {**params, "appointment_type_id": staff_only}

    def search(headers: dict[str, str], **extra: str) -> httpx.Response:
        return a.get(f"{base}/slots", params={**surgery, **extra}, headers=headers)

    wait_until(lambda: search({}).status_code == 200)
    assert search({}).json()["count"] == 11
    patient_actor = {"X-Actor-Id": "p-1", "X-Actor-Role": "patient"}
    for refused in (search(patient_actor), search({}, booked_by="patient")):
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"

    # 6. Reference data that changes reaches search: a consult that now lasts an hour
    #    starts by 11:00 at the latest, a retired type is refused with 410, and a retired
    #    location is no longer searched.
    longer = [
        {
            "name": "consult",
            "duration_minutes": 60,
            "requirements": [{"role": "physician", "category": "provider", "specialty": "gp"}],
        }
    ]
    command(b, f"{base}/appointment-types/{kind}", {"steps": longer}, method="PATCH")
    wait_until(lambda: len(starts()) == 9)  # 09:00 ... 11:00
    command(b, f"{base}/appointment-types/{staff_only}/retire", {"reason": "e2e"})
    wait_until(lambda: search({}).status_code == 410)
    assert search({}).headers["content-type"] == "application/problem+json"
    command(b, f"{base}/locations/{location}/retire", {"reason": "e2e"})
    wait_until(lambda: a.get(f"{base}/slots", params=params).status_code == 410)
    everywhere = a.get(f"{base}/next-available", params={"appointment_type_id": kind})
    assert everywhere.status_code == 200, everywhere.text
    assert everywhere.json()["by_location"] == {}
