"""Every slot availability offers, booking accepts: the projection and the decision agree on
working hours, buffers, pools, multi-resource and two-step visits and group sessions."""

import datetime as dt
import time
import uuid
from collections.abc import Callable

import httpx


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name):
            return float(line.split()[-1])
    return 0.0


def settle(booking: httpx.Client, availability: httpx.Client) -> None:
    """Until the relay has published everything and the projection applied nothing new for
    a while."""
    deadline = time.monotonic() + 10
    applied, quiet_since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        now = metric(availability, 'projection_events_total{consumer="availability-')
        if metric(booking, "relay_lag_events") == 0 and now == applied:
            if time.monotonic() - quiet_since > 0.15:
                return
        else:
            applied, quiet_since = now, time.monotonic()
        time.sleep(0.03)


def test_slots_offered_for_every_demo_appointment_type_are_accepted_by_booking(
    booking_and_availability: Callable[..., tuple[httpx.Client, httpx.Client]],
) -> None:
    b, a = booking_and_availability(demo=True)
    demo = b.get("/demo").json()
    org = demo["organization_id"]
    day = dt.date.today() + dt.timedelta(days=4)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    booked = 0
    for name, kind in demo["appointment_types"].items():
        for place, location in demo["locations"].items():
            params = {
                "appointment_type_id": kind,
                "location_id": location,
                "from": day.isoformat(),
                "to": day.isoformat(),
                "limit": 500,
            }
            deadline = time.monotonic() + 30
            while True:
                response = a.get(f"/organizations/{org}/slots", params=params)
                slots = response.json().get("slots", []) if response.status_code == 200 else []
                if slots or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert slots, (name, place)
            # Book an offered slot with the resources search proposed, four times, asking
            # search again each time (offered slots of one answer overlap each other).
            for attempt in range(4):
                if not slots:  # the day is full for this type: booking must agree
                    local_ten = f"{day.isoformat()}T10:00:00"
                    refused = b.post(
                        f"/organizations/{org}/appointments",
                        headers={"Idempotency-Key": str(uuid.uuid4())},
                        json={
                            "appointment_type_id": kind,
                            "location_id": location,
                            "patient_id": demo["patients"][0],
                            "local_start": local_ten,
                        },
                    )
                    assert refused.status_code == 409, (name, place, refused.json())
                    break
                slot = slots[(attempt * 7) % len(slots)]
                response = b.post(
                    f"/organizations/{org}/appointments",
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                    json={
                        "appointment_type_id": kind,
                        "location_id": location,
                        "patient_id": demo["patients"][booked % len(demo["patients"])],
                        "start": slot["start"],
                        "preferred_resources": slot["resources"],
                    },
                )
                assert response.status_code == 201, (name, place, slot, response.json())
                booked += 1
                # Search is eventually consistent (each resource's claim travels on its own
                # partition): let it settle so the next search sees every booking so far.
                settle(b, a)
                slots = a.get(f"/organizations/{org}/slots", params=params).json()["slots"]
    assert booked >= 3 * len(demo["appointment_types"]) * len(demo["locations"])
