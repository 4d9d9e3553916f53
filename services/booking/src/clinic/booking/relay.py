"""The outbox relay: the event store's notification log -> integration events -> Kafka.

- The notification log IS the outbox: every decision is in it, in commit order, with a
  gapless id (eventsourcing serialises inserts for that).
- The relay reads a batch after its position, translates each domain event with the pure
  functions of ``translate.py``, publishes the envelopes keyed by aggregate id (in order,
  ``acks=all``), waits until the broker acknowledged every one, and only then records its new
  position. A crash between publish and record republishes the batch: delivery is
  at-least-once and consumers are idempotent by (aggregate_id, aggregate_version).
- One relay runs per event store: replicas compete for a PostgreSQL advisory lock.
- The producer is idempotent with ``acks=all`` (``create_broker``): a retried send after a
  lost acknowledgement is written once. Topics are created at start-up from
  ``clinic.events`` (``create_runtime(topics=...)``) and keep every record.
- Only on a broker that does not keep its data (``KAFKA_BROKER_KEEPS_DATA=false``: the local
  Tansu broker of machines without Java, which keeps topics in memory and auto-creates them
  again on the next publish) does the relay watch for that loss, two ways: a topic it
  published to is missing (checked at start, after errors and every few seconds when idle),
  or the broker acknowledges a record at an offset at or below one it acknowledged before
  on the same partition (only the relay writes these topics). Either way the relay starts
  again from position 0 and republishes everything from the event store. A real Kafka keeps
  its log across restarts, so none of this runs there.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

import psycopg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Gauge

from clinic.booking.outbox import EventLog, OutboxReader, wake_on_notify
from clinic.events import ALL_TOPICS, Envelope
from clinic.platform.kafka import KafkaAccess, ensure_topics
from clinic.platform.telemetry import context_of, event_attributes

log = logging.getLogger(__name__)

RELAY_NAME = "kafka"
RELAY_DDL = [
    """
    CREATE TABLE IF NOT EXISTS published_events (
        notification_id bigint PRIMARY KEY,
        envelope bytea NOT NULL
    )
    """,
    # The topic an envelope went to, so replays can serve one consumer's topics only
    # (NULL in rows stored before the column existed: those are served to everyone).
    "ALTER TABLE published_events ADD COLUMN IF NOT EXISTS topic text",
    """
    CREATE TABLE IF NOT EXISTS relay_position (
        name text PRIMARY KEY,
        position bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
]


LEADER_LOCK = "SELECT pg_try_advisory_lock(hashtext('clinic.booking.relay:' || current_schema()))"
"""One relay per event store, so the lock is the store's schema's (the first on the search
path): booking deployments sharing a database in separate schemas each have their own
relay, where one key for the whole database let one deployment's relay starve another's."""


class RelayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.position = Gauge(
            "relay_position", "Last notification id the broker acknowledged.", registry=registry
        )
        self.lag = Gauge(
            "relay_lag_events",
            "Events recorded in the event store but not yet published.",
            registry=registry,
        )
        self.published = Counter(
            "relay_published_total",
            "Integration events published and acknowledged.",
            ["topic"],
            registry=registry,
        )
        self.republishes = Counter(
            "relay_republish_total",
            "Times the relay started over from the event store.",
            registry=registry,
        )
        self.errors = Counter(
            "relay_errors_total",
            "Relay batches that failed and will be retried.",
            registry=registry,
        )
        self.leader = Gauge(
            "relay_leader", "1 when this replica holds the relay lock.", registry=registry
        )
        self.lag_seconds = Gauge(
            "relay_lag_seconds",
            "Age of the oldest event recorded but not yet published (0 when caught up).",
            registry=registry,
        )
        self.last_published = Gauge(
            "relay_last_published_timestamp_seconds",
            "When the relay last had a batch acknowledged by the broker.",
            registry=registry,
        )


