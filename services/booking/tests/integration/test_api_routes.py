"""Every route of booking's API called over HTTP, as a clinic's front desk would in one day:
reference data, schedules, holds, bookings and every status change, the patient's
confirmation of attendance, the waitlist, and the calendar's "why is this time taken?"
views."""

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from clinic.devstack.testing import RunningService, days_ahead

FRONT_DESK = {"X-Actor-Id": "desk-7", "X-Actor-Role": "front_desk", "X-Actor-Channel": "front-desk"}
PATIENT = {"X-Actor-Id": "p-42", "X-Actor-Role": "patient", "X-Actor-Channel": "patient-portal"}


class Desk:
    def __init__(self, url: str, actor: dict[str, str] | None = None) -> None:
        self.http = httpx.Client(base_url=url, timeout=30, headers=actor or FRONT_DESK)

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        status: int = 200,
        actor: dict[str, str] | None = None,
    ) -> Any:
        headers = {"Idempotency-Key": str(uuid.uuid4()), **(actor or {})}
        response = self.http.request(method, path, json=body, headers=headers)
        assert response.status_code == status, (method, path, response.text)
        if status >= 400:
            assert response.headers["content-type"] == "application/problem+json"
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
    cancelled = desk.send("POST", f"{base}/appointments/{other['id']}/cancel", {"reason": "ill"})
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

    # 3. The patient confirms they will come to the confirmed hold (a reminder's link): it
    #    stays booked, a second confirmation records nothing, a cancelled one is refused.
    kept = f"{base}/appointments/{hold['id']}"
    confirmed = desk.send("POST", f"{kept}/confirm-attendance", actor=PATIENT)
    assert (confirmed["status"], confirmed["attendance_confirmed_by"]) == ("booked", "patient")
    assert confirmed["attendance_confirmed_at"] is not None
    assert desk.send("POST", f"{kept}/confirm-attendance") == confirmed
    assert desk.get(kept) == confirmed
    refused = desk.send(
        "POST", f"{base}/appointments/{other['id']}/confirm-attendance", status=409, actor=PATIENT
    )
    assert refused["type"].endswith("invalid-status-transition")
    assert desk.get(f"{base}/appointments/{other['id']}")["version"] == cancelled["version"]
    assert desk.get(f"{kept}/history")["events"][-1]["event"] == "AttendanceConfirmed"

    # 4. Why is this time taken? The confirmed hold owns its minutes on the doctor's day.
    day = desk.get(f"{base}/resources/{doctor}/days/{far.date().isoformat()}")
    assert [c["appointment_id"] for c in day["claims"]] == [hold["id"]]
    assert day["history"][0]["event"] == "Opened"
    owner = desk.get(
        f"{base}/resources/{doctor}/owner", at=(far + dt.timedelta(minutes=10)).isoformat()
    )
    assert [o["appointment_id"] for o in owner["owners"]] == [hold["id"]]
    assert desk.get(f"{base}/resources/{doctor}/owner", at=later.isoformat())["free"]

    # 5. The waitlist: join, read, leave.
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


