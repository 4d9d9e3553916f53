"""Bad input of any kind gets a clear 4xx problem and writes nothing."""

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from scenario import Clinic, Clock, at, build_clinic, postgres_env, weekday_ahead

from clinic.booking.application import Bookings
from clinic.booking.commands import RegisterOrganization
from clinic.devstack.testing import RunningService


@pytest.fixture
def clinic(request: pytest.FixtureRequest, schema_name: str) -> Iterator[Clinic]:
    clock = Clock(dt.datetime.now(dt.UTC))
    app = Bookings(env=postgres_env(request, schema_name), clock=clock)
    yield build_clinic(app, clock)
    app.close()


def cases(clinic: Clinic, other_org: str) -> list[tuple[str, str, str, Any, int, str]]:
    org = clinic.org
    soon = at(weekday_ahead(9), 10)  # the clinic is open Monday to Friday
    good = {
        "appointment_type_id": str(clinic.types["named"]),
        "location_id": str(clinic.location),
        "patient_id": str(clinic.patients[0]),
        "start": soon.isoformat(),
    }
    appointments = f"/organizations/{org}/appointments"
    resource = f"/organizations/{org}/resources/{clinic.providers[0]}"
    return [
        ("malformed JSON", "POST", appointments, b'{"start": ', 422, "validation-error"),
        (
            "a naive datetime",
            "POST",
            appointments,
            {**good, "start": soon.replace(tzinfo=None).isoformat()},
            422,
            "validation-error",
        ),
        (
            "an unknown appointment type",
            "POST",
            appointments,
            {**good, "appointment_type_id": str(uuid.uuid4())},
            404,
            "not-found",
        ),
        (
            "an unknown patient",
            "POST",
            appointments,
            {**good, "patient_id": str(uuid.uuid4())},
            404,
            "not-found",
        ),
        (
            "a malformed id",
            "POST",
            appointments,
            {**good, "patient_id": "42"},
            422,
            "validation-error",
        ),
        (
            "another organisation's resources",
            "POST",
            f"/organizations/{other_org}/appointments",
            good,
            404,
            "not-found",
        ),
        (
            "a non-existent local time",
            "POST",
            appointments,
            {
                **{k: v for k, v in good.items() if k != "start"},
                "local_start": "2027-03-28T02:30:00",
            },
            422,
            "non-existent-local-time",
        ),
        (
            "both start and local_start",
            "POST",
            appointments,
            {**good, "local_start": "2027-03-01T09:00:00"},
            422,
            "validation-error",
        ),
        ("unknown fields", "POST", appointments, {**good, "price": 0}, 422, "validation-error"),
        ("an oversized body", "POST", appointments, b"x" * 200_000, 413, "payload-too-large"),
        (
            "an exception ending before it starts",
            "POST",
            f"/organizations/{org}/resources/{clinic.providers[0]}/schedule/exceptions",
            {"kind": "leave", "start": "2027-01-02T10:00:00Z", "end": "2027-01-02T09:00:00Z"},
            422,
            "invalid-request",
        ),
        (
            "working hours ending before they start",
            "PUT",
            f"/organizations/{org}/resources/{clinic.providers[0]}/schedule/weekly-hours",
            {
                "hours": [
                    {
                        "location_id": str(clinic.location),
                        "weekday": 0,
                        "start": "17:00",
                        "end": "08:00",
                    }
                ]
            },
            422,
            "invalid-request",
        ),
        (
            "a weekday 7",
            "PUT",
            f"/organizations/{org}/resources/{clinic.providers[0]}/schedule/weekly-hours",
            {
                "hours": [
                    {
                        "location_id": str(clinic.location),
                        "weekday": 7,
                        "start": "08:00",
                        "end": "17:00",
                    }
                ]
            },
            422,
            "validation-error",
        ),
        (
            "an unknown time zone",
            "POST",
            f"/organizations/{org}/locations",
            {"name": "Atlantis", "time_zone": "Ocean/Atlantis"},
            422,
            "invalid-request",
        ),
        (
            "a birth date in the future",
            "POST",
            f"/organizations/{org}/patients",
            {"given_name": "Fut", "family_name": "Ure", "birth_date": "2150-01-01"},
            422,
            "invalid-request",
        ),
        (
            "a birth date beyond the platform's calendar",
            "POST",
            f"/organizations/{org}/patients",
            {"given_name": "Fut", "family_name": "Ure", "birth_date": "2999-01-01"},
            422,
            "validation-error",
        ),
        (
            "a booking in the past",
            "POST",
            appointments,
            {**good, "start": "2020-01-06T09:00:00Z"},
            422,
            "invalid-time",
        ),
        # Found by a hostile client: each used to answer 500 or to be accepted.
        *[
            (f"a start at the calendar's end ({when})", "POST", appointments, body, 422, slug)
            for when, body, slug in (
                ("0001-01-01", {**good, "start": "0001-01-01T00:00:00Z"}, "validation-error"),
                ("9999-12-31", {**good, "start": "9999-12-31T23:59:59Z"}, "validation-error"),
                (
                    "year 1 +14:00",
                    {**good, "start": "0001-01-01T00:30:00+14:00"},
                    "validation-error",
                ),
                ("9999 -01:00", {**good, "start": "9999-12-31T23:59:59-01:00"}, "validation-error"),
            )
        ],
        *[
            (
                f"the day view at {day}",
                "GET",
                f"{resource}/days/{day}",
                None,
                422,
                "validation-error",
            )
            for day in ("0001-01-01", "9999-12-31")
        ],
        *[
            (
                f"the owner at {at}",
                "GET",
                f"{resource}/owner?at={at}",
                None,
                422,
                "validation-error",
            )
            for at in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z")
        ],
        (
            "an exception spanning the years 0032 to 3757",
            "POST",
            f"{resource}/schedule/exceptions",
            {"kind": "leave", "start": "0032-01-01T00:00:00Z", "end": "3757-01-01T00:00:00Z"},
            422,
            "validation-error",
        ),
        (
            "an exception of three years",
            "POST",
            f"{resource}/schedule/exceptions",
            {"kind": "leave", "start": "2030-01-01T00:00:00Z", "end": "2033-01-01T00:00:00Z"},
            422,
            "invalid-request",
        ),
        *[
            (f"a NUL character in {what}", "POST", path, body, 422, "validation-error")
            for what, path, body in (
                ("a note", appointments, {**good, "note": "call\u0000back"}),
                (
                    "a location name",
                    f"/organizations/{org}/locations",
                    {"name": "Mitte\u0000", "time_zone": "Europe/Berlin"},
                ),
                (
                    "a patient's name",
                    f"/organizations/{org}/patients",
                    {"given_name": "A\u0000", "family_name": "B", "birth_date": "1990-01-01"},
                ),
            )
        ],
        (
            "a lone surrogate in a note",
            "POST",
            appointments,
            b'{"appointment_type_id": "%s", "location_id": "%s", "patient_id": "%s", '
            b'"start": "%s", "note": "\\ud800"}'
            % tuple(
                str(v).encode()
                for v in (
                    good["appointment_type_id"],
                    good["location_id"],
                    good["patient_id"],
                    good["start"],
                )
            ),
            422,
            "validation-error",
        ),
        (
            "a string where a flag goes",
            "POST",
            appointments,
            {**good, "allow_overbooking": "yes"},
            422,
            "validation-error",
        ),
        (
            "a string where a number goes",
            "POST",
            f"/organizations/{org}/appointment-types",
            {
                "name": "Quick",
                "steps": [
                    {
                        "name": "s",
                        "duration_minutes": "15",
                        "requirements": [{"role": "physician", "category": "provider"}],
                    }
                ],
            },
            422,
            "validation-error",
        ),
        (
            "a preferred resource for a role the type does not have",
            "POST",
            appointments,
            {**good, "preferred_resources": {"surgeon": str(clinic.providers[0])}},
            422,
            "invalid-request",
        ),
        (
            "a date-only local start",
            "POST",
            appointments,
            {
                **{k: v for k, v in good.items() if k != "start"},
                "local_start": soon.date().isoformat(),
            },
            422,
            "validation-error",
        ),
        (
            "a local start with an offset",
            "POST",
            appointments,
            {
                **{k: v for k, v in good.items() if k != "start"},
                "local_start": "2027-03-01T09:00:00+01:00",
            },
            422,
            "validation-error",
        ),
        (
            "cancelling an unknown appointment",
            "POST",
            f"{appointments}/{uuid.uuid4()}/cancel",
            {"reason": "x"},
            404,
            "not-found",
        ),
    ]


