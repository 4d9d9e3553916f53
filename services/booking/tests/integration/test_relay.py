"""The outbox relay on the real broker: everything decided reaches Kafka, in order, and
survives a killed relay and a broker that lost its topics."""

import asyncio
import datetime as dt
import os
import re
import signal
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scenario import Clinic, Clock, at, build_clinic, postgres_env

from clinic.booking.application import Bookings
from clinic.booking.outbox import OutboxReader
from clinic.devstack.components import Infrastructure, stop_pid
from clinic.devstack.tansu import start_tansu
from clinic.devstack.testing import RunningService, read_topics
from clinic.events import ALL_TOPICS, Envelope, Topic

TOPICS = [str(t) for t in ALL_TOPICS]


@pytest.fixture
def clinic(request: pytest.FixtureRequest, schema_name: str) -> Iterator[Clinic]:
    clock = Clock(dt.datetime.now(dt.UTC))
    app = Bookings(env=postgres_env(request, schema_name), clock=clock)
    yield build_clinic(app, clock)
    app.close()


def expected_envelopes(app: Bookings) -> dict[tuple[uuid.UUID, int], Envelope]:
    """What the relay must publish: every translatable event in the store."""
    _, batch = OutboxReader(app).read(0, 1_000_000)
    return {(e.aggregate_id, e.aggregate_version): e for _, e in batch if e is not None}


def book_many(clinic: Clinic, days: int) -> None:
    first = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=14)
    for d in range(days):
        day = first + dt.timedelta(days=d)
        if day.weekday() >= 5:
            continue
        for hour in range(9, 16):
            clinic.book("consult", at(day, hour))
            clinic.book("consult", at(day, hour))


async def published_for(bootstrap: str, organization_id: uuid.UUID, wanted: int) -> list[Any]:
    def mine(records: list[Any]) -> list[Any]:
        return [
            r for r in records if Envelope.from_json(r.value).organization_id == organization_id
        ]

    records = await read_topics(
        bootstrap,
        TOPICS,
        lambda rs: (
            len(
                {
                    (e.aggregate_id, e.aggregate_version)
                    for e in (Envelope.from_json(r.value) for r in mine(rs))
                }
            )
            >= wanted
        ),
        within=90,
    )
    return mine(records)


async def test_the_relay_publishes_every_decision_keyed_by_aggregate_without_personal_data(
    clinic: Clinic,
    start_service: Callable[..., RunningService],
    infrastructure: Infrastructure,
) -> None:
    book_many(clinic, 3)
    expected = expected_envelopes(clinic.app)
    start_service("clinic.booking", "BOOKING_")
    records = await published_for(infrastructure.kafka_bootstrap_servers, clinic.org, len(expected))
    seen: dict[tuple[uuid.UUID, int], Envelope] = {}
    last_version: dict[tuple[str, uuid.UUID], int] = {}
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        env = Envelope.from_json(record.value)
        assert record.key == str(env.aggregate_id).encode()
        assert str(env.typed_payload().topic) == record.topic
        headers = dict(record.headers)
        assert set(headers) >= {"event-type", "schema-version", "event-id"}
        assert b"Pat0" not in b"".join(v for _, v in record.headers)
        # Within a partition, each aggregate's events arrive in version order.
        key = (record.topic, env.aggregate_id)
        assert env.aggregate_version > last_version.get(key, 0)
        last_version[key] = env.aggregate_version
        seen[(env.aggregate_id, env.aggregate_version)] = env
    assert seen.keys() == expected.keys()
    assert {e.event_id for e in seen.values()} == {e.event_id for e in expected.values()}
    personal = [e.type for e in seen.values() if "Pat0" in e.to_json().decode()]
    assert set(personal) == {"Patient.Registered"}


async def test_killing_the_relay_mid_stream_loses_nothing_and_redelivery_changes_nothing(
    clinic: Clinic,
    start_service: Callable[..., RunningService],
    infrastructure: Infrastructure,
) -> None:
    # 1. A backlog written while no relay runs.
    book_many(clinic, 20)
    expected = expected_envelopes(clinic.app)
    assert len(expected) > 300

    # 2. Start the relay in small batches and kill -9 it mid-stream.
    service = start_service("clinic.booking", "BOOKING_", BOOKING_RELAY_BATCH_SIZE="20")
    async with httpx.AsyncClient(base_url=service.url) as http:
        for _ in range(200):
            metrics = (await http.get("/metrics")).text
            position = next(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("relay_position ")
            )
            if position > 100:
                break
            await asyncio.sleep(0.05)
    assert service.process is not None
    os.kill(service.process.pid, signal.SIGKILL)
    service.process.wait()
    assert 0 < position < clinic.app.recorder.max_notification_id()

    # 3. Restart: it picks up from its recorded position; nothing is lost.
    start_service("clinic.booking", "BOOKING_")
    records = await published_for(infrastructure.kafka_bootstrap_servers, clinic.org, len(expected))
    delivered = Counter(
        (e.aggregate_id, e.aggregate_version)
        for e in (Envelope.from_json(r.value) for r in records)
    )
    assert delivered.keys() == expected.keys()
    # Redelivered envelopes are byte-for-byte the same facts (same event ids), so an
    # idempotent consumer (tested in clinic.platform) ignores them.
    for record in records:
        env = Envelope.from_json(record.value)
        assert env.event_id == expected[(env.aggregate_id, env.aggregate_version)].event_id


