"""Optimistic concurrency over HTTP, as the EMR bridge uses it for FHIR ``If-Match``: every
command on one appointment may name the version its client last read, answers carry the
version as ``ETag``, and a change made meanwhile by anyone, on any replica, makes the
command fail with 412 instead of overwriting it."""

import datetime as dt
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from scenario import FRONT_DESK as DESK_CONTEXT
from scenario import Clinic, Clock, at, build_clinic, next_monday, postgres_env

from clinic.booking.application import Bookings
from clinic.booking.commands import CancelAppointment, ConfirmAttendance
from clinic.booking.domain.errors import VersionMismatchError
from clinic.booking.domain.resource_day import ResourceDay, resource_day_id
from clinic.devstack.testing import RunningService

FRONT_DESK = {"X-Actor-Id": "desk-7", "X-Actor-Role": "front_desk", "X-Actor-Channel": "front-desk"}
EMR = {"X-Actor-Id": "emr-bridge", "X-Actor-Role": "emr", "X-Actor-Channel": "fhir"}

# Every route that acts on one existing appointment, with the body it needs.
ROUTES: list[tuple[str, dict[str, Any] | None]] = [
    ("confirm", None),
    ("reschedule", {"local_start": "REPLACED"}),
    ("cancel", {"reason": "ill"}),
    ("entered-in-error", {"reason": "wrong patient"}),
    ("confirm-attendance", None),
    ("check-in", None),
    ("arrive", None),
    ("complete", None),
    ("no-show", None),
]


@pytest.fixture
def env(request: pytest.FixtureRequest, schema_name: str) -> dict[str, str]:
    return postgres_env(request, schema_name)


@pytest.fixture
def clinic(env: dict[str, str]) -> Iterator[Clinic]:
    clock = Clock(dt.datetime.now(dt.UTC))
    app = Bookings(env=env, clock=clock)
    yield build_clinic(app, clock)
    app.close()


def send(
    http: httpx.Client,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    if_match: str | list[str] | None = None,
    key: str | None = None,
) -> httpx.Response:
    headers: list[tuple[str, str]] = [("Idempotency-Key", key or str(uuid.uuid4()))]
    if isinstance(if_match, str):
        headers.append(("If-Match", if_match))
    elif if_match is not None:
        headers += [("If-Match", value) for value in if_match]
    return http.post(path, json=body, headers=headers)


def book(http: httpx.Client, clinic: Clinic, start: dt.datetime) -> dict[str, Any]:
    booked = send(
        http,
        f"/organizations/{clinic.org}/appointments",
        {
            "appointment_type_id": str(clinic.types["named"]),
            "location_id": str(clinic.location),
            "patient_id": str(clinic.patients[0]),
            "start": start.isoformat(),
        },
    )
    assert booked.status_code == 201, booked.text
    return booked.json()  # type: ignore[no-any-return]


def history(clinic: Clinic, appointment_id: str) -> list[Any]:
    events: list[Any] = clinic.app.queries.appointment_history(
        clinic.org, uuid.UUID(appointment_id)
    )["events"]
    return events


