"""Notification: messages dispatched per second against the bare protocol loop, and the time
from a booking to its confirmation leaving.

Run with ``make bench``. Prints, side by side in one run, against the local mail and SMS
sinks (one process, as ``make up`` runs them):
- email: the dispatcher (claim from PostgreSQL, write from the templates with its calendar
  entry and signed links, send over pooled SMTP connections, record each outcome) against a
  bare ``aiosmtplib`` loop sending ready-made messages of the same size over one connection;
- SMS: the dispatcher against a bare ``httpx`` loop posting the same form to the sink's API;
  target: the dispatcher reaches at least half of the bare loop;
- booked-to-confirmation-sent p50/p99: booking's 201 to the SMTP server taking the
  confirmation, through the relay, Kafka, the projection, planning and the dispatcher.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services" / "notification" / "tests"))

from notification_clinic import STAFF, open_clinic, register
from notification_history import Clinic

from clinic.devstack.components import free_port
from clinic.devstack.infra import Ladder
from clinic.devstack.testing import RunningService, command, wait_caught_up
from clinic.events import appointments as appt
from clinic.events import patients as pat
from clinic.events import reference as ref
from clinic.notification.channels import Outgoing
from clinic.notification.consumer import ProjectionWriter
from clinic.notification.dispatcher import Dispatcher, DispatchMetrics, Policy
from clinic.notification.links import Signer
from clinic.notification.mail import EmailChannel, SmtpConfig, compose
from clinic.notification.planning import QuietHours
from clinic.notification.sms import SmsChannel, SmsConfig
from clinic.notification.store import DDL
from clinic.platform.consumer import CONSUMER_DDL
from clinic.platform.database import Database

ROOT = Path(__file__).resolve().parents[1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def seed(database: Database, count: int, channel: str) -> dt.datetime:
    """``count`` booked appointments of as many patients, each with its confirmation due."""
    clinic = Clinic()
    clinic.at = dt.datetime.now(dt.UTC)
    clinic.reference()
    fields = clinic.type_fields("Check-up") | {"reminder_plan": ()}
    clinic.wrap(clinic.kind, ref.AppointmentTypeUpdated(**fields))
    start = clinic.at + dt.timedelta(days=3)
    for n in range(count):
        pid, aid = uuid.uuid4(), uuid.uuid4()
        record = clinic.record(n).model_copy(
            update={
                "given_name": f"Patient {n}",
                "contacts": (
                    pat.ContactPoint(system="email", value=f"p{n}@example.org"),
                    pat.ContactPoint(system="phone", value=f"+49151{n:07d}"),
                ),
                "preferred_channel": channel,
                "consent": pat.Consent(sms=True, email=True),
            }
        )
        clinic.wrap(pid, pat.PatientRegistered(patient_id=pid, patient=record))
        clinic.wrap(
            aid,
            appt.AppointmentBooked(
                appointment_id=aid, location_id=clinic.location, appointment_type_id=clinic.kind,
                patient_id=pid, start=start, end=start + dt.timedelta(minutes=30),
                participants=(),
            ),
        )  # fmt: skip
    writer = ProjectionWriter(CollectorRegistry(), QuietHours(dt.time(0), dt.time(0)))
    async with database.pool.connection() as conn, conn.transaction():
        await writer.write_many(conn, clinic.events)
    return clinic.at


async def dispatcher_rate(
    database: Database, sinks: RunningService, smtp_port: int, count: int, channel: str
) -> float:
    now = await seed(database, count, channel)
    dispatcher = Dispatcher(
        database,
        {
            "email": EmailChannel(
                SmtpConfig("127.0.0.1", smtp_port, "noreply@clinic.example", starttls=False)
            ),
            "sms": SmsChannel(SmsConfig(sinks.url, "AClocal", "local-sms-token", "+15550001")),
        },
        Signer("bench-secret-of-enough-length"),
        "http://127.0.0.1:8083",
        DispatchMetrics(CollectorRegistry()),
        Policy(batch_size=200, rate_per_minute=1_000_000),
        clock=lambda: now,
    )
    started = time.perf_counter()
    sent = 0
    while claimed := await dispatcher.dispatch_due():
        sent += claimed
    elapsed = time.perf_counter() - started
    await dispatcher.stop()
    async with database.pool.connection() as conn:
        cursor = await conn.execute("SELECT status, count(*) FROM messages GROUP BY status")
        statuses = dict(await cursor.fetchall())
    assert statuses == {"sent": count}, statuses
    return count / elapsed


def sample_mail() -> Any:
    outgoing = Outgoing(
        message_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        organization="Charité",
        channel="email",
        address="p@example.org",
        subject="Your appointment on Friday, 12 March 2027 at 10:00 is booked",
        text="Hello Ana,\n\nyour appointment is booked: Check-up on Friday at Mitte.\n\n" * 4,
        ics=b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + b"X" * 600 + b"\r\nEND:VCALENDAR\r\n",
        unsubscribe_url="http://127.0.0.1:8083/unsubscribe/" + "A" * 94,
    )
    return compose(outgoing, "noreply@clinic.example")


async def bare_smtp_rate(smtp_port: int, count: int) -> float:
    mail = sample_mail()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False)
    await client.connect()
    started = time.perf_counter()
    for _ in range(count):
        await client.send_message(mail)
    elapsed = time.perf_counter() - started
    await client.quit()
    return count / elapsed


async def bare_sms_rate(sinks: RunningService, count: int) -> float:
    path = "/2010-04-01/Accounts/AClocal/Messages.json"
    async with httpx.AsyncClient(base_url=sinks.url, auth=("AClocal", "local-sms-token")) as http:
        started = time.perf_counter()
        for n in range(count):
            form = {"To": f"+49152{n:07d}", "From": "+15550001", "Body": "Booked: Check-up " * 5}
            response = await http.post(path, data=form)
            assert response.status_code == 201
        return count / (time.perf_counter() - started)


def booked_to_sent(infra: Any, sinks: RunningService, smtp_port: int, samples: int) -> list[float]:
    env = infra.environment()
    schema = f"ntbench_{uuid.uuid4().hex[:6]}"
    booking = RunningService(
        "clinic.booking",
        {**env, "BOOKING_DATABASE_SCHEMA": f"{schema}_bk", "BOOKING_LOAD_DEMO_DATA": "false"},
        "BOOKING_",
    ).start()
    notification = RunningService(
        "clinic.notification",
        {**env, "NOTIFICATION_DATABASE_SCHEMA": f"{schema}_nt",
         "NOTIFICATION_CONSUMER_GROUP": f"notification-{schema}",
         "NOTIFICATION_CONSUMER_LAG_INTERVAL_SECONDS": "1",
         "NOTIFICATION_QUIET_HOURS_START": "00:00", "NOTIFICATION_QUIET_HOURS_END": "00:00",
         "NOTIFICATION_SMTP_PORT": str(smtp_port), "NOTIFICATION_SMS_BASE_URL": sinks.url},
        "NOTIFICATION_",
    ).start()  # fmt: skip
    try:
        wait_caught_up(notification.url)  # what earlier benchmarks left on the topics
        b = httpx.Client(base_url=booking.url, timeout=30, headers=STAFF)
        clinic = open_clinic(b, "Bench Mitte", minutes=10)
        base, kind, location = clinic.base, clinic.kind, clinic.location
        patients = [register(b, clinic, f"B{n}") for n in range(samples)]
        first = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(
            hour=7, minute=0, second=0, microsecond=0
        )
        booked: dict[str, float] = {}
        for n, patient in enumerate(patients):  # 60 visits a day, 08:00 to 18:00 in Berlin
            start = first + dt.timedelta(days=n // 60, minutes=10 * (n % 60))
            body = {"appointment_type_id": kind, "location_id": location, "patient_id": patient,
                    "start": start.isoformat()}  # fmt: skip
            aid = command(b, f"{base}/appointments", body)["id"]
            booked[aid] = time.time()
            time.sleep(0.05)
        n = httpx.Client(base_url=notification.url, timeout=30)
        delays: list[float] = []
        deadline = time.monotonic() + 60
        pending = dict(booked)
        while pending and time.monotonic() < deadline:
            for aid in list(pending):
                history = n.get(f"{base}/appointments/{aid}/messages")
                if history.status_code != 200:
                    continue
                sent = [m for m in history.json()["messages"] if m["sent_at"]]
                if sent:
                    at = dt.datetime.fromisoformat(sent[0]["sent_at"]).timestamp()
                    delays.append((at - pending.pop(aid)) * 1000)
            time.sleep(0.2)
        assert not pending, f"{len(pending)} confirmations not sent within 60 s"
        return delays
    finally:
        notification.stop()
        booking.stop()


async def rates(infra: Any, sinks: RunningService, smtp_port: int, count: int) -> dict[str, float]:
    figures = {}
    for channel in ("email", "sms"):
        schema = f"ntbench_{uuid.uuid4().hex[:8]}"
        database = Database(infra.database_url, schema, "notification-bench", 8)
        await database.migrate([*CONSUMER_DDL, *DDL])
        await database.pool.open(wait=True)
        try:
            figures[channel] = await dispatcher_rate(database, sinks, smtp_port, count, channel)
        finally:
            await database.close()
    figures["bare email"] = await bare_smtp_rate(smtp_port, count)
    figures["bare sms"] = await bare_sms_rate(sinks, count)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=100)
    args, _ = parser.parse_known_args()
    infra = Ladder(ROOT / ".local" / "bench" / "infra").up()
    print(f"\nMeasured on {infra.describe()}")
    smtp_port = free_port()
    with tempfile.TemporaryDirectory() as maildir:
        sinks = RunningService(
            "clinic.devstack.sinks",
            {"SINKS_MAILDIR": maildir, "SINKS_SMTP_PORT": str(smtp_port)},
            "SINKS_",
        ).start()
        try:
            figures = asyncio.run(rates(infra, sinks, smtp_port, args.messages))
            delays = booked_to_sent(infra, sinks, smtp_port, args.samples)
        finally:
            sinks.stop()
    print(
        f"\nNotification benchmark: {args.messages} messages per run, local sinks (one process)\n"
    )
    print(f"{'messages per second':<48} {'ours':>8} {'bare':>8}  ratio (target >= 0.5)")
    for channel, bare in (("email", "bare email"), ("sms", "bare sms")):
        ratio = figures[channel] / figures[bare]
        print(f"  {channel + ' (dispatcher vs bare loop)':<46} {figures[channel]:>8.0f} "
              f"{figures[bare]:>8.0f}  {ratio:.2f}")  # fmt: skip
    print(f"\n{'booked to confirmation sent':<48} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"  {len(delays)} bookings, one every 50 ms{'':<21} {pct(delays, 0.5):>8.0f} "
          f"{pct(delays, 0.99):>8.0f}   (mean {statistics.mean(delays):.0f})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
