"""From booking's API through the relay, Kafka and notification's consumer (processes, as in
production) to the SMTP server and SMS sink, with the dispatchers driven by a clock the test
moves: each booking's confirmation and each planned reminder leaves at its time, exactly
once, although the appointment events are published a second time, two dispatcher instances
run, and one of them is killed in the middle of its round."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from clinic.devstack.components import Infrastructure
from clinic.devstack.sinks import Sinks
from clinic.devstack.testing import RunningService, command, read_topics
from clinic.events import Topic
from clinic.notification.channels import Outcome, Outgoing
from clinic.notification.dispatcher import Dispatcher, DispatchMetrics, Policy
from clinic.notification.links import Signer
from clinic.notification.mail import EmailChannel, SmtpConfig
from clinic.notification.sms import SmsChannel, SmsConfig
from clinic.platform.database import Database

STAFF = {"X-Actor-Id": "desk-1", "X-Actor-Role": "front_desk", "X-Actor-Channel": "front-desk"}
VISITS = 4


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


class Stalling:
    """Sends ``allowed`` messages, then hangs: the instance is killed there."""

    def __init__(self, inner: Any, allowed: int) -> None:
        self.inner, self.allowed, self.name = inner, allowed, inner.name
        self.stuck = asyncio.Event()

    async def send(self, message: Outgoing) -> Outcome:
        if self.allowed <= 0:
            self.stuck.set()
            await asyncio.Event().wait()
        self.allowed -= 1
        return await self.inner.send(message)

    async def close(self) -> None:
        await self.inner.close()


def duplicates(url: str) -> float:
    """Events notification's consumer received again and recognised (its /metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("projection_events_total{") and 'outcome="duplicate"' in line
    )


@pytest.fixture
async def sinks() -> AsyncIterator[Sinks]:
    running = await Sinks().start()
    yield running
    await running.stop()