def test_who_acts_comes_from_the_actor_headers_and_a_body_field_cannot_claim_otherwise(
    start_service: Callable[..., RunningService],
) -> None:
    url = start_service("clinic.booking", "BOOKING_").url
    desk = Desk(url)
    org = desk.send("POST", "/organizations", {"name": "Actor Group"}, 201)["id"]
    base = f"/organizations/{org}"
    location = desk.send("POST", f"{base}/locations", {"name": "L", "time_zone": "UTC"}, 201)
    doctor = desk.send(
        "POST",
        f"{base}/resources",
        {
            "category": "provider",
            "name": "Dr. Actor",
            "kind": "physician",
            "location_ids": [location["id"]],
            "overbooking_allowance": 1,
        },
        201,
    )["id"]
    hours = [
        {"location_id": location["id"], "weekday": d, "start": "00:00", "end": "23:59"}
        for d in range(7)
    ]
    desk.send("PUT", f"{base}/resources/{doctor}/schedule/weekly-hours", {"hours": hours})
    step = {
        "name": "visit",
        "duration_minutes": 30,
        "requirements": [{"role": "physician", "category": "provider"}],
    }
    visit = desk.send("POST", f"{base}/appointment-types", {"name": "V", "steps": [step]}, 201)
    surgery = desk.send(
        "POST",
        f"{base}/appointment-types",
        {"name": "Surgery", "steps": [step], "patient_bookable": False},
        201,
    )
    patient = desk.send(
        "POST",
        f"{base}/patients",
        {"given_name": "Ada", "family_name": "Actor", "birth_date": "1980-02-03"},
        201,
    )["id"]
    start = days_ahead(3)
    when = {
        "appointment_type_id": visit["id"],
        "location_id": location["id"],
        "patient_id": patient,
        "start": start.isoformat(),
    }

    # The patient's side comes from the headers; a deprecated booked_by must agree.
    mine = desk.send("POST", f"{base}/appointments", when, 201, actor=PATIENT)
    assert mine["booked_by"] == "patient"
    later = {**when, "start": (start + dt.timedelta(hours=1)).isoformat()}
    for actor, claimed in ((PATIENT, "clinic"), (FRONT_DESK, "patient")):
        refused = desk.send(
            "POST", f"{base}/appointments", {**later, "booked_by": claimed}, 422, actor=actor
        )
        assert "X-Actor-Role" in refused["detail"]
    agreed = desk.send(
        "POST", f"{base}/appointments", {**later, "booked_by": "patient"}, 201, actor=PATIENT
    )
    assert agreed["booked_by"] == "patient"

    # Only staff overbook, whatever the body says; patients cannot book staff-only types.
    overbook = {**when, "allow_overbooking": True}
    assert desk.send("POST", f"{base}/appointments", overbook, 403, actor=PATIENT)["type"].endswith(
        "staff-only"
    )
    assert desk.send("POST", f"{base}/appointments", overbook, 201)["booked_by"] == "clinic"
    desk.send(
        "POST",
        f"{base}/holds",
        {**later, "appointment_type_id": surgery["id"], "start": start.isoformat()},
        403,
        actor=PATIENT,
    )

    # The patient cannot strike out or complete; the cancel's deprecated "by" must agree.
    desk.send(
        "POST",
        f"{base}/appointments/{mine['id']}/entered-in-error",
        {"reason": "x"},
        403,
        actor=PATIENT,
    )
    desk.send(
        "POST",
        f"{base}/appointments/{mine['id']}/cancel",
        {"by": "clinic", "reason": "x"},
        422,
        actor=PATIENT,
    )
    desk.send(
        "POST",
        f"{base}/appointments/{mine['id']}/reschedule",
        {"start": (start + dt.timedelta(hours=2)).isoformat(), "actor": "clinic"},
        422,
        actor=PATIENT,
    )
    cancelled = desk.send(
        "POST", f"{base}/appointments/{mine['id']}/cancel", {"reason": "x"}, actor=PATIENT
    )
    assert cancelled["cancellation"]["by"] == "patient"

    # Malformed or half-given actor headers are refused before anything is decided.
    for bad in (
        {"X-Actor-Id": "u-1"},
        {"X-Actor-Role": "front_desk"},
        {"X-Actor-Id": "u-1", "X-Actor-Role": "superuser"},
        {"X-Actor-Id": "u-1", "X-Actor-Role": "patient", "X-Actor-Channel": "Portal!"},
    ):
        problem = Desk(url, {"X-Actor-Channel": "internal"}).send(
            "POST",
            f"{base}/appointments",
            {**when, "start": (start + dt.timedelta(hours=5)).isoformat()},
            400,
            actor=bad,
        )
        assert problem["type"].endswith("invalid-request-context")
    history = desk.get(f"{base}/appointments/{mine['id']}/history")["events"]
    assert [(e["event"], e["actor"]["user_id"], e["actor"]["role"]) for e in history] == [
        ("Booked", "p-42", "patient"),
        ("Cancelled", "p-42", "patient"),
    ]
    day = desk.get(f"{base}/resources/{doctor}/days/{start.date().isoformat()}")
    assert len(day["claims"]) == 2  # the patient's second booking and the overbooking


