"""A small clinic used by the booking tests, built through the application's commands.

The same builder runs on eventsourcing's in-memory persistence (unit and application tests)
and on PostgreSQL (integration tests)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
import pytest

from clinic.booking.application import Bookings
from clinic.booking.domain.values import (
    Actor,
    Category,
    Contact,
    ExceptionKind,
    Requirement,
    ScheduleException,
    Step,
    WeeklyHours,
)
from clinic.booking.main import event_store_env
from clinic.booking.settings import BookingSettings

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
# A Monday; 2026-03-29 (Sunday) is the spring-forward night in Berlin.
MONDAY = dt.date(2026, 3, 2)
_ids = itertools.count()


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def request_id() -> str:
    return f"req-{uuid.uuid4()}"


def at(day: dt.date, hour: int, minute: int = 0, tz: str = BERLIN) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(day, dt.time(hour, minute), ZoneInfo(tz)).astimezone(dt.UTC)


def weekdays(
    location_id: UUID, start: str = "08:00", end: str = "17:00"
) -> tuple[WeeklyHours, ...]:
    return tuple(
        WeeklyHours(location_id, d, dt.time.fromisoformat(start), dt.time.fromisoformat(end))
        for d in range(5)
    )


@dataclass
class Clinic:
    app: Bookings
    clock: Clock
    org: UUID
    location: UUID
    providers: list[UUID] = field(default_factory=list)
    rooms: list[UUID] = field(default_factory=list)
    devices: list[UUID] = field(default_factory=list)
    patients: list[UUID] = field(default_factory=list)
    types: dict[str, UUID] = field(default_factory=dict)

    def reservation(self, type_name: str, start: dt.datetime, **kwargs: Any) -> dict[str, Any]:
        """The arguments of a hold or booking, with test defaults."""
        return {
            "appointment_type_id": self.types[type_name],
            "location_id": self.location,
            "patient_id": self.patients[0],
            "start": start,
            "preferred": {},
            "booked_by": Actor.CLINIC,
            "allow_overbooking": False,
            "note": "",
            **kwargs,
        }

    def book(self, type_name: str, start: dt.datetime, **kwargs: Any) -> dict[str, Any]:
        return self.app.book(
            self.org, request_id(), **self.reservation(type_name, start, **kwargs)
        ).body

    def reschedule(self, appointment: dict[str, Any], start: dt.datetime) -> dict[str, Any]:
        """Move a booked ``appointment`` (its view) as clinic staff."""
        return self.app.reschedule(
            self.org,
            request_id(),
            UUID(appointment["id"]),
            start=start,
            preferred={},
            actor=Actor.CLINIC,
        ).body

    def schedule_exception(
        self, kind: ExceptionKind, start: dt.datetime, end: dt.datetime, reason: str = ""
    ) -> None:
        """Leave, a holiday, blocked or (at the clinic's location) extra time for Dr. 0."""
        location = self.location if kind == ExceptionKind.EXTRA else None
        exception = ScheduleException(uuid.uuid4(), kind, start, end, location, reason)
        self.app.add_schedule_exception(self.org, request_id(), self.providers[0], exception)

    def hold(self, type_name: str, start: dt.datetime, **kwargs: Any) -> dict[str, Any]:
        values = self.reservation(type_name, start, **{"hold_minutes": 10, **kwargs})
        return self.app.hold(self.org, request_id(), **values).body


def build_clinic(app: Bookings, clock: Clock, providers: int = 2) -> Clinic:
    org = UUID(app.register_organization(request_id(), "Test Hospital Group").body["id"])
    location = UUID(
        app.register_location(
            org, request_id(), name="Mitte", address={"city": "Berlin"}, time_zone=BERLIN
        ).body["id"]
    )
    clinic = Clinic(app, clock, org, location)
    for n in range(providers):
        pid = UUID(
            app.register_resource(
                org,
                request_id(),
                category=Category.PROVIDER,
                name=f"Dr. {n}",
                kind="physician",
                specialties=("dermatology",),
                location_ids=(location,),
            ).body["id"]
        )
        app.set_weekly_hours(org, request_id(), pid, weekdays(location))
        clinic.providers.append(pid)
    for kind, bucket in (("exam-room", clinic.rooms), ("ultrasound", clinic.devices)):
        category = Category.ROOM if kind == "exam-room" else Category.DEVICE
        rid = UUID(
            app.register_resource(
                org,
                request_id(),
                category=category,
                name=kind,
                kind=kind,
                specialties=(),
                location_ids=(location,),
            ).body["id"]
        )
        app.set_weekly_hours(org, request_id(), rid, weekdays(location, "07:00", "19:00"))
        bucket.append(rid)
    physician = Requirement("physician", Category.PROVIDER, specialty="dermatology")
    define = app.define_appointment_type
    clinic.types["consult"] = UUID(
        define(
            org,
            request_id(),
            name="Consultation",
            steps=(Step("consult", 0, 30, (physician,)),),
        ).body["id"]
    )
    clinic.types["named"] = UUID(
        define(
            org,
            request_id(),
            name="Follow-up with Dr. 0",
            buffer_after_minutes=10,
            steps=(
                Step(
                    "visit",
                    0,
                    20,
                    (Requirement("physician", Category.PROVIDER, resource_id=clinic.providers[0]),),
                ),
            ),
        ).body["id"]
    )
    clinic.types["scan"] = UUID(
        define(
            org,
            request_id(),
            name="Ultrasound",
            steps=(
                Step(
                    "scan",
                    0,
                    45,
                    (
                        Requirement(
                            "physician", Category.PROVIDER, resource_id=clinic.providers[0]
                        ),
                        Requirement("room", Category.ROOM, kind="exam-room"),
                        Requirement("scanner", Category.DEVICE, kind="ultrasound"),
                    ),
                ),
            ),
        ).body["id"]
    )
    clinic.types["two-step"] = UUID(
        define(
            org,
            request_id(),
            name="Nurse then physician",
            steps=(
                Step("triage", 0, 15, (Requirement("room", Category.ROOM, kind="exam-room"),)),
                Step("consult", 15, 20, (physician,)),
            ),
        ).body["id"]
    )
    clinic.types["group"] = UUID(
        define(
            org,
            request_id(),
            name="Diabetes class",
            seats=3,
            steps=(Step("class", 0, 60, (Requirement("room", Category.ROOM, kind="exam-room"),)),),
        ).body["id"]
    )
    clinic.types["policy"] = UUID(
        define(
            org,
            request_id(),
            name="Minor surgery",
            minimum_notice_minutes=24 * 60,
            maximum_horizon_days=30,
            cancellation_cutoff_minutes=48 * 60,
            patient_bookable=False,
            steps=(Step("surgery", 0, 60, (physician,)),),
        ).body["id"]
    )
    for n in range(3):
        clinic.patients.append(
            UUID(
                app.register_patient(
                    org,
                    request_id(),
                    given_name=f"Pat{n}",
                    family_name="Test",
                    birth_date=dt.date(1980, 1, 1 + n),
                    contacts=(Contact("email", f"p{n}@example.org"),),
                    preferred_channel="email",
                    language="en",
                ).body["id"]
            )
        )
    return clinic


def postgres_env(request: pytest.FixtureRequest, schema: str) -> dict[str, str]:
    infrastructure = request.getfixturevalue("infrastructure")
    with psycopg.connect(infrastructure.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    settings = BookingSettings(database_url=infrastructure.database_url, database_schema=schema)
    return {**event_store_env(settings), "POSTGRES_POOL_SIZE": "4", "POSTGRES_MAX_OVERFLOW": "4"}