async def test_on_the_tansu_rung_a_broker_that_lost_its_topics_gets_everything_republished(
    clinic: Clinic,
    start_service: Callable[..., RunningService],
    tmp_path: Path,
) -> None:
    # Tansu, the last rung (machines without Java), keeps topics in memory; the ladder tells
    # the services so, and the relay watches for lost topics on that rung alone. A broker of
    # this test's own, so restarting it disturbs no other test.
    broker = await asyncio.to_thread(start_tansu, tmp_path)
    port = int(broker.address.rsplit(":", 1)[1])
    try:
        book_many(clinic, 2)
        expected = expected_envelopes(clinic.app)
        start_service(
            "clinic.booking",
            "BOOKING_",
            KAFKA_BOOTSTRAP_SERVERS=broker.address,
            KAFKA_ENABLE_IDEMPOTENCE="false",
            KAFKA_BROKER_KEEPS_DATA="false",
        )
        await published_for(broker.address, clinic.org, len(expected))

        # The broker restarts empty (in-memory storage), on the same address.
        stop_pid(broker.pid)
        broker = await asyncio.to_thread(start_tansu, tmp_path, port)
        later = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=60)
        later += dt.timedelta(days=(7 - later.weekday()) % 7)  # a Monday
        clinic.book("consult", at(later, 10))
        expected = expected_envelopes(clinic.app)
        records = await published_for(broker.address, clinic.org, len(expected))
        assert {
            (e.aggregate_id, e.aggregate_version)
            for e in (Envelope.from_json(r.value) for r in records)
        } == expected.keys()
    finally:
        stop_pid(broker.pid)


def replay_all(service: RunningService, params: dict[str, Any]) -> list[Envelope]:
    """Every envelope of booking's replay API, page by page."""
    envelopes: list[Envelope] = []
    after = 0
    with httpx.Client(base_url=service.url, timeout=30) as http:
        while True:
            page = http.get("/events", params={**params, "after": after, "limit": 7}).json()
            envelopes += [Envelope.model_validate(e) for e in page["events"]]
            if page["next"] == after or page["next"] >= page["top"]:
                return envelopes
            after = page["next"]


