"""End to end on the real broker and PostgreSQL: what the front desk does through booking
(book, check in, complete, cancel, mark a no-show) shows on the location's day in
availability's calendar within a bounded wait."""

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from clinic.devstack.testing import command

STAFF = {"X-Actor-Id": "desk-1", "X-Actor-Role": "front_desk", "X-Actor-Channel": "front-desk"}
BOUND = 15.0


def test_each_front_desk_step_shows_on_the_location_day_within_a_bounded_wait(
    booking_and_availability: Callable[..., tuple[httpx.Client, httpx.Client]],
) -> None:
    b, a = booking_and_availability(demo=False)
    b.headers.update(STAFF)
    org = command(b, "/organizations", {"name": "Calendar Group"})["id"]
    base = f"/organizations/{org}"
    # The location's day is the test's day: its clock reads between 01:00 and 22:00 now (UTC,
    # or six hours behind it late at night), so the visits below end before its midnight.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    zone = "UTC" if 1 <= now.hour < 22 else "Etc/GMT+6"
    place = {"name": "Front", "time_zone": zone}
    location = command(b, f"{base}/locations", place)["id"]
    doctors = [
        command(
            b,
            f"{base}/resources",
            {
                "category": "provider",
                "name": f"Dr. {n}",
                "kind": "physician",
                "location_ids": [location],
            },
        )["id"]
        for n in range(2)
    ]
    hours = [
        {"location_id": location, "weekday": d, "start": "00:00", "end": "23:59"} for d in range(7)
    ]
    for doctor in doctors:
        command(b, f"{base}/resources/{doctor}/schedule/weekly-hours", {"hours": hours}, "PUT")
    step = {
        "name": "visit",
        "duration_minutes": 15,
        "requirements": [{"role": "physician", "category": "provider"}],
    }
    kind = command(b, f"{base}/appointment-types", {"name": "Visit", "steps": [step]})["id"]
    patient = command(
        b,
        f"{base}/patients",
        {"given_name": "Cal", "family_name": "Endar", "birth_date": "1980-01-01"},
    )["id"]

    # Four visits: one starts in a few seconds (for the no-show), three later today.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    soon = now + dt.timedelta(seconds=4)
    later = (now + dt.timedelta(minutes=30)).replace(second=0)
    starts = [soon, later, later + dt.timedelta(minutes=15), later + dt.timedelta(minutes=30)]
    visits = [
        command(
            b,
            f"{base}/appointments",
            {
                "appointment_type_id": kind,
                "location_id": location,
                "patient_id": patient,
                "start": start.isoformat(),
                "preferred_resources": {"physician": doctors[n % 2]},
            },
        )["id"]
        for n, start in enumerate(starts)
    ]
    day = soon.astimezone(ZoneInfo(zone)).date().isoformat()

    def statuses() -> dict[str, str]:
        response = a.get(f"{base}/calendars/locations/{location}", params={"date": day})
        if response.status_code != 200:
            return {}
        view: dict[str, Any] = response.json()
        return {
            appointment["id"]: appointment["status"]
            for column in view["resources"]
            for appointment in column["appointments"]
        }

    def shows(expected: dict[str, str]) -> float:
        started = time.monotonic()
        while {k: statuses().get(k) for k in expected} != expected:
            assert time.monotonic() - started < BOUND, (expected, statuses())
            time.sleep(0.05)
        return time.monotonic() - started

    waits = [shows({v: "booked" for v in visits})]
    command(b, f"{base}/appointments/{visits[1]}/check-in", {})
    waits.append(shows({visits[1]: "checked-in"}))
    command(b, f"{base}/appointments/{visits[1]}/complete", {})
    waits.append(shows({visits[1]: "fulfilled"}))
    command(b, f"{base}/appointments/{visits[2]}/cancel", {"reason": "called in sick"})
    waits.append(shows({visits[2]: "cancelled"}))
    while dt.datetime.now(dt.UTC) < soon:
        time.sleep(0.2)
    command(b, f"{base}/appointments/{visits[0]}/no-show", {})
    waits.append(shows({visits[0]: "noshow"}))
    assert max(waits) < BOUND

    # Filters, the provider's own day and the patient's list, over HTTP.
    only = a.get(
        f"{base}/calendars/locations/{location}", params={"date": day, "status": "cancelled"}
    ).json()
    assert [x["id"] for c in only["resources"] for x in c["appointments"]] == [visits[2]]
    doctor_day = a.get(f"{base}/calendars/resources/{doctors[1]}", params={"from": day}).json()
    assert {x["id"] for d in doctor_day["days"] for x in d["appointments"]} == {
        visits[1],
        visits[3],
    }
    mine = a.get(f"{base}/calendars/patients/{patient}", params={"limit": 3}).json()
    assert [x["id"] for x in mine["appointments"]] == visits[:3]
    assert mine["next_cursor"]

    # The KPIs of the day: four booked, one no-show against one fulfilled, one cancelled
    # (late: it was due within a day); the search session's time to book.
    def kpis() -> dict[str, Any]:
        response = a.get(f"{base}/kpis", params={"from": day, "to": day})
        assert response.status_code == 200, response.text
        buckets = response.json()["buckets"]
        return buckets[0] if buckets else {}

    started = time.monotonic()
    while kpis().get("no_show_rate") != 0.5:
        assert time.monotonic() - started < BOUND, kpis()
        time.sleep(0.1)
    today = kpis()
    assert today["appointments_booked"] == 4
    assert (today["cancellation_rate"], today["late_cancellation_rate"]) == (0.25, 0.25)
    assert today["utilisation"] is not None
    assert 0 < today["utilisation"] < 1
    by_provider = a.get(
        f"{base}/kpis", params={"from": day, "to": day, "group_by": "provider"}
    ).json()["buckets"]
    assert sorted(b["group"] for b in by_provider) == sorted(doctors)
    metrics = a.get("/metrics").text
    assert "clinic_kpi_no_show_rate" in metrics

    # A search session that books: its first search to the booking is measured.
    session = str(uuid.uuid4())
    searched = a.get(
        f"{base}/slots",
        params={
            "appointment_type_id": kind,
            "location_id": location,
            "from": day,
            "to": day,
            "session_id": session,
        },
    )
    assert searched.status_code == 200, searched.text
    slot = searched.json()["slots"][-1]
    response = b.post(
        f"{base}/appointments",
        json={
            "appointment_type_id": kind,
            "location_id": location,
            "patient_id": patient,
            "start": slot["start"],
        },
        headers={"Idempotency-Key": session, "X-Correlation-Id": session},
    )
    assert response.status_code == 201, response.text
    started = time.monotonic()
    while kpis()["funnel"]["search_to_book_minutes"]["median"] is None:
        assert time.monotonic() - started < BOUND, kpis()
        time.sleep(0.1)
    assert 0 <= kpis()["funnel"]["search_to_book_minutes"]["median"] < 5

    # Bad input and another tenant's ids: problems, never a 500.
    for path, params, status in (
        (f"{base}/calendars/locations/{location}", {"date": "2027-02-30"}, 422),
        (f"{base}/calendars/locations/{location}", {}, 422),
        (f"{base}/calendars/resources/{doctors[0]}", {"from": day, "to": "2099-01-01"}, 422),
        (f"{base}/calendars/patients/{patient}", {"cursor": "%%%"}, 422),
        (f"/organizations/{doctors[0]}/calendars/locations/{location}", {"date": day}, 404),
        (f"{base}/kpis", {"from": day, "to": "2030-01-01"}, 422),
        (f"{base}/kpis", {"from": day, "to": day, "period": "year"}, 422),
        (f"{base}/kpis", {"from": day, "to": day, "group_by": "patient"}, 422),
    ):
        response = a.get(path, params=params)
        assert response.status_code == status, (path, params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