def test_every_kind_of_bad_input_gets_a_4xx_problem_and_writes_nothing(
    clinic: Clinic, start_service: Callable[..., RunningService]
) -> None:
    service = start_service("clinic.booking", "BOOKING_")
    other_org = clinic.app.handle(
        RegisterOrganization(request_id="other-org", organization_name="Other Group")
    ).body["id"]
    before = clinic.app.recorder.max_notification_id()
    with httpx.Client(base_url=service.url, timeout=30) as http:
        for name, method, path, body, status, slug in cases(clinic, other_org):
            content = body if isinstance(body, bytes) else None
            response = http.request(
                method,
                path,
                json=None if content else body,
                content=content,
                headers={
                    "Idempotency-Key": f"bad-{uuid.uuid4()}",
                    "Content-Type": "application/json",
                },
            )
            assert response.status_code == status, (name, response.text)
            assert response.headers["content-type"] == "application/problem+json", name
            problem = response.json()
            assert problem["type"].endswith("/" + slug), (name, problem)
            assert problem["status"] == status, name
            assert problem["detail"], name
        missing_key = http.post(f"/organizations/{clinic.org}/appointments", json={})
        assert missing_key.status_code == 400
    assert clinic.app.recorder.max_notification_id() == before


def test_every_status_change_the_status_does_not_allow_is_a_409_problem_over_http(
    clinic: Clinic, start_service: Callable[..., RunningService]
) -> None:
    service = start_service("clinic.booking", "BOOKING_")
    base = f"/organizations/{clinic.org}/appointments"
    soon = at(weekday_ahead(9), 10)  # the clinic is open Monday to Friday
    body = {
        "appointment_type_id": str(clinic.types["consult"]),
        "location_id": str(clinic.location),
        "patient_id": str(clinic.patients[0]),
        "start": soon.isoformat(),
    }

    def send(http: httpx.Client, path: str, payload: Any = None) -> httpx.Response:
        return http.post(path, json=payload, headers={"Idempotency-Key": str(uuid.uuid4())})

    with httpx.Client(base_url=service.url, timeout=30) as http:
        booked = send(http, base, body).json()["id"]
        cancelled = send(http, base, {**body, "start": (soon + dt.timedelta(hours=1)).isoformat()})
        cancelled_id = cancelled.json()["id"]
        assert send(http, f"{base}/{cancelled_id}/cancel", {"reason": "x"}).is_success
        before = clinic.app.recorder.max_notification_id()
        refused = [
            (f"{base}/{cancelled_id}/cancel", {"reason": "again"}),
            (f"{base}/{cancelled_id}/reschedule", {"start": soon.isoformat()}),
            (f"{base}/{cancelled_id}/confirm", None),
            (f"{base}/{cancelled_id}/check-in", None),
            (f"{base}/{booked}/confirm", None),
            (f"{base}/{booked}/complete", None),
        ]
        for path, payload in refused:
            response = send(http, path, payload)
            assert response.status_code == 409, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            problem = response.json()
            assert problem["type"].endswith("/invalid-status-transition"), problem
            assert problem["status"] == 409  # the rule's appointment status never replaces it
            assert problem["appointment_status"] in ("cancelled", "booked")
        assert clinic.app.recorder.max_notification_id() == before