def test_patients_over_http_demographics_preferences_identifiers_and_merge(
    start_service: Callable[..., RunningService],
) -> None:
    desk = Desk(start_service("clinic.booking", "BOOKING_").url)
    org = desk.send("POST", "/organizations", {"name": "Patient Group"}, 201)["id"]
    other_org = desk.send("POST", "/organizations", {"name": "Another Group"}, 201)["id"]
    base = f"/organizations/{org}"
    mrn = "https://emr.example/mrn"
    grace = desk.send(
        "POST",
        f"{base}/patients",
        {
            "given_name": "Grace",
            "family_name": "Hopper",
            "birth_date": "1956-12-09",
            "gender": "female",
            "address": {"lines": ["1 Main St"], "city": "Arlington", "country": "US"},
            "contacts": [{"system": "sms", "value": "+1 555 0100", "use": "mobile"}],
            "time_zone": "America/New_York",
            "preferred_channel": "sms",
            "language": "en-US",
            "consent_sms": True,
            "identifiers": [{"system": mrn, "value": "4711"}],
        },
        201,
    )
    pid = grace["id"]
    assert grace["consent"] == {"sms": True, "email": False}
    assert grace["address"]["lines"] == ["1 Main St"]

    # Bad input: a clear problem, and the record is unchanged.
    for method, path, body, status in (
        ("PATCH", f"{base}/patients/{pid}", {"given_name": None}, 422),
        ("PATCH", f"{base}/patients/{pid}", {"nickname": "Amazing"}, 422),
        ("PATCH", f"{base}/patients/{pid}", {"family_name": "Hop\u0000per"}, 422),
        ("PATCH", f"{base}/patients/{pid}", {"gender": "f"}, 422),
        ("PATCH", f"{base}/patients/{pid}", {"birth_date": "2999-01-01"}, 422),
        ("PATCH", f"{base}/patients/{pid}", {"time_zone": "Mars/Olympus"}, 422),
        ("PATCH", f"{base}/patients/{pid}", {"address": {"country": "usa"}}, 422),
        ("PATCH", f"{base}/patients/{pid}", {}, 422),
        ("PUT", f"{base}/patients/{pid}/preferences", {"consent_sms": "yes"}, 422),
        ("POST", f"{base}/patients/{pid}/identifiers", {"system": mrn}, 422),
        ("POST", f"{base}/patients/{pid}/merge", {"duplicate_id": pid}, 422),
        ("PATCH", f"/organizations/{other_org}/patients/{pid}", {"gender": "male"}, 404),
        ("PATCH", f"{base}/patients/{uuid.uuid4()}", {"gender": "male"}, 404),
    ):
        desk.send(method, path, body, status)
    assert desk.get(f"{base}/patients/{pid}")["version"] == grace["version"]

    moved = desk.send(
        "PATCH",
        f"{base}/patients/{pid}",
        {"family_name": "Hopper-Murray", "address": None, "time_zone": None},
    )
    assert (moved["family_name"], moved["address"], moved["time_zone"]) == (
        "Hopper-Murray",
        None,
        None,
    )
    prefs = desk.send(
        "PUT", f"{base}/patients/{pid}/preferences", {"language": "de", "consent_email": True}
    )
    assert (prefs["language"], prefs["consent"]) == ("de", {"sms": True, "email": True})

    # Identifiers: found by system|value; one patient per identifier.
    found = desk.get(f"{base}/patients", identifier=f"{mrn}|4711")["patients"]
    assert [p["id"] for p in found] == [pid]
    assert desk.get(f"{base}/patients", identifier=f"{mrn}|0")["patients"] == []
    assert desk.get(f"/organizations/{other_org}/patients", identifier=f"{mrn}|4711") == {
        "patients": []
    }
    desk.get(f"{base}/patients", status=422, identifier="no-bar")
    dup = desk.send(
        "POST",
        f"{base}/patients",
        {"given_name": "G.", "family_name": "Hopper", "birth_date": "1956-12-09"},
        201,
    )["id"]
    taken = desk.send(
        "POST", f"{base}/patients/{dup}/identifiers", {"system": mrn, "value": "4711"}, 409
    )
    assert taken["patient_id"] == pid
    desk.send("POST", f"{base}/patients/{dup}/identifiers", {"system": "urn:lab", "value": "L-9"})
    desk.send(
        "POST",
        f"{base}/patients/{dup}/merge",
        {"duplicate_id": pid},
        403,
        actor=PATIENT,
    )

    # Merge: the duplicate is retired into Grace; its identifiers find her.
    merged = desk.send("POST", f"{base}/patients/{pid}/merge", {"duplicate_id": dup})
    assert merged["merged_ids"] == [dup]
    assert desk.get(f"{base}/patients/{dup}")["merged_into"] == pid
    assert desk.get(f"{base}/patients", identifier="urn:lab|L-9")["patients"][0]["id"] == pid
    refused = desk.send("PATCH", f"{base}/patients/{dup}", {"gender": "female"}, 409)
    assert refused["type"].endswith("patient-merged")
    assert refused["merged_into"] == pid


