"""Idempotent projection consumers with an explicit retry and dead-letter policy.

Delivery from Kafka is at-least-once. A projection stays exactly-once in effect because the
fact ``(aggregate_id, aggregate_version)`` is recorded in ``processed_events`` in the SAME
transaction as the projection write: a redelivered event finds its row and changes nothing.

Policy, per message:
1. A message that is not a valid envelope, or names an event type this reader does not know,
   can never succeed: it is dead-lettered at once.
2. A handler failure is retried ``RetryPolicy.attempts`` times with exponential backoff (each
   attempt is a fresh transaction), then the message is dead-lettered.
3. Dead letters go to the consumer's own ``dead_letters`` table with the error, where ops can
   see and replay them (``replay_dead_letters``). If even that write fails (the database is
   down), the error propagates and the message is NOT acknowledged: Kafka redelivers it.
Nothing is swallowed: every dead letter is logged at error level and counted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

import psycopg
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from pydantic import ValidationError

from clinic.events import Envelope, UnknownEventTypeError, payload_types
from clinic.platform.database import Database
from clinic.platform.telemetry import context_from, context_of, event_attributes

log = logging.getLogger(__name__)

CONSUMER_DDL = [
    """
    CREATE TABLE IF NOT EXISTS processed_events (
        consumer text NOT NULL,
        aggregate_id uuid NOT NULL,
        aggregate_version integer NOT NULL,
        event_id uuid NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, aggregate_id, aggregate_version)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS dead_letters (
        id bigserial PRIMARY KEY,
        consumer text NOT NULL,
        topic text NOT NULL,
        partition integer NOT NULL,
        "offset" bigint NOT NULL,
        key bytea,
        value bytea NOT NULL,
        error text NOT NULL,
        attempts integer NOT NULL,
        failed_at timestamptz NOT NULL DEFAULT now(),
        replayed_at timestamptz
    )
    """,
]

# How long a fetch waits for data when there is none: short, so a new event reaches the
# projection within tens of milliseconds instead of half a second (the Kafka default).
FETCH_MAX_WAIT_MS = 50

Handler = Callable[[psycopg.AsyncConnection, Envelope], Awaitable[None]]
"""Writes one event into the projection, inside the transaction it is given."""

BatchHandler = Callable[[psycopg.AsyncConnection, list[Envelope]], Awaitable[None]]
"""Writes several new events (in delivery order) inside one transaction."""


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


class PermanentError(Exception):
    """Raised by a handler when retrying cannot help (the event contradicts the projection)."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    first_delay_seconds: float = 0.05
    max_delay_seconds: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.first_delay_seconds
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay_seconds)


