"""Calendars read from the projection in PostgreSQL: a resource's days (across a daylight
saving change), a location's day side by side, a patient's appointments page by page."""

import datetime as dt
import uuid
from typing import Any

import orjson
import pytest
from factory import Events, local
from prometheus_client import CollectorRegistry

from clinic.availability import calendar
from clinic.availability.calendar import Filters
from clinic.availability.consumer import ProjectionWriter
from clinic.availability.index import Index
from clinic.availability.projection import Tables
from clinic.availability.search import NotKnownHereError, SearchError
from clinic.events import Envelope
from clinic.platform.database import Database
from clinic.platform.paging import InvalidCursorError

SPRING_FORWARD = dt.date(2027, 3, 28)  # a Sunday: Berlin moves from +01:00 to +02:00
WEEK = SPRING_FORWARD - dt.timedelta(days=3)  # Thursday .. Wednesday
NOW = local(WEEK, 0) - dt.timedelta(days=7)
GP = [{"role": "physician", "category": "provider", "specialty": "gp"}]


def plain(view: dict[str, Any]) -> Any:
    """The view as a client reads it (its appointments come rendered as JSON)."""
    return orjson.loads(orjson.dumps(view))


async def projected(database: Database, events: list[Envelope]) -> Index:
    async with database.pool.connection() as conn, conn.transaction():
        await ProjectionWriter(CollectorRegistry()).write_many(conn, events)
    tables = Tables()
    tables.replay(events)
    return Index.build(tables)


async def test_a_week_across_the_spring_change_shows_each_appointment_once_at_its_local_time(
    database: Database,
) -> None:
    ev = Events()
    location, loc = ev.location()
    doctor, registered = ev.resource(location)
    room, room_registered = ev.resource(location, category="room", kind="exam-room")
    kind, defined = ev.appointment_type(GP)
    events = [
        loc,
        registered,
        room_registered,
        defined,
        ev.hours(doctor, location, "08:00", "18:00"),
    ]
    visits = []
    for n in range(7):  # every day of the week at 09:00 local, one cancelled
        day = WEEK + dt.timedelta(days=n)
        aid, claim = ev.claim(doctor, day, local(day, 9), 30)
        visits.append(aid)
        events += [claim, ev.booked(aid, location, kind, doctor, local(day, 9), 30)]
    events.append(ev.cancelled(visits[1]))
    events.append(ev.exception(doctor, "leave", local(WEEK, 12), local(WEEK, 14)))
    index = await projected(database, events)

    async with database.pool.connection() as conn:
        week = plain(
            await calendar.resource_calendar(
                conn, index, ev.org, doctor, WEEK, WEEK + dt.timedelta(days=6), Filters(), NOW
            )
        )
        booked_only = plain(
            await calendar.resource_calendar(
                conn,
                index,
                ev.org,
                doctor,
                WEEK,
                WEEK + dt.timedelta(days=6),
                Filters(statuses=frozenset({"booked"})),
                NOW,
            )
        )

    assert [d["date"] for d in week["days"]] == [
        (WEEK + dt.timedelta(days=n)).isoformat() for n in range(7)
    ]
    starts = [a["local_start"] for d in week["days"] for a in d["appointments"]]
    assert starts == [
        f"{(WEEK + dt.timedelta(days=n)).isoformat()}T09:00:00{'+01:00' if n < 3 else '+02:00'}"
        for n in range(7)
    ]
    assert [a["start"][11:16] for d in week["days"] for a in d["appointments"]] == [
        "08:00",
        "08:00",
        "08:00",
        "07:00",
        "07:00",
        "07:00",
        "07:00",
    ]
    assert week["days"][1]["appointments"][0]["status"] == "cancelled"
    assert sum(len(d["appointments"]) for d in booked_only["days"]) == 6
    thursday = week["days"][0]
    assert [(f["local_start"][11:16], f["local_end"][11:16]) for f in thursday["free"]] == [
        ("08:00", "09:00"),
        ("09:30", "12:00"),
        ("14:00", "18:00"),
    ]
    assert [(b["kind"], b["local_start"][11:16]) for b in thursday["blocked"]] == [
        ("leave", "12:00")
    ]
    participant = thursday["appointments"][0]["participants"][0]
    assert (participant["resource_id"], participant["role"]) == (str(doctor), "physician")
    assert thursday["appointments"][0]["appointment_type"]["id"] == str(kind)
    # The room has no appointment and no hours: an empty day, not an error.
    async with database.pool.connection() as conn:
        rooms = plain(
            await calendar.resource_calendar(conn, index, ev.org, room, WEEK, WEEK, Filters(), NOW)
        )
    assert rooms["days"][0]["appointments"] == []


async def test_a_location_day_puts_every_resource_side_by_side_and_tenancy_holds(
    database: Database,
) -> None:
    ev = Events()
    location, loc = ev.location()
    kind, defined = ev.appointment_type(GP)
    events = [loc, defined]
    doctors = []
    for _ in range(3):
        doctor, registered = ev.resource(location)
        doctors.append(doctor)
        events += [registered, ev.hours(doctor, location, "08:00", "12:00")]
    patient = uuid.uuid4()
    for n, doctor in enumerate(doctors[:2]):
        aid, claim = ev.claim(doctor, WEEK, local(WEEK, 9 + n), 30)
        events += [
            claim,
            ev.booked(aid, location, kind, doctor, local(WEEK, 9 + n), 30, patient_id=patient),
        ]
    index = await projected(database, events)

    async with database.pool.connection() as conn:
        day = plain(
            await calendar.location_day(conn, index, ev.org, location, WEEK, Filters(), NOW)
        )
        first = plain(
            await calendar.patient_appointments(
                conn, ev.org, patient, None, None, Filters(), 1, None
            )
        )
        second = plain(
            await calendar.patient_appointments(
                conn, ev.org, patient, None, None, Filters(), 1, first["next_cursor"]
            )
        )
        with pytest.raises(NotKnownHereError):
            await calendar.location_day(conn, index, uuid.uuid4(), location, WEEK, Filters(), NOW)
        with pytest.raises(NotKnownHereError):
            await calendar.resource_calendar(
                conn, index, uuid.uuid4(), doctors[0], WEEK, WEEK, Filters(), NOW
            )
        with pytest.raises(SearchError):
            await calendar.resource_calendar(
                conn, index, ev.org, doctors[0], WEEK, WEEK + dt.timedelta(days=40), Filters(), NOW
            )
        with pytest.raises(InvalidCursorError):
            await calendar.patient_appointments(
                conn, ev.org, patient, None, None, Filters(), 1, "forged"
            )
        other_tenant = plain(
            await calendar.patient_appointments(
                conn, uuid.uuid4(), patient, None, None, Filters(), 10, None
            )
        )

    assert sorted(c["resource"]["id"] for c in day["resources"]) == sorted(str(d) for d in doctors)
    counts = {c["resource"]["id"]: len(c["appointments"]) for c in day["resources"]}
    assert counts == {str(doctors[0]): 1, str(doctors[1]): 1, str(doctors[2]): 0}
    idle = next(c for c in day["resources"] if c["resource"]["id"] == str(doctors[2]))
    assert [(f["local_start"][11:16], f["local_end"][11:16]) for f in idle["free"]] == [
        ("08:00", "12:00")
    ]
    assert [a["local_start"][11:16] for a in first["appointments"]] == ["09:00"]
    assert [a["local_start"][11:16] for a in second["appointments"]] == ["10:00"]
    assert second["next_cursor"] is None
    assert other_tenant["appointments"] == []