def test_reference_data_changes_over_http_and_bad_changes_write_nothing(
    start_service: Callable[..., RunningService],
) -> None:
    desk = Desk(start_service("clinic.booking", "BOOKING_").url)
    org = desk.send("POST", "/organizations", {"name": "Change Group"}, 201)["id"]
    base = f"/organizations/{org}"
    mitte = desk.send("POST", f"{base}/locations", {"name": "Mitte", "time_zone": "UTC"}, 201)
    nord = desk.send("POST", f"{base}/locations", {"name": "Nord", "time_zone": "UTC"}, 201)
    doctor = desk.send(
        "POST",
        f"{base}/resources",
        {
            "category": "provider",
            "name": "Dr. C",
            "kind": "physician",
            "location_ids": [mitte["id"]],
        },
        201,
    )
    step = {
        "name": "visit",
        "duration_minutes": 20,
        "requirements": [{"role": "physician", "category": "provider"}],
    }
    kind = desk.send(
        "POST",
        f"{base}/appointment-types",
        {
            "name": "Check-up",
            "steps": [step],
            "cancellation_cutoff_minutes": 1440,
            "reschedule_cutoff_minutes": 120,
            "reminder_plan": [{"before_minutes": 120, "channel": "sms"}, {"before_minutes": 1440}],
            "patient_facing": {
                "de": {"name": "Vorsorge", "preparation": "Nüchtern kommen"},
                "es": {"name": "Revisión"},
            },
        },
        201,
    )
    assert [r["before_minutes"] for r in kind["reminder_plan"]] == [1440, 120]
    assert kind["patient_facing"]["de"] == {
        "name": "Vorsorge",
        "description": "",
        "preparation": "Nüchtern kommen",
    }

    # Refused changes: a clear problem, and nothing written.
    for method, path, body, status in (
        ("PATCH", f"{base}/locations/{mitte['id']}", {"time_zone": "Europe/Berlin"}, 422),
        ("PATCH", f"{base}/locations/{mitte['id']}", {"name": ""}, 422),
        ("PATCH", f"{base}/resources/{doctor['id']}", {"location_ids": []}, 422),
        ("PATCH", f"{base}/resources/{doctor['id']}", {"location_ids": [str(uuid.uuid4())]}, 404),
        ("PATCH", f"{base}/appointment-types/{kind['id']}", {"seats": 0}, 422),
        ("PATCH", f"{base}/appointment-types/{kind['id']}", {"steps": None}, 422),
        (
            "PATCH",
            f"{base}/appointment-types/{kind['id']}",
            {"patient_facing": {"x!": {"name": "a"}}},
            422,
        ),
        (
            "PATCH",
            f"{base}/appointment-types/{kind['id']}",
            {"reminder_plan": [{"before_minutes": 60}, {"before_minutes": 60}]},
            422,
        ),
        ("POST", f"{base}/resources/{doctor['id']}/retire", {"reason": 5}, 422),
        ("POST", f"/organizations/{uuid.uuid4()}/locations/{mitte['id']}/retire", {}, 404),
    ):
        desk.send(method, path, body, status)
    desk.send("POST", f"{base}/locations/{mitte['id']}/retire", {}, 403, actor=PATIENT)
    assert desk.get(f"{base}/locations/{mitte['id']}")["version"] == mitte["version"]
    assert desk.get(f"{base}/resources/{doctor['id']}")["version"] == doctor["version"]
    assert desk.get(f"{base}/appointment-types/{kind['id']}")["version"] == kind["version"]

    renamed = desk.send(
        "PATCH",
        f"{base}/locations/{mitte['id']}",
        {"name": "Mitte Campus", "address": {"city": "Berlin"}},
    )
    assert (renamed["name"], renamed["address"], renamed["time_zone"]) == (
        "Mitte Campus",
        {"city": "Berlin"},
        "UTC",
    )
    moved = desk.send(
        "PATCH",
        f"{base}/resources/{doctor['id']}",
        {"location_ids": [mitte["id"], nord["id"]], "specialties": ["gp"]},
    )
    assert moved["location_ids"] == [mitte["id"], nord["id"]]
    changed = desk.send(
        "PATCH",
        f"{base}/appointment-types/{kind['id']}",
        {"name": "Annual check-up", "reschedule_cutoff_minutes": None, "specialty": "gp"},
    )
    assert (changed["name"], changed["reschedule_cutoff_minutes"], changed["specialty"]) == (
        "Annual check-up",
        1440,
        "gp",
    )
    for path, view in (
        (f"appointment-types/{kind['id']}", kind),
        (f"resources/{doctor['id']}", doctor),
        (f"locations/{nord['id']}", nord),
    ):
        retired = desk.send("POST", f"{base}/{path}/retire", {"reason": "reorganised"})
        assert retired["retired"] is True
        assert retired["id"] == view["id"]
        again = desk.send("POST", f"{base}/{path}/retire", {"reason": "again"}, 409)
        assert again["type"].endswith("/retired")


