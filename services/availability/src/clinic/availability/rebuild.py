"""Rebuild the projection from scratch, from either of two sources of the same facts:

- ``booking``: booking's event store, through its replay API (no Kafka involved);
- ``topics``: the Kafka topics alone, read from their first offset (event topics keep every
  record, see ``clinic.events.EVENT_TOPIC_CONFIG``), without a consumer group.

Either way:
1. Read every integration event into the in-memory projection model, with no lock held (the
   live consumer keeps running).
2. Lock the consumer out (``processed_events`` in exclusive mode), read the tail that arrived
   meanwhile, then replace the tables and the consumer's processed-event log in bulk (COPY)
   and tell the index to reload. The live consumer resumes after the commit: what it had
   applied is in the rebuilt state, what it had not is still ahead of its Kafka offsets.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge
from pydantic import BaseModel, TypeAdapter

from clinic.availability.consumer import TOPICS
from clinic.availability.projection import Change, Tables, plan
from clinic.availability.store import record_changes, write_all
from clinic.events import Envelope
from clinic.platform.database import Database
from clinic.platform.kafka import KafkaAccess

ENVELOPES = TypeAdapter(list[Envelope])


class RebuildMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.rebuilds = Counter(
            "projection_rebuilds_total",
            "Projection rebuilds from scratch, by projection, source (booking or topics) and "
            "outcome (ok, failed).",
            ["projection", "source", "outcome"],
            registry=registry,
        )
        self.seconds = Gauge(
            "projection_last_rebuild_duration_seconds",
            "How long the projection's last successful rebuild took.",
            ["projection"],
            registry=registry,
        )


class Page(BaseModel):
    """One page of booking's replay API."""

    top: int
    next: int
    events: list[Envelope]


REBUILD_MARKER = uuid.UUID(int=0)