def test_a_reschedule_racing_a_cancel_over_http_never_answers_500(
    clinic: Clinic, start_service: Callable[..., RunningService]
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    service = start_service("clinic.booking", "BOOKING_")
    base = f"/organizations/{clinic.org}/appointments"
    first = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )
    first += dt.timedelta(days=(7 - first.weekday()) % 7)  # a Monday, 09:00 in Berlin
    statuses: list[int] = []
    with httpx.Client(base_url=service.url, timeout=30) as http:
        for n in range(20):
            start = first + dt.timedelta(days=n // 8, minutes=45 * (n % 8))
            made = http.post(
                base,
                json={
                    "appointment_type_id": str(clinic.types["consult"]),
                    "location_id": str(clinic.location),
                    "patient_id": str(clinic.patients[0]),
                    "start": start.isoformat(),
                },
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            assert made.status_code == 201, made.text
            appointment = made.json()["id"]
            requests = [
                (f"{base}/{appointment}/cancel", {"reason": "race"}),
                (
                    f"{base}/{appointment}/reschedule",
                    {"start": (start + dt.timedelta(days=21)).isoformat()},
                ),
            ]
            with ThreadPoolExecutor(2) as pool:
                statuses += [
                    r.status_code
                    for r in pool.map(
                        lambda pr: httpx.post(
                            service.url + pr[0],
                            json=pr[1],
                            headers={"Idempotency-Key": str(uuid.uuid4())},
                            timeout=30,
                        ),
                        requests,
                    )
                ]
    assert statuses
    assert set(statuses) <= {200, 409}, statuses


@pytest.mark.parametrize("size", [70_000, 8_000_000])
def test_a_chunked_body_over_the_limit_is_a_413_problem(
    clinic: Clinic, start_service: Callable[..., RunningService], size: int
) -> None:
    service = start_service("clinic.booking", "BOOKING_")

    def chunks() -> Iterator[bytes]:
        sent = 0
        while sent < size:
            piece = b"x" * min(16_384, size - sent)
            sent += len(piece)
            yield piece

    before = clinic.app.recorder.max_notification_id()
    response = httpx.post(
        f"{service.url}/organizations/{clinic.org}/appointments",
        content=chunks(),
        headers={"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/payload-too-large")
    assert clinic.app.recorder.max_notification_id() == before
