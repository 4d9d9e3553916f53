"""The appointment views stored beside the calendar rows: formatted as Python formats
instants, following renames and reference data that arrives after the appointment, and the
same whether written live or by a rebuild."""

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from factory import Events, local
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from clinic.availability import calendar
from clinic.availability.calendar import Filters
from clinic.availability.consumer import ProjectionWriter
from clinic.availability.projection import Tables
from clinic.availability.store import write_all
from clinic.events import Envelope
from clinic.events import reference as ref
from clinic.platform.database import Database

DAY = dt.date(2027, 3, 1)
GP = [{"role": "physician", "category": "provider", "specialty": "gp"}]
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/St_Johns",  # -03:30
    "Asia/Kolkata",  # +05:30
    "Asia/Kathmandu",  # +05:45, and local mean time (+05:41:16) until 1920
    "Australia/Lord_Howe",  # half-hour daylight saving
    "Pacific/Chatham",  # +12:45 / +13:45
    "Africa/Monrovia",  # -00:44:30 until 1972
]
instants = st.datetimes(  # the platform's calendar
    min_value=dt.datetime(1900, 1, 2),
    max_value=dt.datetime(2199, 12, 30),
    timezones=st.just(dt.UTC),
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(samples=st.lists(st.tuples(instants, st.sampled_from(ZONES)), min_size=1, max_size=40))
async def test_postgres_writes_instants_and_local_times_exactly_as_python_does(
    database: Database, samples: list[tuple[dt.datetime, str]]
) -> None:
    async with database.pool.connection() as conn:
        found = await conn.execute(
            "SELECT iso_utc(t), iso_local(t, z) FROM unnest(%s::timestamptz[], %s::text[]) "
            "WITH ORDINALITY AS s(t, z, n) ORDER BY n",
            [[t for t, _ in samples], [z for _, z in samples]],
        )
        rows = await found.fetchall()

    assert rows == [(calendar.utc(t), calendar.local(t, ZoneInfo(z))) for t, z in samples]


async def write(database: Database, events: list[Envelope]) -> None:
    async with database.pool.connection() as conn, conn.transaction():
        await ProjectionWriter(CollectorRegistry()).write_many(conn, events)


async def views(database: Database, org: uuid.UUID, patient: uuid.UUID) -> list[dict[str, Any]]:
    async with database.pool.connection() as conn:
        page = await calendar.patient_appointments(
            conn, org, patient, None, None, Filters(), 50, None
        )
    appointments: list[dict[str, Any]] = orjson.loads(orjson.dumps(page))["appointments"]
    return appointments


async def test_views_follow_renames_and_reference_data_that_arrives_after_the_appointment(
    database: Database,
) -> None:
    ev = Events()
    location, loc = ev.location("America/New_York")
    doctor, registered = ev.resource(location)
    kind, defined = ev.appointment_type(GP)
    patient = uuid.uuid4()
    aid, claim = ev.claim(doctor, DAY, local(DAY, 9, tz="America/New_York"), 30)
    booked = ev.booked(
        aid, location, kind, doctor, local(DAY, 9, tz="America/New_York"), 30, patient_id=patient
    )

    # The appointments topic ran ahead of the reference topic.
    await write(database, [claim, booked])
    [early] = await views(database, ev.org, patient)
    await write(database, [loc, registered, defined])
    [known] = await views(database, ev.org, patient)
    renamed = registered.payload_as(ref.ResourceRegistered).model_dump() | {"name": "Dr Okafor"}
    retyped = defined.payload_as(ref.AppointmentTypeDefined).model_dump() | {"name": "Check-up"}
    later = [
        ev.wrap(doctor, ref.ResourceUpdated(**renamed)),
        ev.wrap(kind, ref.AppointmentTypeUpdated(**retyped)),
        ev.status(aid, "arrived", "booked"),
    ]
    await write(database, later)
    [last] = await views(database, ev.org, patient)

    assert early["local_start"] == "2027-03-01T14:00:00+00:00"  # the place not known yet: UTC
    assert early["participants"][0]["name"] is None
    assert early["appointment_type"]["name"] is None
    assert known["local_start"] == "2027-03-01T09:00:00-05:00"
    assert known["participants"][0]["name"] == registered.payload["name"]
    assert known["appointment_type"]["name"] == "T"
    assert last["participants"][0]["name"] == "Dr Okafor"
    assert last["appointment_type"]["name"] == "Check-up"
    assert (last["status"], last["version"]) == ("arrived", 2)

    # A rebuild writes the same views as the live consumer did.
    tables = Tables()
    tables.replay([claim, booked, loc, registered, defined, *later])
    async with database.pool.connection() as conn, conn.transaction():
        await write_all(conn, tables)
    assert await views(database, ev.org, patient) == [last]


async def test_every_appointment_written_has_its_view(database: Database) -> None:
    ev = Events()
    location, loc = ev.location()
    doctor, registered = ev.resource(location)
    kind, defined = ev.appointment_type(GP)
    events = [loc, registered, defined]
    for n in range(5):
        aid, claim = ev.claim(doctor, DAY, local(DAY, 8 + n), 30)
        events += [claim, ev.booked(aid, location, kind, doctor, local(DAY, 8 + n), 30)]
    events.append(ev.cancelled(aid))

    await write(database, events)

    async with database.pool.connection() as conn:
        found = await conn.execute(
            "SELECT count(*), count(view), count(held_by) FROM appointments "
            "WHERE organization_id = %s",
            [ev.org],
        )
        assert await found.fetchone() == (5, 5, 5)
