"""A small clinic used by the booking tests, built through the application's commands.

The same builder runs on eventsourcing's in-memory persistence (unit and application tests)
and on PostgreSQL (integration tests)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import pytest

from clinic.booking.application import Bookings
from clinic.booking.commands import (
    AddScheduleException,
    BookAppointment,
    Command,
    DefineAppointmentType,
    HoldAppointment,
    RegisterLocation,
    RegisterOrganization,
    RegisterPatient,
    RegisterResource,
    Reschedule,
    SetWeeklyHours,
)
from clinic.booking.decision import Outcome
from clinic.booking.domain.acting import Acting, RequestContext, Role
from clinic.booking.domain.values import (
    Category,
    Contact,
    ExceptionKind,
    Requirement,
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
FRONT_DESK = RequestContext(Acting("desk-7", Role.FRONT_DESK, "front-desk"))
"""Clinic staff at the front desk: who asks in these tests unless a test says otherwise."""
PATIENT = RequestContext(Acting("patient-42", Role.PATIENT, "patient-portal"))
"""A patient on the portal."""
C = TypeVar("C", bound=Command)


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


def next_monday() -> dt.date:
    """The Monday after next: a day the tests' clinic (open Monday to Friday) is open, far
    enough ahead that nothing has passed, whatever day the tests run."""
    today = dt.datetime.now(dt.UTC).date()
    return today + dt.timedelta(days=7 - today.weekday() + 7)


def weekday_ahead(days: int) -> dt.date:
    """The first Monday-to-Friday day at least ``days`` days after today (UTC): a test that
    books "in nine days" books on a day the clinic is open, whatever day it runs."""
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


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
            "allow_overbooking": False,
            "note": "",
            **kwargs,
        }

    def command(self, command_type: type[C], /, **fields: Any) -> C:
        """A command of this clinic's organisation, with a fresh request id unless given,
        asked by the front desk unless another ``context`` is given."""
        return command_type(
            **{
                "organization_id": self.org,
                "request_id": request_id(),
                "context": FRONT_DESK,
                **fields,
            }
        )

    def do(self, command_type: type[Command], /, **fields: Any) -> Outcome:
        """Handle a command of this clinic's organisation (see ``command``)."""
        return self.app.handle(self.command(command_type, **fields))

    def book(self, type_name: str, start: dt.datetime, **kwargs: Any) -> dict[str, Any]:
        return self.do(BookAppointment, **self.reservation(type_name, start, **kwargs)).body

    def reschedule(self, appointment: dict[str, Any], start: dt.datetime) -> dict[str, Any]:
        """Move a booked ``appointment`` (its view) as clinic staff."""
        return self.do(
            Reschedule,
            appointment_id=UUID(appointment["id"]),
            start=start,
            preferred={},
        ).body

    def schedule_exception(
        self, kind: ExceptionKind, start: dt.datetime, end: dt.datetime, reason: str = ""
    ) -> None:
        """Leave, a holiday, blocked or (at the clinic's location) extra time for Dr. 0."""
        location = self.location if kind == ExceptionKind.EXTRA else None
        self.do(
            AddScheduleException,
            resource_id=self.providers[0],
            kind=kind,
            start=start,
            end=end,
            location_id=location,
            reason=reason,
        )

    def hold(self, type_name: str, start: dt.datetime, **kwargs: Any) -> dict[str, Any]:
        values = self.reservation(type_name, start, **{"hold_minutes": 10, **kwargs})
        return self.do(HoldAppointment, **values).body


def build_clinic(app: Bookings, clock: Clock, providers: int = 2) -> Clinic:
    organization = RegisterOrganization(
        request_id=request_id(), organization_name="Test Hospital Group"
    )
    clinic = Clinic(app, clock, UUID(app.handle(organization).body["id"]), UUID(int=0))

    def new(command_type: type[Command], /, **fields: Any) -> UUID:
        return UUID(clinic.do(command_type, **fields).body["id"])

    clinic.location = new(
        RegisterLocation, location_name="Mitte", address={"city": "Berlin"}, time_zone=BERLIN
    )
    location = clinic.location
    for n in range(providers):
        pid = new(
            RegisterResource,
            category=Category.PROVIDER,
            resource_name=f"Dr. {n}",
            kind="physician",
            specialties=("dermatology",),
            location_ids=(location,),
        )
        clinic.do(SetWeeklyHours, resource_id=pid, hours=weekdays(location))
        clinic.providers.append(pid)
    for kind, bucket in (("exam-room", clinic.rooms), ("ultrasound", clinic.devices)):
        category = Category.ROOM if kind == "exam-room" else Category.DEVICE
        rid = new(
            RegisterResource,
            category=category,
            resource_name=kind,
            kind=kind,
            location_ids=(location,),
        )
        clinic.do(SetWeeklyHours, resource_id=rid, hours=weekdays(location, "07:00", "19:00"))
        bucket.append(rid)
    physician = Requirement("physician", Category.PROVIDER, specialty="dermatology")

    def define(**fields: Any) -> UUID:
        return new(DefineAppointmentType, **fields)

    clinic.types["consult"] = define(
        type_name="Consultation", steps=(Step("consult", 0, 30, (physician,)),)
    )
    clinic.types["named"] = define(
        type_name="Follow-up with Dr. 0",
        buffer_after_minutes=10,
        steps=(
            Step(
                "visit",
                0,
                20,
                (Requirement("physician", Category.PROVIDER, resource_id=clinic.providers[0]),),
            ),
        ),
    )
    clinic.types["scan"] = define(
        type_name="Ultrasound",
        steps=(
            Step(
                "scan",
                0,
                45,
                (
                    Requirement("physician", Category.PROVIDER, resource_id=clinic.providers[0]),
                    Requirement("room", Category.ROOM, kind="exam-room"),
                    Requirement("scanner", Category.DEVICE, kind="ultrasound"),
                ),
            ),
        ),
    )
    clinic.types["two-step"] = define(
        type_name="Nurse then physician",
        steps=(
            Step("triage", 0, 15, (Requirement("room", Category.ROOM, kind="exam-room"),)),
            Step("consult", 15, 20, (physician,)),
        ),
    )
    clinic.types["group"] = define(
        type_name="Diabetes class",
        seats=3,
        steps=(Step("class", 0, 60, (Requirement("room", Category.ROOM, kind="exam-room"),)),),
    )
    clinic.types["policy"] = define(
        type_name="Minor surgery",
        minimum_notice_minutes=24 * 60,
        maximum_horizon_days=30,
        cancellation_cutoff_minutes=48 * 60,
        patient_bookable=False,
        steps=(Step("surgery", 0, 60, (physician,)),),
    )
    for n in range(3):
        clinic.patients.append(
            new(
                RegisterPatient,
                given_name=f"Pat{n}",
                family_name="Test",
                birth_date=dt.date(1980, 1, 1 + n),
                contacts=(Contact("email", f"p{n}@example.org"),),
                preferred_channel="email",
                language="en",
            )
        )
    return clinic


def postgres_env(request: pytest.FixtureRequest, schema: str) -> dict[str, str]:
    infrastructure = request.getfixturevalue("infrastructure")
    with psycopg.connect(infrastructure.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    settings = BookingSettings(database_url=infrastructure.database_url, database_schema=schema)
    return {**event_store_env(settings), "POSTGRES_POOL_SIZE": "4", "POSTGRES_MAX_OVERFLOW": "4"}
