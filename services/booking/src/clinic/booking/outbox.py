"""Reading the outbox: notification log entries translated into integration envelopes.

Shared by the relay (which publishes them) and the replay API (from which a projection can
rebuild without Kafka). Translation needs each aggregate as it stood right after the event;
the reader keeps a bounded copy of recent aggregates and advances them event by event,
loading from the store at the right version only when it starts mid-stream.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application, Repository
from eventsourcing.persistence import ApplicationRecorder, Mapper
from psycopg.sql import SQL, Identifier

from clinic.booking.translate import envelope
from clinic.events import Envelope

CONTEXT_SIZE = 20_000


@dataclass(frozen=True)
class EventLog:
    """What reading the outbox needs of the event store, and nothing more: the recorder (its
    notification log), the mapper (stored to domain events) and the repository (an aggregate
    as it stood at a version)."""

    recorder: ApplicationRecorder
    mapper: Mapper[UUID]
    repository: Repository[UUID]
    channel: str
    """The channel the store NOTIFYs on after each insert."""

    @classmethod
    def of(cls, app: Application[UUID]) -> EventLog:
        return cls(app.recorder, app.mapper, app.repository, f"{app.name.lower()}_events")


class OutboxReader:
    def __init__(self, log: EventLog, context_size: int = CONTEXT_SIZE) -> None:
        self.log = log
        self.context: OrderedDict[UUID, Any] = OrderedDict()
        self.context_size = context_size

    def read(self, after: int, limit: int) -> tuple[int, list[tuple[int, Envelope | None]]]:
        """(the newest notification id, [(notification id, envelope or None)]) after ``after``."""
        recorder = self.log.recorder
        top = recorder.max_notification_id() or 0
        batch = []
        for notification in recorder.select_notifications(after + 1, limit):
            event: Any = self.log.mapper.to_domain_event(notification)
            batch.append((notification.id, envelope(event, self.after(event))))
        return top, batch

    def after(self, event: Any) -> Any:
        aggregate_id = UUID(str(event.originator_id))
        version = event.originator_version
        cached = self.context.pop(aggregate_id, None)
        if version == 1:
            aggregate = event.mutate(None)
        elif cached is not None and cached.version == version - 1:
            aggregate = event.mutate(cached)
        else:
            aggregate = self.log.repository.get(aggregate_id, version=version)
        self.context[aggregate_id] = aggregate
        while len(self.context) > self.context_size:
            self.context.popitem(last=False)
        return aggregate

    def reset(self) -> None:
        self.context.clear()


class Replay:
    """Pages of the integration event log for projections that rebuild without Kafka: the
    envelopes the relay already published, as stored, then the not yet published tail,
    translated on the fly."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.reader = OutboxReader(log)
        self.lock = threading.Lock()
        datastore = getattr(log.recorder, "datastore", None)
        self.datastore = datastore
        if datastore is not None:
            schema = Identifier(datastore.schema)
            self.sql = SQL(
                "SELECT r.position, p.notification_id, p.envelope "
                "FROM (SELECT position FROM {schema}.relay_position WHERE name = 'kafka') r "
                "LEFT JOIN LATERAL (SELECT notification_id, envelope "
                "FROM {schema}.published_events WHERE notification_id > %s "
                "AND notification_id <= r.position "
                "AND (%s::text[] IS NULL OR topic IS NULL OR topic = ANY(%s::text[])) "
                "ORDER BY notification_id LIMIT %s) p ON true"
            ).format(schema=schema)

    def _published(
        self, after: int, limit: int, topics: list[str] | None
    ) -> tuple[int, list[tuple[int, bytes]]]:
        if self.datastore is None:
            return 0, []
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(self.sql, (after, topics, topics, limit), prepare=True)
            rows = cursor.fetchall()
        position = int(rows[0]["position"]) if rows else 0
        return position, [
            (int(r["notification_id"]), bytes(r["envelope"]))
            for r in rows
            if r["notification_id"] is not None
        ]

    def page(
        self, after: int, limit: int, topics: list[str] | None = None
    ) -> tuple[int, int, list[bytes]]:
        """(newest notification id, the ``after`` for the next page, envelopes as JSON),
        only of ``topics`` if given."""
        top = self.log.recorder.max_notification_id() or 0
        position, stored = self._published(after, limit, topics)
        events = [body for _, body in stored]
        if len(stored) == limit:
            return top, stored[-1][0], events
        following = max(after, position)  # everything up to the relay's position is covered
        with self.lock:
            _, batch = self.reader.read(following, limit - len(stored))
        events += [
            e.to_json()
            for _, e in batch
            if e is not None and (topics is None or e.topic() in topics)
        ]
        if batch:
            following = batch[-1][0]
        return top, following, events


async def wake_on_notify(conninfo: str, channel: str, wake: asyncio.Event) -> None:
    """Set ``wake`` whenever the event store commits (eventsourcing NOTIFYs on every
    insert), for ever; reconnects after a lost connection."""
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                await conn.execute(f'LISTEN "{channel}"')
                async for _ in conn.notifies():
                    wake.set()
        except (psycopg.OperationalError, OSError):
            await asyncio.sleep(1.0)
