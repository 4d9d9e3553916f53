"""Bad input of any kind gets a clear 4xx problem and writes nothing."""

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from scenario import Clinic, Clock, build_clinic, postgres_env

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
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=9)).replace(hour=9, minute=0, second=0)
    good = {
        "appointment_type_id": str(clinic.types["named"]),
        "location_id": str(clinic.location),
        "patient_id": str(clinic.patients[0]),
        "start": soon.isoformat(),
    }
    appointments = f"/organizations/{org}/appointments"
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
            {"given_name": "Fut", "family_name": "Ure", "birth_date": "2999-01-01"},
            422,
            "invalid-request",
        ),
        (
            "a booking in the past",
            "POST",
            appointments,
            {**good, "start": "2020-01-06T09:00:00Z"},
            422,
            "invalid-time",
        ),
        (
            "cancelling an unknown appointment",
            "POST",
            f"{appointments}/{uuid.uuid4()}/cancel",
            {"by": "clinic", "reason": "x"},
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