def test_a_client_acting_on_the_version_it_read_changes_it_and_reads_the_new_etag(
    clinic: Clinic, start_service: Callable[..., RunningService]
) -> None:
    service = start_service("clinic.booking", "BOOKING_")
    day = next_monday()
    with httpx.Client(base_url=service.url, timeout=30, headers=EMR) as http:
        # 1. Booked, and read: version 1 in the body and as the ETag.
        appointment = book(http, clinic, at(day, 9))["id"]
        path = f"/organizations/{clinic.org}/appointments/{appointment}"
        read = http.get(path)
        assert (read.json()["version"], read.headers["etag"]) == (1, '"1"')

        # 2. Moved on the version read: applied, and the answer names version 2.
        moved = send(http, f"{path}/reschedule", {"start": at(day, 10).isoformat()}, if_match='"1"')
        assert moved.status_code == 200, moved.text
        assert (moved.json()["version"], moved.headers["etag"]) == (2, '"2"')

        # 3. A FHIR client's weak tag names the same version.
        attended = send(http, f"{path}/confirm-attendance", if_match='W/"2"')
        assert attended.status_code == 200, attended.text
        assert attended.headers["etag"] == '"3"'

        # 4. The same request again (its key): the first answer, whatever version it names.
        key = "fhir-cancel-1"
        cancelled = send(http, f"{path}/cancel", {"reason": "ill"}, if_match='"3"', key=key)
        again = send(http, f"{path}/cancel", {"reason": "ill"}, if_match='"3"', key=key)
        assert cancelled.status_code == again.status_code == 200, (cancelled.text, again.text)
        assert again.headers["idempotency-replayed"] == "true"
        assert (again.json(), again.headers["etag"]) == (cancelled.json(), '"4"')
        assert "idempotency-replayed" not in cancelled.headers

        # 5. ``*`` is any version: no check, the rules decide (it is cancelled already).
        refused = send(http, f"{path}/cancel", {"reason": "again"}, if_match="*")
        assert refused.status_code == 409, refused.text
        assert refused.json()["type"].endswith("/invalid-status-transition")
        assert http.get(path).headers["etag"] == '"4"'
    assert [e["event"] for e in history(clinic, appointment)] == [
        "Booked",
        "Rescheduled",
        "AttendanceConfirmed",
        "Cancelled",
    ]


def test_a_stale_or_malformed_if_match_is_refused_on_every_route_and_writes_nothing(
    clinic: Clinic, start_service: Callable[..., RunningService]
) -> None:
    service = start_service("clinic.booking", "BOOKING_")
    day = next_monday()
    with httpx.Client(base_url=service.url, timeout=30, headers=FRONT_DESK) as http:
        # 1. A hold moved once: a pending appointment at version 2.
        held = send(
            http,
            f"/organizations/{clinic.org}/holds",
            {
                "appointment_type_id": str(clinic.types["named"]),
                "location_id": str(clinic.location),
                "patient_id": str(clinic.patients[0]),
                "start": at(day, 9).isoformat(),
            },
        ).json()["id"]
        path = f"/organizations/{clinic.org}/appointments/{held}"
        moved = send(http, f"{path}/reschedule", {"start": at(day, 10).isoformat()})
        assert moved.headers["etag"] == '"2"'
        before = history(clinic, held)
        written = clinic.app.recorder.max_notification_id()

        for route, body in ROUTES:
            if body is not None and "local_start" in body:
                body = {"start": at(day, 11).isoformat()}
            # 2. A client that read version 1: 412, naming the version there is now.
            for stale in ('"1"', 'W/"1"', '"3"'):
                refused = send(http, f"{path}/{route}", body, if_match=stale)
                assert refused.status_code == 412, (route, refused.text)
                assert refused.headers["content-type"] == "application/problem+json"
                problem = refused.json()
                assert problem["type"] == "https://clinic.example/problems/version-mismatch"
                assert (problem["status"], problem["current_version"]) == (412, 2), problem
            # 3. Not one entity tag holding a version: 400.
            for malformed in ("1", '"0"', '"two"', '"1", "2"', ['"2"', '"2"']):
                refused = send(http, f"{path}/{route}", body, if_match=malformed)
                assert refused.status_code == 400, (route, malformed, refused.text)
                assert refused.json()["type"].endswith("/invalid-if-match")

    # 4. Nothing was written by any of them.
    assert clinic.app.recorder.max_notification_id() == written
    assert history(clinic, held) == before


def live_claims(clinic: Clinic, day: dt.date) -> list[Any]:
    aggregate = clinic.app.queries.reader.maybe(resource_day_id(clinic.providers[0], day))
    if not isinstance(aggregate, ResourceDay):
        return []
    return aggregate.live_claims(dt.datetime.now(dt.UTC))