@pytest.mark.parametrize("relay", ["published", "not yet published"])
def test_the_replay_api_serves_only_the_topics_asked_for(
    clinic: Clinic,
    start_service: Callable[..., RunningService],
    infrastructure: Infrastructure,
    relay: str,
) -> None:
    book_many(clinic, 1)
    expected = expected_envelopes(clinic.app)
    service = start_service(
        "clinic.booking", "BOOKING_", RELAY_ENABLED=str(relay == "published").lower()
    )
    if relay == "published":
        asyncio.run(
            published_for(infrastructure.kafka_bootstrap_servers, clinic.org, len(expected))
        )
    wanted = ["booking.resource-days.v1", "booking.schedules.v1"]
    served = replay_all(service, {"topic": wanted})
    assert served
    assert {str(e.typed_payload().topic) for e in served} == set(wanted)
    assert [(e.aggregate_id, e.aggregate_version) for e in served] == [
        key for key, e in expected.items() if str(e.typed_payload().topic) in wanted
    ]
    everything = replay_all(service, {})
    assert len(everything) == len(expected)
    with httpx.Client(base_url=service.url) as http:
        refused = http.get("/events", params={"topic": "booking.nonsense.v1"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"


async def test_a_requests_actor_trace_and_correlation_reach_the_envelopes_and_headers_on_kafka(
    start_service: Callable[..., RunningService], infrastructure: Infrastructure
) -> None:
    service = start_service("clinic.booking", "BOOKING_")
    trace_id = uuid.uuid4().hex
    correlation = uuid.uuid4()
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
        response = await http.post(
            "/organizations",
            json={"name": "Traced Group"},
            headers={
                "Idempotency-Key": str(uuid.uuid4()),
                "traceparent": f"00-{trace_id}-{'1' * 16}-01",
                "X-Actor-Id": "user-4711",
                "X-Actor-Role": "org_admin",
                "X-Actor-Channel": "admin-console",
                "X-Correlation-Id": str(correlation),
            },
        )
        assert response.status_code == 201, response.text
        refused = await http.post(
            "/organizations",
            json={"name": "Bad Context"},
            headers={"Idempotency-Key": str(uuid.uuid4()), "X-Correlation-Id": "not-a-uuid"},
        )
        assert refused.status_code == 400
    org = uuid.UUID(response.json()["id"])

    def mine(records: list[Any]) -> list[Envelope]:
        envelopes = (Envelope.from_json(r.value) for r in records)
        return [e for e in envelopes if e.aggregate_id == org]

    records = await read_topics(
        infrastructure.kafka_bootstrap_servers,
        [str(Topic.REFERENCE)],
        lambda rs: bool(mine(rs)),
        within=60,
    )
    [registered] = mine(records)
    assert registered.type == "Organization.Registered"
    assert registered.actor is not None
    assert (registered.actor.user_id, registered.actor.role, registered.actor.channel) == (
        "user-4711",
        "org_admin",
        "admin-console",
    )
    assert registered.correlation_id == correlation
    assert registered.causation_id is not None  # the handled request
    assert registered.trace is not None
    assert registered.trace.traceparent.split("-")[1] == trace_id
    # The relay published it in a span of the request's trace: the header names that
    # publish (same trace, a span of its own), so consumers continue the trace under it.
    [record] = [r for r in records if Envelope.from_json(r.value).aggregate_id == org]
    headers = {name: value.decode() for name, value in record.headers}
    _, header_trace, header_span, _ = headers["traceparent"].split("-")
    assert header_trace == trace_id
    assert header_span != registered.trace.traceparent.split("-")[2]
    # Ops see that the relay keeps up: when it last published, how old its backlog is.
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
        metrics = (await http.get("/metrics")).text
    published_at = re.search(r"^relay_last_published_timestamp_seconds (\S+)$", metrics, re.M)
    assert published_at is not None
    assert float(published_at.group(1)) > 0
    assert re.search(r"^relay_lag_seconds \S+$", metrics, re.M)
    # The appointment directory reads appointment events only: an organisation's events
    # after its position are nothing it lags behind.
    assert re.search(r"^booking_directory_lag_events 0\.0$", metrics, re.M), metrics


async def test_patient_events_travel_on_their_own_topic_and_nowhere_else(
    start_service: Callable[..., RunningService], infrastructure: Infrastructure
) -> None:
    service = start_service("clinic.booking", "BOOKING_")
    async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:

        async def send(method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await http.request(
                method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
            )
            assert response.status_code in (200, 201), response.text
            return response.json()  # type: ignore[no-any-return]

        org = (await send("POST", "/organizations", {"name": "PII Group"}))["id"]
        patient = (
            await send(
                "POST",
                f"/organizations/{org}/patients",
                {"given_name": "Ada", "family_name": "Private", "birth_date": "1990-01-01"},
            )
        )["id"]
        await send("PATCH", f"/organizations/{org}/patients/{patient}", {"gender": "female"})
        marker = (
            await send("POST", f"/organizations/{org}/locations", {"name": "L", "time_zone": "UTC"})
        )["id"]
    patient_id, marker_id = uuid.UUID(patient), uuid.UUID(marker)

    def of(records: list[Any], aggregate_id: uuid.UUID, topic: Topic) -> list[Envelope]:
        envelopes = (Envelope.from_json(r.value) for r in records if r.topic == str(topic))
        return [e for e in envelopes if e.aggregate_id == aggregate_id]

    records = await read_topics(
        infrastructure.kafka_bootstrap_servers,
        [str(Topic.PATIENTS), str(Topic.REFERENCE)],
        lambda rs: (
            len(of(rs, patient_id, Topic.PATIENTS)) == 2
            and bool(of(rs, marker_id, Topic.REFERENCE))
        ),
        within=60,
    )
    registered, updated = of(records, patient_id, Topic.PATIENTS)
    assert (registered.type, registered.schema_version) == ("Patient.Registered", 2)
    assert registered.payload["patient"]["family_name"] == "Private"
    assert (updated.type, updated.payload["changed"]) == ("Patient.DetailsUpdated", ["gender"])
    assert of(records, patient_id, Topic.REFERENCE) == []
    reference_text = b"".join(r.value for r in records if r.topic == str(Topic.REFERENCE))
    assert b"Private" not in reference_text


async def test_two_booking_deployments_sharing_a_database_each_publish_through_their_own_relay(
    start_service: Callable[..., RunningService], infrastructure: Infrastructure, schema_name: str
) -> None:
    # One relay per event store: a lock for the whole database once let the first booking's
    # relay starve the second's, whose events then never reached Kafka.
    first = start_service("clinic.booking", "BOOKING_", schema=f"{schema_name}_a")
    second = start_service("clinic.booking", "BOOKING_", schema=f"{schema_name}_b")
    orgs = []
    async with httpx.AsyncClient(timeout=30) as http:
        for booking in (first, second):
            answer = await http.post(
                f"{booking.url}/organizations",
                json={"name": f"Relay {booking.port}"},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            assert answer.status_code == 201, answer.text
            orgs.append(answer.json()["id"])

    def both(records: list[Any]) -> bool:
        seen = {Envelope.model_validate_json(r.value).organization_id for r in records}
        return {uuid.UUID(o) for o in orgs} <= seen

    records = await read_topics(
        infrastructure.kafka_bootstrap_servers, [Topic.REFERENCE.value], both, within=60
    )
    assert both(records)