@dataclass(frozen=True)
class Delivery:
    """Where a message came from, so a dead letter can name it, and the trace its Kafka
    headers carry on (the relay's publish span)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    traceparent: str | None = None
    tracestate: str | None = None


def delivery_of(record: Any) -> Delivery:
    """The delivery of one aiokafka ``ConsumerRecord``."""
    headers = {name: value for name, value in (record.headers or ()) if name in TRACE_HEADERS}
    return Delivery(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        _text(headers.get("traceparent")),
        _text(headers.get("tracestate")),
    )


TRACE_HEADERS = frozenset({"traceparent", "tracestate"})


def _text(value: bytes | None) -> str | None:
    return value.decode("ascii", "replace") if value else None


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "projection_events_total",
            "Events handled by projection consumers, by outcome.",
            ["consumer", "outcome"],
            registry=registry,
        )
        self.retries = Counter(
            "projection_retries_total",
            "Handler attempts that failed and were retried.",
            ["consumer"],
            registry=registry,
        )
        self.waiting = Gauge(
            "projection_dead_letters_waiting",
            "Messages parked in the projection's dead_letters table and not replayed yet: "
            "facts missing from it until ops replay them (measured every "
            "CONSUMER_LAG_INTERVAL_SECONDS).",
            ["consumer"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "projection_dead_letters_total",
            "Messages a projection could not apply, parked in its dead_letters table (alert "
            "on any increase: a fact is missing from that projection until it is replayed).",
            ["consumer", "event_type"],
            registry=registry,
        )
        self.duration = Histogram(
            "projection_event_duration_seconds",
            "Time to apply one event, retries included.",
            ["consumer"],
            registry=registry,
        )


class ProjectionFreshness:
    """How fresh a projection is: the age of the newest event of the last batch it applied,
    and when that was (for dashboards and alerts on a stalled consumer)."""

    def __init__(self, registry: CollectorRegistry, consumer: str) -> None:
        self.consumer = consumer
        self.lag = Gauge(
            "projection_event_lag_seconds",
            "Age of the newest event in the last applied batch (consumer lag in time).",
            ["consumer"],
            registry=registry,
        )
        self.last_applied = Gauge(
            "projection_last_applied_timestamp_seconds",
            "When the projection last applied an event.",
            ["consumer"],
            registry=registry,
        )

    def applied(self, envelopes: list[Envelope]) -> None:
        if envelopes:
            now = dt.datetime.now(dt.UTC)
            newest = max(e.occurred_at for e in envelopes)
            self.lag.labels(self.consumer).set(max(0.0, (now - newest).total_seconds()))
            self.last_applied.labels(self.consumer).set(now.timestamp())


class IdempotentConsumer:
    def __init__(
        self,
        database: Database,
        name: str,
        handler: Handler,
        metrics: ConsumerMetrics,
        retry: RetryPolicy | None = None,
        batch_handler: BatchHandler | None = None,
        after_commit: Callable[[], None] | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.database = database
        self.tracer = tracer or trace.get_tracer(__name__)
        self.after_commit = after_commit
        """Told after each transaction that applied something (a dispatcher waiting for
        what the projection planned)."""
        self.name = name
        self.handler = handler
        self.batch_handler = batch_handler
        self.metrics = metrics
        self.retry = retry or RetryPolicy()

    async def process(self, raw: bytes, delivery: Delivery) -> Outcome:
        started = time.perf_counter()
        began = time.time_ns()
        outcome = await self._process(raw, delivery)
        self.metrics.events.labels(self.name, outcome).inc()
        self.metrics.duration.labels(self.name).observe(time.perf_counter() - started)
        self._traced([(delivery, _envelope_or_none(raw), outcome)], began, time.time_ns())
        return outcome

    def _traced(
        self, applied: list[tuple[Delivery, Envelope | None, Outcome]], began: int, ended: int
    ) -> None:
        """One span per event, in the trace of the request that decided it (the Kafka
        headers' context, else the envelope's), spanning the transaction that applied it:
        a batch's events share its start and end."""
        for delivery, envelope, outcome in applied:
            parent = context_from(delivery.traceparent, delivery.tracestate)
            if parent is None and envelope is not None:
                parent = context_of(envelope.trace)
            attributes: dict[str, str | int] = {
                "messaging.system": "kafka",
                "messaging.destination.name": delivery.topic,
                "messaging.operation.type": "process",
                "messaging.consumer.group.name": self.name,
                "messaging.destination.partition.id": str(delivery.partition),
                "messaging.kafka.offset": delivery.offset,
                "messaging.batch.message_count": len(applied),
                "clinic.outcome": str(outcome),
            }
            if envelope is not None:
                attributes.update(event_attributes(envelope, delivery.topic))
            span = self.tracer.start_span(
                f"process {delivery.topic}",
                context=parent,
                kind=SpanKind.CONSUMER,
                start_time=began,
                attributes=attributes,
            )
            if outcome == Outcome.DEAD_LETTERED:
                span.set_status(Status(StatusCode.ERROR, "dead-lettered"))
            span.end(end_time=ended)

    async def _process(self, raw: bytes, delivery: Delivery) -> Outcome:
        try:
            envelope = Envelope.from_json(raw)
            envelope.typed_payload()
        except (ValidationError, ValueError, UnknownEventTypeError) as error:
            await self._dead_letter(raw, delivery, f"unreadable message: {error}", attempts=1)
            return Outcome.DEAD_LETTERED

        delays = self.retry.delays()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self.apply(envelope)
            except PermanentError:
                error_text = traceback.format_exc()
                break
            except Exception:  # noqa: BLE001 - retried, then dead-lettered, never dropped
                error_text = traceback.format_exc()
                delay = next(delays, None)
                if delay is None:
                    break
                self.metrics.retries.labels(self.name).inc()
                log.warning(
                    "projection handler failed, retrying",
                    extra={"consumer": self.name, "attempt": attempt, "event_type": envelope.type},
                )
                await asyncio.sleep(delay)
        await self._dead_letter(raw, delivery, error_text, attempts=attempt)
        return Outcome.DEAD_LETTERED

    async def apply(self, envelope: Envelope) -> Outcome:
        """Apply one event exactly once: mark it processed and write the projection together."""
        async with self.database.transaction() as conn:
            cursor = await conn.execute(
                """
                INSERT INTO processed_events (consumer, aggregate_id, aggregate_version, event_id)
                VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING
                """,
                (self.name, envelope.aggregate_id, envelope.aggregate_version, envelope.event_id),
            )
            if cursor.rowcount == 0:
                return Outcome.DUPLICATE
            await self.handler(conn, envelope)
        if self.after_commit is not None:
            self.after_commit()
        return Outcome.APPLIED

    async def process_batch(self, messages: list[tuple[bytes, Delivery]]) -> list[Outcome]:
        """Apply a batch in one transaction (the fast path, also for rebuilds); when that
        fails, fall back to one message at a time with the retry and dead-letter policy."""
        started = time.perf_counter()
        began = time.time_ns()
        outcomes: list[Outcome | None] = [None] * len(messages)
        readable: list[tuple[int, Envelope]] = []
        for index, (raw, delivery) in enumerate(messages):
            try:
                envelope = Envelope.from_json(raw)
                envelope.typed_payload()
            except (ValidationError, ValueError, UnknownEventTypeError) as error:
                await self._dead_letter(raw, delivery, f"unreadable message: {error}", 1)
                outcomes[index] = Outcome.DEAD_LETTERED
            else:
                readable.append((index, envelope))
        if readable:
            try:
                applied = await self.apply_batch([e for _, e in readable])
            except Exception:  # noqa: BLE001 - every message is retried one by one below
                log.warning(
                    "batch failed, retrying message by message",
                    extra={"consumer": self.name, "size": len(readable)},
                )
                for index, _ in readable:
                    outcomes[index] = await self._process(*messages[index])
            else:
                claimed: set[tuple[UUID, int]] = set()
                for index, envelope in readable:
                    key = (envelope.aggregate_id, envelope.aggregate_version)
                    fresh = key in applied and key not in claimed
                    claimed.add(key)
                    outcomes[index] = Outcome.APPLIED if fresh else Outcome.DUPLICATE
        final = [o if o is not None else Outcome.DEAD_LETTERED for o in outcomes]
        for outcome in final:
            self.metrics.events.labels(self.name, outcome).inc()
        self.metrics.duration.labels(self.name).observe(time.perf_counter() - started)
        envelopes = dict(readable)
        self._traced(
            [
                (delivery, envelopes.get(index), outcome)
                for index, ((_, delivery), outcome) in enumerate(zip(messages, final, strict=True))
            ],
            began,
            time.time_ns(),
        )
        return final

    async def apply_batch(self, envelopes: list[Envelope]) -> set[tuple[UUID, int]]:
        """Mark every envelope processed in one statement and write the new ones, in one
        transaction. Returns the (aggregate_id, aggregate_version) pairs that were new."""
        unique: dict[tuple[UUID, int], Envelope] = {}
        for envelope in envelopes:
            unique.setdefault((envelope.aggregate_id, envelope.aggregate_version), envelope)
        async with self.database.transaction() as conn:
            cursor = await conn.execute(
                """
                INSERT INTO processed_events (consumer, aggregate_id, aggregate_version, event_id)
                SELECT %s, a, v, e FROM unnest(%s::uuid[], %s::int[], %s::uuid[]) AS t(a, v, e)
                ON CONFLICT DO NOTHING RETURNING aggregate_id, aggregate_version
                """,
                (
                    self.name,
                    [k[0] for k in unique],
                    [k[1] for k in unique],
                    [e.event_id for e in unique.values()],
                ),
            )
            new = {(row[0], row[1]) for row in await cursor.fetchall()}
            fresh = [e for k, e in unique.items() if k in new]
            if self.batch_handler is not None:
                await self.batch_handler(conn, fresh)
            else:
                for envelope in fresh:
                    await self.handler(conn, envelope)
        if new and self.after_commit is not None:
            self.after_commit()
        return new

    async def _dead_letter(self, raw: bytes, delivery: Delivery, error: str, attempts: int) -> None:
        event_type = event_type_of(raw)
        self.metrics.dead_letters.labels(self.name, event_type).inc()
        log.error(
            "message dead-lettered: a fact is missing from this projection until replayed",
            extra={
                "alert": "dead-letter",
                "consumer": self.name,
                "event_type": event_type,
                "topic": delivery.topic,
                "partition": delivery.partition,
                "offset": delivery.offset,
                "attempts": attempts,
                "error": error.strip().splitlines()[-1] if error.strip() else "",
            },
        )
        async with self.database.transaction() as conn:
            await conn.execute(
                """
                INSERT INTO dead_letters
                    (consumer, topic, partition, "offset", key, value, error, attempts)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                """,
                (
                    self.name,
                    delivery.topic,
                    delivery.partition,
                    delivery.offset,
                    delivery.key,
                    raw,
                    error,
                    attempts,
                ),
            )

    async def count_waiting(self) -> int:
        """How many dead letters wait for a replay (the ``projection_dead_letters_waiting``
        gauge, which keeps its alert firing until they are replayed)."""
        async with self.database.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM dead_letters WHERE consumer = %s AND replayed_at IS NULL",
                (self.name,),
            )
            row = await cursor.fetchone()
        waiting = int(row[0]) if row else 0
        self.metrics.waiting.labels(self.name).set(waiting)
        return waiting

    async def replay_dead_letters(self, ids: list[int] | None = None) -> dict[Outcome, int]:
        """Process this consumer's unreplayed dead letters again (or those of ``ids``),
        oldest first. Each is processed before it is marked replayed: a crash in between
        leaves it to the next replay, which finds it applied (the idempotency record)."""
        counts = dict.fromkeys(Outcome, 0)
        only = "" if ids is None else " AND id = ANY(%s)"
        async with self.database.pool.connection() as conn:
            cursor = await conn.execute(
                f"""SELECT id, topic, partition, "offset", key, value FROM dead_letters
                   WHERE consumer = %s AND replayed_at IS NULL{only} ORDER BY id""",
                (self.name,) if ids is None else (self.name, ids),
            )
            rows = await cursor.fetchall()
        for row_id, topic, partition, offset, key, value in rows:
            outcome = await self.process(bytes(value), Delivery(topic, partition, offset, key))
            async with self.database.transaction() as conn:
                await conn.execute(
                    "UPDATE dead_letters SET replayed_at = now() WHERE id = %s", (row_id,)
                )
            counts[outcome] += 1
        return counts