def test_the_waitlist_over_http_keeps_rank_and_weekdays_and_bad_values_write_nothing(
    start_service: Callable[..., RunningService],
) -> None:
    desk = Desk(start_service("clinic.booking", "BOOKING_").url)
    org = desk.send("POST", "/organizations", {"name": "Waitlist Group"}, 201)["id"]
    base = f"/organizations/{org}"
    location = desk.send("POST", f"{base}/locations", {"name": "L", "time_zone": "UTC"}, 201)
    step = {
        "name": "visit",
        "duration_minutes": 30,
        "requirements": [{"role": "physician", "category": "provider"}],
    }
    visit = desk.send("POST", f"{base}/appointment-types", {"name": "V", "steps": [step]}, 201)
    patient = desk.send(
        "POST",
        f"{base}/patients",
        {"given_name": "Wanda", "family_name": "Wait", "birth_date": "1970-05-06"},
        201,
    )["id"]
    today = dt.datetime.now(dt.UTC).date()
    wish = {
        "patient_id": patient,
        "appointment_type_id": visit["id"],
        "location_ids": [location["id"]],
        "earliest": today.isoformat(),
        "latest": (today + dt.timedelta(days=30)).isoformat(),
    }

    # 1. The clinic ranks the entry; the days come back in order, and read back the same.
    ranked = desk.send("POST", f"{base}/waitlist", {**wish, "priority": 1, "weekdays": [5, 2]}, 201)
    assert (ranked["priority"], ranked["weekdays"]) == (1, [2, 5])
    assert desk.get(f"{base}/waitlist/{ranked['id']}") == ranked
    unranked = desk.send("POST", f"{base}/waitlist", wish, 201)
    assert (unranked["priority"], unranked["weekdays"]) == (5, [])

    # 2. Out of range, repeated or not numbers: a validation problem, and nothing written.
    written = desk.get("/events", limit=1)["top"]
    for field, value in (
        ("priority", 0),
        ("priority", 10),
        ("priority", "2"),
        ("priority", None),
        ("weekdays", [0]),
        ("weekdays", [8]),
        ("weekdays", [1, 1]),
        ("weekdays", [1, 2, 3, 4, 5, 6, 7, 1]),
        ("weekdays", "mon"),
    ):
        problem = desk.send("POST", f"{base}/waitlist", {**wish, field: value}, 422)
        assert problem["type"].endswith("validation-error"), (field, value)
        assert [e["location"][:2] for e in problem["errors"]] == [["body", field]], (field, value)

    # 3. A patient joining themselves names their days but cannot rank themselves.
    refused = desk.send("POST", f"{base}/waitlist", {**wish, "priority": 2}, 403, actor=PATIENT)
    assert refused["type"].endswith("staff-only")
    assert desk.get("/events", limit=1)["top"] == written
    own = desk.send(
        "POST", f"{base}/waitlist", {**wish, "priority": 5, "weekdays": [6]}, 201, actor=PATIENT
    )
    assert (own["priority"], own["weekdays"]) == (5, [6])
