"""An envelope through the real broker into the real PostgreSQL, exactly once."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from clinic.events import Envelope
from clinic.events.appointments import AppointmentCancelled, CancelledBy
from clinic.platform.consumer import (
    CONSUMER_DDL,
    ConsumerMetrics,
    IdempotentConsumer,
    Outcome,
    RetryPolicy,
    subscribe,
)
from clinic.platform.database import Database
from clinic.platform.kafka import KafkaAccess, create_broker, ensure_topics
from clinic.platform.settings import ServiceSettings
from clinic.platform.telemetry import create_tracer_provider

PROJECTION_DDL = """
CREATE TABLE cancellations (
    appointment_id uuid PRIMARY KEY,
    reason text NOT NULL,
    times_applied integer NOT NULL DEFAULT 1
)
"""


class ProbeSettings(ServiceSettings):
    service_name = "probe"


def cancellation(appointment_id: uuid.UUID, version: int = 2) -> Envelope:
    return Envelope.wrap(
        AppointmentCancelled(
            appointment_id=appointment_id, cancelled_by=CancelledBy.CLINIC, reason="provider ill"
        ),
        event_id=uuid.uuid4(),
        aggregate_id=appointment_id,
        aggregate_version=version,
        occurred_at=datetime.now(UTC),
        organization_id=uuid.uuid4(),
    )


async def record_cancellation(conn: psycopg.AsyncConnection, envelope: Envelope) -> None:
    payload = envelope.payload_as(AppointmentCancelled)
    await conn.execute(
        """INSERT INTO cancellations (appointment_id, reason) VALUES (%s, %s)
           ON CONFLICT (appointment_id)
           DO UPDATE SET times_applied = cancellations.times_applied + 1""",
        (payload.appointment_id, payload.reason),
    )


@pytest.fixture
async def database(settings_for: Callable[..., ProbeSettings]) -> AsyncIterator[Database]:
    settings = settings_for(ProbeSettings)
    db = Database(settings.database_url, settings.schema_name, "probe", 4)
    await db.migrate([*CONSUMER_DDL, PROJECTION_DDL])
    await db.pool.open(wait=True)
    yield db
    await db.close()


async def rows(db: Database, query: str, *args: Any) -> list[tuple[Any, ...]]:
    async with db.pool.connection() as conn:
        cursor = await conn.execute(query, args)  # type: ignore[arg-type]
        return await cursor.fetchall()


async def wait_for(condition: Callable[[], Any], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_an_event_delivered_twice_through_the_broker_is_written_exactly_once(
    database: Database, settings_for: Callable[..., ProbeSettings], schema_name: str
) -> None:
    settings = settings_for(ProbeSettings)
    topic = f"test.cancellations.{schema_name}"
    registry = CollectorRegistry()
    broker: KafkaBroker = create_broker(settings, create_tracer_provider("probe", ""), registry)
    consumer = IdempotentConsumer(database, "probe", record_cancellation, ConsumerMetrics(registry))
    subscribe(broker, consumer, [topic], group_id=f"probe-{schema_name}")
    await ensure_topics(KafkaAccess.of(settings), [topic], partitions=3)

    # 1. Publish one cancellation twice (what an at-least-once relay does after a restart),
    #    and a second, different one.
    first, other = cancellation(uuid.uuid4()), cancellation(uuid.uuid4())
    await broker.start()
    try:
        for envelope in (first, first, other):
            await broker.publish(
                envelope.to_json(), topic, key=envelope.key(), headers=envelope.headers()
            )

        # 2. Both distinct facts arrive; the duplicate is recognised.
        async def all_seen() -> bool:
            return (
                registry.get_sample_value(
                    "projection_events_total", {"consumer": "probe", "outcome": "duplicate"}
                )
                == 1.0
                and len(await rows(database, "SELECT 1 FROM cancellations")) == 2
            )

        await wait_for(all_seen)
    finally:
        await broker.stop()

    # 3. The projection holds each fact once, and knows which facts it applied.
    assert await rows(
        database,
        "SELECT times_applied FROM cancellations WHERE appointment_id = %s",
        first.aggregate_id,
    ) == [(1,)]
    assert await rows(
        database,
        "SELECT aggregate_version FROM processed_events WHERE aggregate_id = %s",
        first.aggregate_id,
    ) == [(2,)]
    assert (
        registry.get_sample_value(
            "projection_events_total", {"consumer": "probe", "outcome": "applied"}
        )
        == 2.0
    )


async def test_a_handler_that_fails_briefly_is_retried_and_applied_once(database: Database) -> None:
    failures = 2
    calls = 0

    async def flaky(conn: psycopg.AsyncConnection, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        await record_cancellation(conn, envelope)  # written, then rolled back on failure
        if calls <= failures:
            raise ConnectionResetError("smtp server went away")

    consumer = IdempotentConsumer(
        database,
        "flaky",
        flaky,
        ConsumerMetrics(CollectorRegistry()),
        RetryPolicy(attempts=5, first_delay_seconds=0.01),
    )
    envelope = cancellation(uuid.uuid4())
    outcome = await consumer.process(envelope.to_json(), _delivery())
    assert (outcome, calls) == (Outcome.APPLIED, 3)
    assert await rows(database, "SELECT times_applied FROM cancellations") == [(1,)]
    assert await rows(database, "SELECT count(*) FROM dead_letters") == [(0,)]


async def test_a_handler_that_keeps_failing_parks_the_message_as_a_dead_letter(
    database: Database,
) -> None:
    async def broken(conn: psycopg.AsyncConnection, envelope: Envelope) -> None:
        raise ValueError("projection cannot place this event")

    consumer = IdempotentConsumer(
        database,
        "broken",
        broken,
        ConsumerMetrics(CollectorRegistry()),
        RetryPolicy(attempts=3, first_delay_seconds=0.01),
    )
    envelope = cancellation(uuid.uuid4())
    assert await consumer.process(envelope.to_json(), _delivery()) == Outcome.DEAD_LETTERED
    [(attempts, error, value)] = await rows(
        database, "SELECT attempts, error, value FROM dead_letters WHERE consumer = 'broken'"
    )
    assert attempts == 3
    assert "projection cannot place this event" in error
    assert bytes(value) == envelope.to_json()
    # Nothing was half-applied, and the event is not marked as processed.
    assert await rows(database, "SELECT count(*) FROM processed_events") == [(0,)]

    # Once the cause is fixed, ops replays the dead letter and it is applied once.
    consumer.handler = record_cancellation
    replayed = await consumer.replay_dead_letters()
    assert replayed[Outcome.APPLIED] == 1
    assert await rows(database, "SELECT times_applied FROM cancellations") == [(1,)]


async def test_a_message_that_is_not_an_envelope_is_dead_lettered_at_once(
    database: Database,
) -> None:
    consumer = IdempotentConsumer(
        database, "strict", record_cancellation, ConsumerMetrics(CollectorRegistry())
    )
    assert await consumer.process(b'{"not": "an envelope"', _delivery()) == Outcome.DEAD_LETTERED
    assert await rows(database, "SELECT attempts FROM dead_letters WHERE consumer = 'strict'") == [
        (1,)
    ]


def _delivery() -> Any:
    from clinic.platform.consumer import Delivery

    return Delivery(topic="booking.appointments.v1", partition=0, offset=7, key=b"k")


async def test_a_fact_a_projection_cannot_store_is_dead_lettered_counted_and_logged_for_alerting(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async def refuse(conn: psycopg.AsyncConnection, envelope: Envelope) -> None:
        raise ValueError("PostgreSQL text fields cannot contain NUL (0x00) bytes")

    registry = CollectorRegistry()
    consumer = IdempotentConsumer(
        database, "fragile", refuse, ConsumerMetrics(registry), RetryPolicy(attempts=2)
    )
    envelope = cancellation(uuid.uuid4())
    with caplog.at_level("ERROR"):
        outcome = await consumer.process(envelope.to_json(), _delivery())

    assert outcome == Outcome.DEAD_LETTERED
    labels = {"consumer": "fragile", "event_type": "Appointment.Cancelled"}
    assert registry.get_sample_value("projection_dead_letters_total", labels) == 1
    [record] = [r for r in caplog.records if getattr(r, "alert", None) == "dead-letter"]
    assert record.levelname == "ERROR"
    assert record.event_type == "Appointment.Cancelled"  # type: ignore[attr-defined]
    assert "NUL" in record.error  # type: ignore[attr-defined]
    [(error, attempts)] = await rows(
        database, "SELECT error, attempts FROM dead_letters WHERE consumer = 'fragile'"
    )
    assert "NUL" in error
    assert attempts == 2


async def test_each_event_of_a_batch_is_applied_in_a_span_of_the_trace_that_decided_it(
    database: Database,
) -> None:
    """A batch is one transaction, but each event's trace shows this consumer applying it:
    under the context its Kafka headers carry (the relay's publish), else its envelope's."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from clinic.events.envelope import TraceContext
    from clinic.platform.consumer import Delivery

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    consumer = IdempotentConsumer(
        database,
        "traced",
        record_cancellation,
        ConsumerMetrics(CollectorRegistry()),
        tracer=provider.get_tracer("test"),
    )
    published = "0af7651916cd43dd8448eb211c80319c"  # the relay's publish span, in headers
    decided = "4bf92f3577b34da6a3ce929d0e0e4736"  # the booking request, on the envelope
    by_header = cancellation(uuid.uuid4())
    by_envelope = cancellation(uuid.uuid4()).model_copy(
        update={"trace": TraceContext(traceparent=f"00-{decided}-00f067aa0ba902b7-01")}
    )
    topic = "booking.appointments.v1"
    outcomes = await consumer.process_batch(
        [
            (
                by_header.to_json(),
                Delivery(topic, 0, 1, b"a", f"00-{published}-b7ad6b7169203331-01"),
            ),
            (by_envelope.to_json(), Delivery(topic, 0, 2, b"b")),
            (b"not an envelope", Delivery(topic, 0, 3, b"c")),
        ]
    )

    assert outcomes == [Outcome.APPLIED, Outcome.APPLIED, Outcome.DEAD_LETTERED]
    spans = {
        span.attributes["messaging.kafka.offset"]: span for span in exporter.get_finished_spans()
    }  # type: ignore[index]
    assert set(spans) == {1, 2, 3}
    for span in spans.values():
        assert span.name == f"process {topic}"
        assert span.kind == SpanKind.CONSUMER
        assert span.attributes is not None
        assert span.attributes["messaging.consumer.group.name"] == "traced"
        assert span.attributes["messaging.batch.message_count"] == 3
    assert format(spans[1].context.trace_id, "032x") == published
    assert spans[1].parent is not None
    assert format(spans[1].parent.span_id, "016x") == "b7ad6b7169203331"
    assert spans[1].attributes is not None
    assert spans[1].attributes["clinic.event.type"] == by_header.type
    assert spans[1].attributes["clinic.aggregate.id"] == str(by_header.aggregate_id)
    assert format(spans[2].context.trace_id, "032x") == decided
    assert spans[1].start_time == spans[2].start_time  # one transaction
    assert not spans[3].status.is_ok  # dead-lettered: an error, in a trace of its own
    assert format(spans[3].context.trace_id, "032x") not in (published, decided)


async def test_ops_list_parked_messages_and_replay_them_over_http_each_applied_once(
    database: Database,
) -> None:
    """The dead-letter routes every consumer service serves: a list paged oldest first,
    a replay of chosen ids or of all, and clear 4xx answers to bad requests."""
    from types import SimpleNamespace

    from fastapi import FastAPI

    from clinic.platform import dead_letters
    from clinic.platform.problem_handlers import install_problem_handlers

    failing = True

    async def flaky(conn: psycopg.AsyncConnection, envelope: Envelope) -> None:
        if failing:
            raise ValueError("the location is not known yet")
        await record_cancellation(conn, envelope)

    consumer = IdempotentConsumer(
        database,
        "ops",
        flaky,
        ConsumerMetrics(CollectorRegistry()),
        RetryPolicy(attempts=1, first_delay_seconds=0.01),
    )
    parked = [cancellation(uuid.uuid4()) for _ in range(3)]
    for envelope in parked:
        assert await consumer.process(envelope.to_json(), _delivery()) == Outcome.DEAD_LETTERED
    assert await consumer.count_waiting() == 3  # what keeps ClinicDeadLettersWaiting firing
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(dead_letters.router)
    app.state.runtime = SimpleNamespace(
        consumer=consumer, settings=ProbeSettings(operations_token="ops-secret")
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as stranger:
        # Dead letters can carry patients' details: nobody without the token sees them.
        for token in (None, "Bearer wrong", "Basic ops-secret"):
            headers = {"Authorization": token} if token else {}
            refused = await stranger.get("/operations/dead-letters", headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.headers["www-authenticate"].startswith("Bearer")
            replay = await stranger.post("/operations/dead-letters/replay", headers=headers)
            assert replay.status_code == 401
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://ops",
        headers={"Authorization": "Bearer ops-secret"},
    ) as ops:
        first = (await ops.get("/operations/dead-letters", params={"page_size": 2})).json()
        assert [d["event_type"] for d in first["dead_letters"]] == [parked[0].type] * 2
        assert "the location is not known yet" in first["dead_letters"][0]["error"]
        assert first["next_page_token"] is not None
        rest = await ops.get(
            "/operations/dead-letters", params={"page_token": first["next_page_token"]}
        )
        ids = [d["id"] for d in first["dead_letters"] + rest.json()["dead_letters"]]
        assert len(ids) == 3
        assert rest.json()["next_page_token"] is None

        for bad in ({"page_token": "not-ours"}, {"page_size": 0}, {"replayed": "perhaps"}):
            answer = await ops.get("/operations/dead-letters", params=bad)
            assert answer.status_code == 422, (bad, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        # Numbers no table holds, and a page token far past the end: clear answers, no 5xx.
        from clinic.platform.paging import encode_position

        beyond = await ops.get(
            "/operations/dead-letters",
            params={"page_token": encode_position("dead-letters", 10**30)},
        )
        assert beyond.status_code in (200, 422), beyond.text
        huge = await ops.post("/operations/dead-letters/replay", json={"ids": [2**70, -1]})
        assert huge.status_code in (200, 422), huge.text
        if huge.status_code == 200:
            assert huge.json()["replayed"] == 0
        control = await ops.get("/operations/dead-letters", params={"page_token": "dl\x00|1"})
        assert control.status_code == 422
        for body in (b"{not json", b'{"ids": ["one"]}', b'{"ids": [], "x": 1}', b'{"ids": []}'):
            answer = await ops.post(
                "/operations/dead-letters/replay",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            assert answer.status_code in (400, 422), (body, answer.text)
        assert await rows(database, "SELECT count(*) FROM cancellations") == [(0,)]

        failing = False  # the cause is fixed
        one = await ops.post("/operations/dead-letters/replay", json={"ids": [ids[0]]})
        assert one.json() == {"replayed": 1, "applied": 1, "duplicate": 0, "dead_lettered": 0}
        rest_of_them = (await ops.post("/operations/dead-letters/replay")).json()
        assert rest_of_them == {"replayed": 2, "applied": 2, "duplicate": 0, "dead_lettered": 0}
        again = (await ops.post("/operations/dead-letters/replay")).json()
        assert again["replayed"] == 0
        assert await consumer.count_waiting() == 0
        done = (await ops.get("/operations/dead-letters", params={"replayed": True})).json()
        assert sorted(d["id"] for d in done["dead_letters"]) == sorted(ids)
        assert all(d["replayed_at"] for d in done["dead_letters"])
    assert await rows(database, "SELECT count(*), max(times_applied) FROM cancellations") == [
        (3, 1)
    ]
    app.state.runtime = SimpleNamespace(consumer=consumer, settings=ProbeSettings())
    async with httpx.AsyncClient(transport=transport, base_url="http://ops") as ops:
        off = await ops.get("/operations/dead-letters", headers={"Authorization": "Bearer x"})
        assert off.status_code == 403  # no token configured: the routes are off