class Rebuild:
    def __init__(self) -> None:
        self.tables = Tables()
        # (aggregate id as int: hashing a UUID runs Python code), version -> the event
        self.applied: dict[tuple[int, int], Envelope] = {}
        self.events = 0

    def apply(self, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            key = (envelope.aggregate_id.int, envelope.aggregate_version)
            if key in self.applied:
                continue
            self.applied[key] = envelope
            self.tables.apply(plan(envelope)[0])
            self.events += 1


@contextmanager
def collector_paused() -> Iterator[None]:
    """For a bulk rebuild: it makes a few hundred thousand short, acyclic objects in a
    process that may already hold the whole index, and the collector's passes over that
    heap would take as long as the rebuild itself. Reference counting frees them all; the
    collector resumes when the rebuild is done."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


async def _fetch(http: httpx.AsyncClient, after: int, page_size: int) -> bytes:
    # Only the topics availability consumes: appointments and the waitlist stay behind.
    response = await http.get(
        "/events", params={"after": after, "limit": page_size, "topic": TOPICS}
    )
    response.raise_for_status()
    return response.content


async def _read(http: httpx.AsyncClient, rebuild: Rebuild, after: int, page_size: int) -> int:
    """Read pages until the end. As soon as a page is parsed the next one is requested, and
    the page is applied (in a thread) while booking prepares the next: both sides work at
    once."""
    fetching = asyncio.create_task(_fetch(http, after, page_size))
    while True:
        page = await asyncio.to_thread(Page.model_validate_json, await fetching)
        last = page.next == after or page.next >= page.top
        if not last:
            fetching = asyncio.create_task(_fetch(http, page.next, page_size))
        await asyncio.to_thread(rebuild.apply, page.events)
        if last:
            return page.next
        after = page.next


class BookingSource:
    """Booking's event store, page by page through its replay API."""

    name = "booking"

    def __init__(self, http: httpx.AsyncClient, page: int) -> None:
        self.http = http
        self.page = page
        self.after = 0

    async def read(self, rebuild: Rebuild) -> Any:
        """Everything after what was read before; returns the position reached."""
        self.after = await _read(self.http, rebuild, self.after, self.page)
        return self.after


class TopicSource:
    """The topics themselves, from their first offset up to their end offsets as they are
    when each read starts (no consumer group: nothing is committed)."""

    name = "topics"

    def __init__(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        self.consumer = consumer
        self.partitions = partitions

    async def read(self, rebuild: Rebuild) -> Any:
        ends = await self.consumer.end_offsets(self.partitions)
        remaining = {tp: end for tp, end in ends.items() if await self.consumer.position(tp) < end}
        while remaining:
            batch = await self.consumer.getmany(*remaining, timeout_ms=1000, max_records=5000)
            envelopes = [
                Envelope.from_json(record.value)
                for records in batch.values()
                for record in records
                if record.value is not None
            ]
            await asyncio.to_thread(rebuild.apply, envelopes)
            for tp in list(remaining):
                if await self.consumer.position(tp) >= remaining[tp]:
                    del remaining[tp]
        return {f"{tp.topic}/{tp.partition}": end for tp, end in sorted(ends.items())}


async def rebuild_from_booking(
    database: Database, booking_url: str, consumer: str, page: int = 5000
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=booking_url, timeout=120) as http:
        with collector_paused():
            return await _rebuild(database, BookingSource(http, page), consumer)


async def rebuild_from_topics(
    database: Database, kafka: KafkaAccess, consumer: str
) -> dict[str, Any]:
    reader = AIOKafkaConsumer(
        **kafka.options(),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await reader.start()
    try:
        cluster = await reader._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, p)
            for topic in TOPICS
            for p in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        with collector_paused():
            return await _rebuild(database, TopicSource(reader, partitions), consumer)
    finally:
        await reader.stop()


async def _rebuild(
    database: Database, source: BookingSource | TopicSource, consumer: str
) -> dict[str, Any]:
    started = time.perf_counter()
    rebuild = Rebuild()
    after = await source.read(rebuild)
    read = time.perf_counter() - started
    async with database.transaction() as conn:
        await conn.execute("LOCK TABLE processed_events IN EXCLUSIVE MODE")
        locked = time.perf_counter()
        after = await source.read(rebuild)
        tail = time.perf_counter() - locked
        await write_all(conn, rebuild.tables)
        tables_written = time.perf_counter()
        # The consumer's processed-event log becomes exactly what the rebuild applied.
        # Most of it is usually there already (the live consumer applied the same
        # events): only the difference is written, and existing rows keep their times.
        await conn.execute(
            "CREATE TEMP TABLE rebuilt_events (aggregate_id uuid, aggregate_version integer, "
            "event_id uuid) ON COMMIT DROP"
        )
        # COPY text rows built in one go: ids and versions need no escaping.
        lines = "".join(
            f"{e.aggregate_id}\t{e.aggregate_version}\t{e.event_id}\n"
            for e in rebuild.applied.values()
        )
        async with (
            conn.cursor() as cursor,
            cursor.copy("COPY rebuilt_events FROM STDIN") as writer,
        ):
            await writer.write(lines.encode())
        await conn.execute("ANALYZE rebuilt_events")
        await conn.execute(
            "DELETE FROM processed_events p WHERE p.consumer = %s AND NOT EXISTS ("
            "SELECT 1 FROM rebuilt_events r WHERE r.aggregate_id = p.aggregate_id "
            "AND r.aggregate_version = p.aggregate_version)",
            (consumer,),
        )
        await conn.execute(
            "INSERT INTO processed_events "
            "(consumer, aggregate_id, aggregate_version, event_id) "
            "SELECT %s, aggregate_id, aggregate_version, event_id FROM rebuilt_events "
            "ON CONFLICT DO NOTHING",
            (consumer,),
        )
        await record_changes(conn, [Change("rebuild", REBUILD_MARKER)])
    seconds = time.perf_counter() - started
    finished = started + seconds
    return {
        "source": source.name,
        "events": rebuild.events,
        "position": after,
        "seconds": round(seconds, 3),
        "read_seconds": round(read, 3),
        "tail_seconds": round(tail, 3),
        "write_seconds": round(finished - locked - tail, 3),
        "log_seconds": round(finished - tables_written, 3),
        "events_per_second": round(rebuild.events / seconds) if seconds else None,
        "rows": {name: len(rows) for name, rows in rebuild.tables.rows.items()},
    }