def test_clients_acting_at_once_on_the_same_version_never_both_succeed(
    clinic: Clinic, start_service: Callable[..., RunningService]
) -> None:
    # 1. Two replicas on one event store; six appointments at version 1.
    replicas = [start_service("clinic.booking", "BOOKING_") for _ in range(2)]
    day = next_monday()
    tuesday = day + dt.timedelta(days=1)
    with httpx.Client(base_url=replicas[0].url, timeout=30, headers=FRONT_DESK) as http:
        appointments = [book(http, clinic, at(day, 9 + n))["id"] for n in range(6)]

    # 2. For each, four clients that read version 1 act at once, on both replicas: two move
    #    it (each to a free time of its own), one cancels it, one confirms attendance.
    clients = 4
    gate = threading.Barrier(len(appointments) * clients)

    def act(n: int) -> tuple[str, int, str | None]:
        appointment = appointments[n // clients]
        role = n % clients
        path = f"/organizations/{clinic.org}/appointments/{appointment}"
        with httpx.Client(base_url=replicas[n % 2].url, timeout=60, headers=FRONT_DESK) as http:
            gate.wait()
            if role < 2:
                start = at(tuesday, 8 + n // clients, 30 * role).isoformat()
                response = send(http, f"{path}/reschedule", {"start": start}, if_match='"1"')
            elif role == 2:
                response = send(http, f"{path}/cancel", {"reason": "race"}, if_match='"1"')
            else:
                response = send(http, f"{path}/confirm-attendance", if_match='"1"')
        return appointment, response.status_code, response.headers.get("etag")

    with ThreadPoolExecutor(len(appointments) * clients) as pool:
        outcomes = list(pool.map(act, range(len(appointments) * clients)))

    # 3. For each appointment exactly one succeeded (version 2); the others were refused.
    for appointment in appointments:
        mine = [(status, etag) for a, status, etag in outcomes if a == appointment]
        statuses = Counter(status for status, _ in mine)
        assert statuses[200] == 1, (appointment, mine)
        assert set(statuses) <= {200, 409, 412}, (appointment, mine)
        assert [etag for status, etag in mine if status == 200] == ['"2"']
        events = history(clinic, appointment)
        assert [e["version"] for e in events] == [1, 2], events

    # 4. And the calendar holds each appointment where it says it is, and nothing else.
    claims = [c for d in (day, tuesday) for c in live_claims(clinic, d)]
    for appointment in appointments:
        view = clinic.app.queries.get_appointment(clinic.org, uuid.UUID(appointment))
        held = [c for c in claims if str(c.appointment_id) == appointment]
        if view["status"] == "cancelled":
            assert held == []
        else:
            assert [c.start.isoformat().replace("+00:00", "Z") for c in held] == [view["start"]]
    assert len(claims) == sum(
        clinic.app.queries.get_appointment(clinic.org, uuid.UUID(a))["status"] != "cancelled"
        for a in appointments
    )


def test_a_replica_holding_an_older_copy_decides_on_the_stored_version(
    clinic: Clinic, env: dict[str, str]
) -> None:
    # 1. Two replicas. A records the patient's confirmation, and keeps the appointment as it
    #    is then (version 2).
    a, b = (Bookings(env={**env, "POSTGRES_POOL_SIZE": "2"}) for _ in range(2))
    try:
        start = at(next_monday(), 9)
        appointment = uuid.UUID(clinic.book("named", start)["id"])
        confirmed = a.handle(
            clinic.command(ConfirmAttendance, appointment_id=appointment, expected_version=1)
        )
        assert confirmed.body["version"] == 2

        # 2. B cancels it (version 3): A's copy is now older than the stored appointment.
        b.handle(clinic.command(CancelAppointment, appointment_id=appointment, reason="ill"))

        # 3. A client that read version 2 confirms again through A. On A's copy that would be
        #    "confirmed already", writing nothing; the stored appointment has moved on.
        with pytest.raises(VersionMismatchError) as refused:
            a.handle(
                ConfirmAttendance(
                    organization_id=clinic.org,
                    request_id="late-confirmation",
                    appointment_id=appointment,
                    expected_version=2,
                    context=DESK_CONTEXT,
                )
            )
        assert refused.value.extensions["current_version"] == 3
    finally:
        a.close()
        b.close()
