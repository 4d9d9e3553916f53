"""On the real broker and PostgreSQL: what a clinic does through booking (reference data, a
patient and their preferences, a booking, a move, a cancellation) reaches notification's
tables within a bounded wait, as the messages will need it."""

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import httpx
import psycopg

from clinic.devstack.components import Infrastructure
from clinic.devstack.testing import RunningService, command, days_ahead, wait_caught_up

STAFF = {"X-Actor-Id": "desk-1", "X-Actor-Role": "front_desk", "X-Actor-Channel": "front-desk"}
BOUND = 20.0


def test_a_patient_and_their_appointment_reach_notification_as_booking_changes_them(
    start_service: Callable[..., RunningService],
    infrastructure: Infrastructure,
    schema_name: str,
) -> None:
    booking = start_service("clinic.booking", "BOOKING_", BOOKING_LOAD_DEMO_DATA="false")
    notification = start_service(
        "clinic.notification",
        "NOTIFICATION_",
        schema=f"{schema_name}_nt",
        NOTIFICATION_CONSUMER_GROUP=f"notification-{schema_name}",
        NOTIFICATION_CONSUMER_LAG_INTERVAL_SECONDS="1",
    )
    # A new group reads the broker from its start: the earlier tests' events first.
    wait_caught_up(notification.url, within=300)
    b = httpx.Client(base_url=booking.url, timeout=30, headers=STAFF)
    org = command(b, "/organizations", {"name": "Reminder Group"})["id"]
    base = f"/organizations/{org}"
    location = command(
        b,
        f"{base}/locations",
        {"name": "Mitte", "time_zone": "Europe/Berlin", "address": {"city": "Berlin"}},
    )["id"]
    doctor = command(
        b,
        f"{base}/resources",
        {"category": "provider", "name": "Dr. A", "kind": "physician", "location_ids": [location]},
    )["id"]
    hours = [
        {"location_id": location, "weekday": d, "start": "00:00", "end": "23:59"} for d in range(7)
    ]
    command(b, f"{base}/resources/{doctor}/schedule/weekly-hours", {"hours": hours}, "PUT")
    step = {
        "name": "visit",
        "duration_minutes": 30,
        "requirements": [{"role": "physician", "category": "provider"}],
    }
    kind = command(
        b,
        f"{base}/appointment-types",
        {
            "name": "Check-up",
            "steps": [step],
            "reminder_plan": [{"before_minutes": 1440, "channel": "sms"}, {"before_minutes": 120}],
            "patient_facing": {"de": {"name": "Vorsorge", "preparation": "Nüchtern kommen."}},
        },
    )["id"]
    patient = command(
        b,
        f"{base}/patients",
        {
            "given_name": "Ana",
            "family_name": "Ruiz",
            "birth_date": "1980-01-01",
            "contacts": [{"system": "email", "value": "ana@example.org"}],
            "language": "es",
            "consent_email": True,
        },
    )["id"]
    command(
        b,
        f"{base}/patients/{patient}/preferences",
        {"preferred_channel": "sms", "consent_sms": True},
        "PUT",
    )
    start = days_ahead(3)
    visit = command(
        b,
        f"{base}/appointments",
        {
            "appointment_type_id": kind,
            "location_id": location,
            "patient_id": patient,
            "start": start.isoformat(),
        },
    )["id"]
    moved = start + dt.timedelta(hours=2)
    command(b, f"{base}/appointments/{visit}/reschedule", {"start": moved.isoformat()})

    def rows() -> dict[str, Any]:
        with psycopg.connect(
            infrastructure.database_url, options=f"-c search_path={schema_name}_nt"
        ) as conn:
            found: dict[str, Any] = {}
            for table, key, value in (
                ("patients", "patient_id", patient),
                ("appointments", "appointment_id", visit),
                ("appointment_types", "appointment_type_id", kind),
                ("locations", "location_id", location),
            ):
                try:
                    cursor = conn.execute(f"SELECT * FROM {table} WHERE {key} = %s", [value])
                except psycopg.errors.UndefinedTable:
                    return {}
                names = [c.name for c in cursor.description or ()]
                row = cursor.fetchone()
                found[table] = dict(zip(names, row, strict=True)) if row else None
            return found

    def waited_for(check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        started = time.monotonic()
        while not check(found := rows()):
            assert time.monotonic() - started < BOUND, found
            time.sleep(0.2)
        return found

    found = waited_for(
        lambda f: (
            bool(f)
            and all(f.values())
            and f["appointments"]["start_at"] == moved
            and f["patients"]["preferred_channel"] == "sms"
        )
    )
    assert found["patients"]["language"] == "es"
    assert (found["patients"]["consent_sms"], found["patients"]["consent_email"]) == (True, True)
    assert found["patients"]["contacts"] == [
        {"system": "email", "value": "ana@example.org", "use": None}
    ]
    assert [r["before_minutes"] for r in found["appointment_types"]["reminder_plan"]] == [
        1440,
        120,
    ]
    assert found["appointment_types"]["patient_facing"]["de"]["name"] == "Vorsorge"
    assert found["locations"]["address"] == {"city": "Berlin"}
    assert found["appointments"]["status"] == "booked"

    command(b, f"{base}/appointments/{visit}/cancel", {"reason": "ill"})
    waited_for(lambda f: f["appointments"]["status"] == "cancelled")