def event_type_of(raw: bytes) -> str:
    """The event type a message claims, for metrics and logs ("unreadable" when none)."""
    try:
        value = json.loads(raw).get("type")
    except (ValueError, AttributeError):
        return "unreadable"
    return value if value in _known_types() else "unknown"


def _envelope_or_none(raw: bytes) -> Envelope | None:
    try:
        return Envelope.from_json(raw)
    except (ValidationError, ValueError):
        return None


@functools.cache
def _known_types() -> frozenset[str]:
    return frozenset(event_type for event_type, _ in payload_types())


def subscribe(
    broker: KafkaBroker, consumer: IdempotentConsumer, topics: list[str], group_id: str
) -> None:
    """Feed ``topics`` into ``consumer``. New groups start from the earliest offset (a
    projection wants the whole history); a failure that could not even be dead-lettered is
    not acknowledged, so Kafka delivers the message again."""

    @broker.subscriber(
        *topics,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        consumer_timeout_ms=FETCH_MAX_WAIT_MS,
    )
    async def on_message(message: KafkaMessage) -> None:
        record = message.raw_message
        await consumer.process(
            message.body,
            delivery_of(record),
        )


def subscribe_batches(
    broker: KafkaBroker,
    consumer: IdempotentConsumer,
    topics: list[str],
    group_id: str,
    max_records: int = 500,
    wait_ms: int = 20,
) -> Any:
    """Like :func:`subscribe`, in batches of up to ``max_records`` (one transaction each).
    Returns the FastStream subscriber, so its owner can stop and restart it."""

    @broker.subscriber(
        *topics,
        group_id=group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        consumer_timeout_ms=FETCH_MAX_WAIT_MS,
        batch=True,
        max_records=max_records,
        batch_timeout_ms=wait_ms,
    )
    async def on_batch(message: KafkaMessage) -> None:
        records = message.raw_message
        await consumer.process_batch([(r.value, delivery_of(r)) for r in records])

    return on_batch