async def test_each_message_leaves_once_at_its_time_across_redelivery_and_a_killed_instance(
    start_service: Callable[..., RunningService],
    infrastructure: Infrastructure,
    schema_name: str,
    sinks: Sinks,
) -> None:
    booking = start_service("clinic.booking", "BOOKING_", BOOKING_LOAD_DEMO_DATA="false")
    schema = f"{schema_name}_nt"
    notification = start_service(
        "clinic.notification", "NOTIFICATION_", schema=schema,
        NOTIFICATION_CONSUMER_GROUP=f"notification-{schema_name}",
        NOTIFICATION_DISPATCH_ENABLED="false", NOTIFICATION_OFFERS_ENABLED="false",
        NOTIFICATION_QUIET_HOURS_START="00:00", NOTIFICATION_QUIET_HOURS_END="00:00",
    )  # fmt: skip
    b = httpx.Client(base_url=booking.url, timeout=30, headers=STAFF)
    org = command(b, "/organizations", {"name": "Praxis Süd"})["id"]
    base = f"/organizations/{org}"
    location = command(b, f"{base}/locations", {"name": "Süd", "time_zone": "Europe/Berlin"})["id"]
    doctor = command(
        b, f"{base}/resources",
        {"category": "provider", "name": "Dr. S", "kind": "physician", "location_ids": [location]},
    )["id"]  # fmt: skip
    hours = [{"location_id": location, "weekday": d, "start": "00:00", "end": "23:59"}
             for d in range(7)]  # fmt: skip
    command(b, f"{base}/resources/{doctor}/schedule/weekly-hours", {"hours": hours}, "PUT")
    step = {"name": "visit", "duration_minutes": 30,
            "requirements": [{"role": "physician", "category": "provider"}]}  # fmt: skip
    plan = [{"before_minutes": 72 * 60, "channel": "email"}, {"before_minutes": 24 * 60,
            "channel": "sms"}]  # fmt: skip
    kind = command(b, f"{base}/appointment-types",
                   {"name": "Check-up", "steps": [step], "reminder_plan": plan})["id"]  # fmt: skip
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=4)).replace(
        minute=0, second=0, microsecond=0
    )
    for n in range(VISITS):
        patient = command(b, f"{base}/patients", {
            "given_name": f"Pat{n}", "family_name": "Süd", "birth_date": "1980-01-01",
            "contacts": [{"system": "email", "value": f"pat{n}@example.org"},
                         {"system": "phone", "value": f"+4915200000{n:02d}"}],
            "consent_email": True, "consent_sms": True})["id"]  # fmt: skip
        command(b, f"{base}/appointments", {
            "appointment_type_id": kind, "location_id": location, "patient_id": patient,
            "start": (start + dt.timedelta(minutes=30 * n)).isoformat()})  # fmt: skip

    database = Database(infrastructure.database_url, schema, "notification-test", 4)
    await database.pool.open(wait=True)

    async def planned() -> Counter[tuple[str, str]]:
        async with database.pool.connection() as conn:
            try:
                cursor = await conn.execute("SELECT kind, status FROM messages")
            except Exception:
                return Counter()
            return Counter((r[0], r[1]) for r in await cursor.fetchall())

    deadline = time.monotonic() + 30
    while (await planned())[("reminder", "pending")] < 2 * VISITS:
        assert time.monotonic() < deadline, await planned()
        await asyncio.sleep(0.2)

    # Kafka redelivers: the appointment events are published again, as a producer retrying
    # after a lost acknowledgement would.
    records = await read_topics(
        infrastructure.kafka_bootstrap_servers, [str(Topic.APPOINTMENTS)],
        lambda r: len(r) >= VISITS,
    )  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap_servers)
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(record.topic, record.value, key=record.key,
                                         headers=list(record.headers))  # fmt: skip
    finally:
        await producer.stop()

    clock = Clock()

    def instance(name: str) -> Dispatcher:
        return Dispatcher(
            database,
            {"email": EmailChannel(SmtpConfig("127.0.0.1", sinks.smtp_port, "noreply@c.test",
                                              starttls=False)),
             "sms": SmsChannel(SmsConfig(sinks.sms_base_url, "AClocal", "local-sms-token",
                                         "+15550001"))},
            Signer("a-test-secret-of-enough-length"), "http://127.0.0.1:9",
            DispatchMetrics(CollectorRegistry()), Policy(), clock=clock,
            rng=random.Random(3), name=name,
        )  # fmt: skip

    doomed, survivor = instance("doomed"), instance("survivor")
    stalling = Stalling(doomed.channels["email"], allowed=1)
    doomed.channels["email"] = stalling
    try:
        round_ = asyncio.create_task(doomed.dispatch_due())
        await stalling.stuck.wait()
        for _ in range(300):
            if (await planned())[("confirmation", "sent")] == 1:
                break
            await asyncio.sleep(0.01)
        round_.cancel()  # killed mid-round
        with pytest.raises(asyncio.CancelledError):
            await round_
        assert await survivor.dispatch_due() == 0  # its claims are leased to it
        clock.now += Policy().lease
        assert await survivor.dispatch_due() == VISITS - 1
        for _ in range(100):  # the redelivered events reach the consumer, which drops them
            if duplicates(notification.url) >= len(records):
                break
            await asyncio.sleep(0.1)
        assert duplicates(notification.url) >= len(records)
        assert await survivor.dispatch_due() == 0

        clock.now = start - dt.timedelta(hours=72, seconds=1)
        assert await survivor.dispatch_due() == 0  # not before its time
        clock.now = start + dt.timedelta(minutes=30 * (VISITS - 1)) - dt.timedelta(hours=72)
        assert await survivor.dispatch_due() == VISITS  # the 72-hour email reminders
        clock.now = start + dt.timedelta(minutes=30 * (VISITS - 1)) - dt.timedelta(hours=24)
        assert await survivor.dispatch_due() == VISITS  # the 24-hour SMS reminders
        assert await survivor.dispatch_due() == 0
    finally:
        await doomed.stop()
        await survivor.stop()
        await database.close()

    ids = Counter(str(r.message["Message-ID"]) for r in sinks.mail.received)
    assert len(ids) == 2 * VISITS
    assert set(ids.values()) == {1}
    assert sorted(m.to for m in sinks.sms.messages) == [
        f"+4915200000{n:02d}" for n in range(VISITS)
    ]
