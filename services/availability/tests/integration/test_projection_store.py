"""The PostgreSQL projection is exactly the in-memory model, duplicates and all."""

import asyncio
import datetime as dt
import uuid

from factory import BERLIN, Events, local
from prometheus_client import CollectorRegistry

from clinic.availability.consumer import ProjectionWriter
from clinic.availability.index import Index
from clinic.availability.projection import Change, Tables
from clinic.availability.search import Query, find_slots
from clinic.availability.store import load, record_changes, write_all
from clinic.events import reference as ref
from clinic.platform.consumer import ConsumerMetrics, Delivery, IdempotentConsumer
from clinic.platform.database import Database

MONDAY = dt.date(2027, 3, 1)


async def test_batches_with_redelivered_events_leave_the_same_tables_as_the_model(
    database: Database,
) -> None:
    ev = Events()
    location, loc = ev.location()
    provider, registered = ev.resource(location)
    kind, defined = ev.appointment_type(
        [{"role": "physician", "category": "provider", "specialty": "gp"}]
    )
    first, claim = ev.claim(
        provider, MONDAY, local(MONDAY, 9), 30, hold_expires_at=local(MONDAY, 8)
    )
    second, other = ev.claim(provider, MONDAY, local(MONDAY, 10), 30)
    held = ev.booked(first, location, kind, provider, local(MONDAY, 9), 30, local(MONDAY, 8))
    booked = ev.booked(second, location, kind, provider, local(MONDAY, 10), 30)
    events = [
        loc,
        registered,
        defined,
        ev.hours(provider, location),
        claim,
        other,
        ev.confirm(provider, MONDAY, first),
        ev.exception(provider, "leave", local(MONDAY, 11), local(MONDAY, 12)),
        ev.release(provider, MONDAY, first),
        held,
        booked,
        ev.confirmed(held),
        ev.rescheduled(booked, provider, local(MONDAY, 10, 30), 45),
        ev.attendance_confirmed(second),
        ev.status(second, "noshow", "booked"),
        ev.cancelled(first, "patient"),
    ]
    writer = ProjectionWriter(CollectorRegistry())
    consumer = IdempotentConsumer(
        database,
        "availability",
        writer.write_one,
        ConsumerMetrics(CollectorRegistry()),
        batch_handler=writer.write_many,
    )
    delivery = Delivery("booking.resource-days.v1", 0, 0, None)
    await consumer.process_batch([(e.to_json(), delivery) for e in events[:6]])
    # A redelivery of the whole history, then the rest.
    outcomes = await consumer.process_batch([(e.to_json(), delivery) for e in events])
    assert outcomes.count("duplicate") == 6

    model = Tables()
    model.replay(events)
    async with database.pool.connection() as conn:
        stored = await load(conn, calendars=True)
    assert stored.rows == model.rows
    assert len(stored.rows["claims"]) == 1
    assert {r["status"] for r in stored.rows["appointments"].values()} == {"cancelled", "noshow"}
    assert len(stored.rows["appointment_events"]) == 7
    assert stored.rows["appointments"][(second,)]["attendance_confirmed_at"] is not None
    assert stored.rows["appointments"][(first,)]["attendance_confirmed_at"] is None


async def test_a_bulk_write_stores_awkward_text_exactly_as_the_model_has_it(
    database: Database,
) -> None:
    ev = Events()
    location, loc = ev.location()
    awkward = 'Dr. "Tab\there"\\back\nslash, {braces}; ümlaut'
    rid = uuid.uuid4()
    registered = ev.wrap(
        rid,
        ref.ResourceRegistered(
            resource_id=rid,
            category="provider",
            name=awkward,
            kind="physician",
            specialties=("gp", awkward, "", "NULL"),
            location_ids=(location,),
            time_zone="Europe/Berlin",
        ),
    )
    _kind, defined = ev.appointment_type(
        [{"role": "physician", "category": "provider", "specialty": awkward}]
    )
    _, claim = ev.claim(rid, MONDAY, local(MONDAY, 9), 30)
    model = Tables()
    model.replay([loc, registered, defined, ev.hours(rid, location), claim])
    async with database.pool.connection() as conn:
        async with conn.transaction():
            await write_all(conn, model)
        stored = await load(conn)
    assert stored.rows == model.rows


async def test_the_change_feed_never_shows_a_later_change_before_an_earlier_one(
    database: Database,
) -> None:
    """The index follows the feed by seq: if a later seq committed first, a reader would
    move past the earlier one and never reload that resource."""
    earlier, later = uuid.uuid4(), uuid.uuid4()

    async def feed() -> list[uuid.UUID]:
        async with database.pool.connection() as reader:
            cursor = await reader.execute(
                "SELECT id FROM index_changes WHERE id = ANY(%s) ORDER BY seq",
                ([earlier, later],),
            )
            return [row[0] for row in await cursor.fetchall()]

    async def second_writer() -> None:
        async with database.pool.connection() as conn, conn.transaction():
            await record_changes(conn, [Change("claims", later)])

    async with database.pool.connection() as first:
        async with first.transaction():
            await record_changes(first, [Change("claims", earlier)])
            second = asyncio.create_task(second_writer())
            await asyncio.sleep(0.3)
            assert not second.done()  # waits for the first writer's commit
            assert await feed() == []
        await asyncio.wait_for(second, 10)
    assert await feed() == [earlier, later]


async def test_a_nul_in_reference_text_is_stored_replaced_and_keeps_the_type_searchable(
    database: Database,
) -> None:
    """Booking refuses NUL, but one bad field from any producer must not poison the
    projection: the location and type are stored with U+FFFD and search still knows them."""
    ev = Events()
    lid = uuid.uuid4()
    loc = ev.wrap(lid, ref.LocationRegistered(location_id=lid, name="Mitte\x00", time_zone=BERLIN))
    provider, registered = ev.resource(lid)
    kind, defined = ev.appointment_type(
        [{"role": "physician\x00", "category": "provider", "specialty": "gp"}]
    )
    registry = CollectorRegistry()
    writer = ProjectionWriter(registry)
    consumer = IdempotentConsumer(
        database,
        "availability",
        writer.write_one,
        ConsumerMetrics(registry),
        batch_handler=writer.write_many,
    )
    delivery = Delivery("booking.reference.v1", 0, 0, None)
    outcomes = await consumer.process_batch(
        [(e.to_json(), delivery) for e in (loc, registered, defined, ev.hours(provider, lid))]
    )

    assert outcomes == ["applied"] * 4
    async with database.pool.connection() as conn:
        stored = await load(conn)
    [location] = stored.rows["locations"].values()
    assert location["name"] == "Mitte\ufffd"
    index = Index.build(stored)
    query = Query(ev.org, kind, (lid,), MONDAY, MONDAY, local(MONDAY, 0) - dt.timedelta(days=1))
    find_slots(index, query)  # known here: no NotKnownHereError