class Relay:
    def __init__(
        self,
        event_log: EventLog,
        broker: KafkaBroker,
        conninfo: str,
        kafka: KafkaAccess,
        partitions: int,
        metrics: RelayMetrics,
        batch_size: int = 500,
        idle_seconds: float = 0.5,
        broker_keeps_data: bool = True,
        replication_factor: int = 1,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.event_log = event_log
        self.tracer = tracer or trace.get_tracer(__name__)
        self.broker = broker
        self.conninfo = conninfo
        self.kafka = kafka
        self.partitions = partitions
        self.metrics = metrics
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.position = 0
        self.outbox = OutboxReader(event_log)
        self.wake = asyncio.Event()
        self.broker_keeps_data = broker_keeps_data
        self.replication_factor = replication_factor
        self._check_topics = not broker_keeps_data
        self._restart_requested = False
        self.offsets: dict[tuple[str, int], int] = {}
        self._admin: AIOKafkaAdminClient | None = None
        self.topic_check_seconds = 5.0
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._admin is not None:
            with contextlib.suppress(KafkaError, OSError):
                await self._admin.close()
            self._admin = None

    async def _run(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as lock_conn:
                    await self._lead(lock_conn)
            except (psycopg.OperationalError, OSError) as error:
                log.warning("relay lost its database connection", extra={"error": str(error)})
                self.is_leader = False
                self.metrics.leader.set(0)
                await asyncio.sleep(1.0)

    async def _lead(self, conn: psycopg.AsyncConnection) -> None:
        while True:
            row = await (await conn.execute(LEADER_LOCK)).fetchone()
            if row and row[0]:
                break
            self.metrics.leader.set(0)
            await asyncio.sleep(2.0)
        self.metrics.leader.set(1)
        self.metrics.last_published.set_to_current_time()  # a new leader is not stalled
        self.is_leader = True
        log.info("relay is the leader")
        self.position = await self._load_position(conn)
        listener = asyncio.create_task(
            wake_on_notify(self.conninfo, self.event_log.channel, self.wake), name="relay-listen"
        )
        loop = asyncio.get_running_loop()
        checked = loop.time()
        try:
            while True:
                # Clear before reading: a NOTIFY that lands while this batch is read and
                # published sets the flag again, so the wait below cannot miss it.
                self.wake.clear()
                published = await self._step(conn)
                if published == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), self.idle_seconds)
                    if (
                        not self.broker_keeps_data
                        and loop.time() - checked > self.topic_check_seconds
                    ):
                        self._check_topics, checked = True, loop.time()
        finally:
            listener.cancel()

    # ------------------------------------------------------------------ one batch

    async def _step(self, conn: psycopg.AsyncConnection) -> int:
        try:
            if self._restart_requested:
                self._restart_requested = False
                self.outbox.reset()
                self.metrics.republishes.inc()
                await self._store_position(conn, 0)
            if self._check_topics:
                await self._republish_if_broker_lost_topics(conn)
            return await self._publish_batch(conn)
        except KafkaError as error:
            self.metrics.errors.inc()
            self._check_topics = not self.broker_keeps_data
            log.warning("relay could not publish, retrying", extra={"error": repr(error)})
            await asyncio.sleep(1.0)
            return 0

    async def _publish_batch(self, conn: psycopg.AsyncConnection) -> int:
        top, batch = await asyncio.to_thread(self._read_and_translate)
        self.metrics.lag.set(max(0, top - self.position))
        decided = [e.occurred_at for _, e in batch if e is not None]
        self.metrics.lag_seconds.set(
            max(0.0, (dt.datetime.now(dt.UTC) - min(decided)).total_seconds()) if decided else 0
        )
        if not batch:
            return 0
        pending = []
        published: list[tuple[int, bytes, str]] = []
        # Each event is published in a span of the trace of the request that decided it
        # (the envelope's), open until the broker acknowledged it; Kafka's headers carry it on.
        spans: list[trace.Span] = []
        try:
            for notification_id, envelope_ in batch:
                if envelope_ is None:
                    continue
                topic = envelope_.topic()
                body = envelope_.to_json()
                published.append((notification_id, body, topic))
                span = self.tracer.start_span(
                    f"publish {topic}",
                    context=context_of(envelope_.trace),
                    kind=SpanKind.PRODUCER,
                    attributes={
                        **event_attributes(envelope_, topic),
                        "messaging.operation.type": "send",
                        "clinic.notification.id": notification_id,
                    },
                )
                spans.append(span)
                with trace.use_span(span, end_on_exit=False):
                    future = await self.broker.publish(
                        body,
                        topic,
                        key=envelope_.key(),
                        headers=envelope_.headers(),
                        no_confirm=True,
                    )
                pending.append((topic, future))
            acknowledged = await asyncio.gather(*(f for _, f in pending))
        except BaseException as error:
            for span in spans:
                span.set_status(Status(StatusCode.ERROR, repr(error)))
            raise
        finally:
            for span in spans:
                span.end()
        for (topic, _), record in zip(pending, acknowledged, strict=True):
            self.metrics.published.labels(topic).inc()
            if self.broker_keeps_data:
                continue
            key = (record.topic, record.partition)
            if record.offset <= self.offsets.get(key, -1):
                log.warning(
                    "the broker acknowledged an offset it had already given: it lost its data",
                    extra={"topic": record.topic, "partition": record.partition},
                )
                self._restart_requested = True
            self.offsets[key] = max(record.offset, self.offsets.get(key, -1))
        if self._restart_requested:
            self.offsets.clear()
            return len(batch)
        async with conn.transaction():
            # The published envelopes are kept: replays and rebuilds read them as they are
            # instead of translating the history again.
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO published_events (notification_id, envelope, topic) "
                    "VALUES (%s, %s, %s) "
                    "ON CONFLICT (notification_id) DO NOTHING",
                    published,
                )
            await self._store_position(conn, batch[-1][0])
        self.metrics.lag.set(max(0, top - self.position))
        self.metrics.last_published.set_to_current_time()
        return len(batch)

    def _read_and_translate(self) -> tuple[int, list[tuple[int, Envelope | None]]]:
        return self.outbox.read(self.position, self.batch_size)

    async def _republish_if_broker_lost_topics(self, conn: psycopg.AsyncConnection) -> None:
        # One admin client kept open: connecting for every check would stall publishing.
        if self._admin is None:
            admin = AIOKafkaAdminClient(**self.kafka.options())
            await admin.start()
            self._admin = admin
        try:
            existing = set(await self._admin.list_topics())
        except KafkaError:
            admin, self._admin = self._admin, None
            with contextlib.suppress(KafkaError, OSError):
                await admin.close()
            raise
        missing = [str(t) for t in ALL_TOPICS if str(t) not in existing]
        if missing and self.position > 0:
            log.warning(
                "the broker lost topics this relay had published to: republishing everything "
                "from the event store",
                extra={"missing": missing, "position": self.position},
            )
            self.metrics.republishes.inc()
            await self._store_position(conn, 0)
        if missing:
            await ensure_topics(self.kafka, missing, self.partitions, self.replication_factor)
        self._check_topics = False

    def republish(self) -> bool:
        """Start over from the first event (ops: after restoring a broker, or to rebuild a
        projection from the topics). Only the leading replica can; returns whether it did."""
        if not self.is_leader:
            return False
        self._restart_requested = True
        self.wake.set()
        return True

    # ------------------------------------------------------------------ position

    async def _load_position(self, conn: psycopg.AsyncConnection) -> int:
        row = await (
            await conn.execute("SELECT position FROM relay_position WHERE name = %s", (RELAY_NAME,))
        ).fetchone()
        position = int(row[0]) if row else 0
        self.metrics.position.set(position)
        return position

    async def _store_position(self, conn: psycopg.AsyncConnection, position: int) -> None:
        await conn.execute(
            """INSERT INTO relay_position (name, position) VALUES (%s, %s)
               ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()""",
            (RELAY_NAME, position),
        )
        self.position = position
        self.metrics.position.set(position)
