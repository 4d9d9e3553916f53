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

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from notification_clinic import STAFF, Stalling, email_of, open_clinic, register
from prometheus_client import CollectorRegistry

from clinic.devstack.components import Infrastructure
from clinic.devstack.sinks import Sinks
from clinic.devstack.testing import (
    NO_QUIET_HOURS,
    RunningService,
    command,
    days_ahead,
    read_topics,
    wait_caught_up,
)
from clinic.events import Topic
from clinic.notification.dispatcher import Dispatcher, DispatchMetrics, Policy
from clinic.notification.links import Signer
from clinic.notification.mail import EmailChannel, SmtpConfig
from clinic.notification.sms import SmsChannel, SmsConfig
from clinic.platform.database import Database

VISITS = 4


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


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
        **NO_QUIET_HOURS,
        NOTIFICATION_CONSUMER_LAG_INTERVAL_SECONDS="1",
    )  # fmt: skip
    # A new group reads the broker from its start: the earlier tests' events first.
    wait_caught_up(notification.url, within=300)
    b = httpx.Client(base_url=booking.url, timeout=30, headers=STAFF)
    plan = [{"before_minutes": 72 * 60, "channel": "email"},
            {"before_minutes": 24 * 60, "channel": "sms"}]  # fmt: skip
    clinic = open_clinic(b, "Praxis Süd", reminder_plan=plan)
    start = days_ahead(4)
    for n in range(VISITS):
        patient = register(b, clinic, f"Pat{n}", phone=f"+4915200000{n:02d}")
        at = start + dt.timedelta(minutes=30 * n)
        command(b, f"{clinic.base}/appointments", {
            "appointment_type_id": clinic.kind, "location_id": clinic.location,
            "patient_id": patient, "start": at.isoformat()})  # fmt: skip

    database = Database(infrastructure.database_url, schema, "notification-test", 4)
    await database.pool.open(wait=True)

    async def planned() -> Counter[tuple[str, str]]:
        """This clinic's messages by kind and status (the broker also carries other tests'
        clinics, which notification serves too)."""
        async with database.pool.connection() as conn:
            try:
                cursor = await conn.execute(
                    "SELECT kind, status FROM messages WHERE organization_id = %s", [clinic.org]
                )
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
        await asyncio.sleep(0.2)  # what it sent before hanging is recorded
        round_.cancel()  # killed mid-round
        with pytest.raises(asyncio.CancelledError):
            await round_
        held = (await planned())[("confirmation", "sending")]
        await survivor.dispatch_due()
        assert (await planned())[("confirmation", "sending")] == held  # leased to the dead one
        clock.now += Policy().lease
        await survivor.dispatch_due()
        assert (await planned())[("confirmation", "sent")] == VISITS
        for _ in range(100):  # the redelivered events reach the consumer, which drops them
            if duplicates(notification.url) >= len(records):
                break
            await asyncio.sleep(0.1)
        assert duplicates(notification.url) >= len(records)
        await survivor.dispatch_due()
        assert (await planned())[("confirmation", "sent")] == VISITS

        last = start + dt.timedelta(minutes=30 * (VISITS - 1))
        clock.now = start - dt.timedelta(hours=72, seconds=1)
        await survivor.dispatch_due()
        assert (await planned())[("reminder", "sent")] == 0  # not before its time
        clock.now = last - dt.timedelta(hours=72)
        await survivor.dispatch_due()
        assert (await planned())[("reminder", "sent")] == VISITS  # the 72-hour emails
        clock.now = last - dt.timedelta(hours=24)
        await survivor.dispatch_due()
        await survivor.dispatch_due()
        assert (await planned()) == Counter({("confirmation", "sent"): VISITS,
                                             ("reminder", "sent"): 2 * VISITS})  # fmt: skip
    finally:
        await doomed.stop()
        await survivor.stop()
        await database.close()

    ours = [email_of(clinic, f"Pat{n}") for n in range(VISITS)]
    ids = Counter(str(r.message["Message-ID"]) for r in sinks.mail.received
                  if r.recipients[0] in ours)  # fmt: skip
    assert len(ids) == 2 * VISITS
    assert set(ids.values()) == {1}
    phones = [f"+4915200000{n:02d}" for n in range(VISITS)]
    assert sorted(m.to for m in sinks.sms.messages if m.to in phones) == phones
