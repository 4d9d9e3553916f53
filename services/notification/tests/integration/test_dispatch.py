"""The dispatcher on real PostgreSQL, a real SMTP server and the SMS sink, driven by a clock
the test moves (no sleeps): each message reaches its patient once and at its time, across
redelivery, two instances and one killed mid-round; failures are retried or recorded;
organisations are held to their rate; opt-outs and started appointments stop messages."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections import Counter
from typing import Any

import pytest
from notification_clinic import Stalling
from notification_history import Clinic
from prometheus_client import CollectorRegistry

from clinic.devstack.sinks import Sinks
from clinic.events import Envelope
from clinic.events import appointments as appt
from clinic.events import patients as pat
from clinic.events import reference as ref
from clinic.notification.channels import Outcome, Outgoing
from clinic.notification.consumer import ProjectionWriter
from clinic.notification.dispatcher import Dispatcher, DispatchMetrics, Policy
from clinic.notification.links import Signer
from clinic.notification.mail import EmailChannel, SmtpConfig
from clinic.notification.planning import QuietHours
from clinic.notification.sms import SmsChannel, SmsConfig
from clinic.platform.database import Database

SECRET = "a-test-secret-of-enough-length"
START = dt.datetime(2027, 3, 12, 9, tzinfo=dt.UTC)  # Friday 10:00 in Berlin
BOOKED = START - dt.timedelta(days=6)


class Setting:
    """A clinic whose events reach notification's tables at the time ``at``."""

    def __init__(self, database: Database, sinks: Sinks, **type_changes: Any) -> None:
        self.database = database
        self.sinks = sinks
        self.clinic = Clinic()
        self.clinic.at = BOOKED
        self.writer = ProjectionWriter(CollectorRegistry(), QuietHours(), clock=self.now)
        self.clinic.reference()
        if type_changes:
            fields = self.clinic.type_fields("Check-up") | type_changes
            self.clinic.wrap(self.clinic.kind, ref.AppointmentTypeUpdated(**fields))

    def now(self) -> dt.datetime:
        return self.clinic.at

    async def deliver(self, events: list[Envelope] | None = None) -> None:
        events = self.clinic.events if events is None else events
        async with self.database.pool.connection() as conn, conn.transaction():
            await self.writer.write_many(conn, events)

    def patient(self, n: int, **changes: Any) -> uuid.UUID:
        pid = uuid.uuid4()
        record = self.clinic.record(n).model_copy(
            update={
                "given_name": f"Ana{n}",
                "contacts": (
                    pat.ContactPoint(system="email", value=f"ana{n}@example.org"),
                    pat.ContactPoint(system="phone", value=f"+49151{n:07d}"),
                ),
                "consent": pat.Consent(sms=True, email=True),
                "language": "en",
                **changes,
            }
        )
        self.clinic.wrap(pid, pat.PatientRegistered(patient_id=pid, patient=record))
        return pid

    def book(self, patient: uuid.UUID, start: dt.datetime = START) -> uuid.UUID:
        aid = uuid.uuid4()
        self.clinic.wrap(
            aid,
            appt.AppointmentBooked(
                appointment_id=aid,
                location_id=self.clinic.location,
                appointment_type_id=self.clinic.kind,
                patient_id=patient,
                start=start,
                end=start + dt.timedelta(minutes=30),
                participants=(),
            ),
        )
        return aid

    async def bookings_by_email(self, count: int) -> None:
        """``count`` patients who prefer email, each with a booking, delivered."""
        for n in range(count):
            self.book(self.patient(n, preferred_channel="email"))
        await self.deliver()

    def dispatcher(self, name: str, database: Database | None = None, **policy: Any) -> Dispatcher:
        return Dispatcher(
            database or self.database,
            {
                "email": EmailChannel(
                    SmtpConfig(
                        "127.0.0.1",
                        self.sinks.smtp_port,
                        "Clinic <noreply@clinic.test>",
                        starttls=False,
                        unsubscribe_mailto="unsubscribe@clinic.test",
                    )
                ),
                "sms": SmsChannel(
                    SmsConfig(self.sinks.sms_base_url, "AClocal", "local-sms-token", "+15550001")
                ),
            },
            Signer(SECRET),
            "http://127.0.0.1:9/notification",
            DispatchMetrics(CollectorRegistry()),
            Policy(**policy),
            clock=self.now,
            rng=random.Random(7),
            name=name,
        )

    async def statuses(self, aid: uuid.UUID | None = None) -> list[tuple[Any, ...]]:
        async with self.database.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT kind, channel, status, attempts, reason FROM messages "
                "WHERE organization_id = %s AND (%s::uuid IS NULL OR appointment_id = %s) "
                "ORDER BY due_at, kind",
                [self.clinic.org, aid, aid],
            )
            return [tuple(r) for r in await cursor.fetchall()]


def counted(metric: Any, **labels: str) -> float:
    """A counter's value for these labels (0 before the first)."""
    return sum(
        sample.value
        for family in metric.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
        and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def mail_ids(sinks: Sinks) -> Counter[str]:
    return Counter(str(r.message["Message-ID"]) for r in sinks.mail.received)


async def test_a_booking_gets_its_confirmation_and_each_reminder_at_its_time_once(
    database: Database, sinks: Sinks
) -> None:
    setting = Setting(database, sinks)
    patient = setting.patient(1, preferred_channel="email")
    aid = setting.book(patient)
    await setting.deliver()
    await setting.deliver()  # redelivered: nothing new is planned
    dispatcher = setting.dispatcher("one")
    try:
        assert await dispatcher.dispatch_due() == 1
        [confirmation] = sinks.mail.received
        mail = confirmation.message
        assert confirmation.recipients == ["ana1@example.org"]
        assert "is booked" in mail["Subject"]
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "<mailto:unsubscribe@clinic.test?subject=unsubscribe>" in mail["List-Unsubscribe"]
        assert "http://127.0.0.1:9/notification/unsubscribe/" in mail["List-Unsubscribe"]
        [ics] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
        assert b"UID:" + str(aid).encode() in ics.get_payload(decode=True)
        assert "Invalidenstr. 1" in mail.get_body(("plain",)).get_content()
        assert "/notification/links/" in mail.get_body(("plain",)).get_content()

        # Nothing more until each reminder's time; then each once (72 h email, 24 h SMS).
        setting.clinic.at = START - dt.timedelta(hours=72, seconds=1)
        assert await dispatcher.dispatch_due() == 0
        setting.clinic.at = START - dt.timedelta(hours=72)
        assert await dispatcher.dispatch_due() == 1
        assert "Reminder" in sinks.mail.received[-1].message["Subject"]
        setting.clinic.at = START - dt.timedelta(hours=24)
        await setting.deliver()  # redelivered late: what was sent stays sent
        assert await dispatcher.dispatch_due() == 1
        assert await dispatcher.dispatch_due() == 0
        [sms] = sinks.sms.messages
        assert sms.to == "+491510000001"
        assert "Reply C to confirm" in sms.body
        assert len(sinks.mail.received) == 2
        assert set(mail_ids(sinks).values()) == {1}
        assert await setting.statuses(aid) == [
            ("confirmation", "email", "sent", 1, None),
            ("reminder", "email", "sent", 1, None),
            ("reminder", "sms", "sent", 1, None),
        ]
    finally:
        await dispatcher.stop()


async def test_an_instance_killed_mid_round_leaves_its_unsent_claims_to_another_and_none_twice(
    database: Database, sinks: Sinks
) -> None:
    setting = Setting(database, sinks, reminder_plan=())
    await setting.bookings_by_email(30)
    doomed, survivor = setting.dispatcher("doomed"), setting.dispatcher("survivor")
    stalling = Stalling(doomed.channels["email"], allowed=10)
    doomed.channels["email"] = stalling
    try:
        round_ = asyncio.create_task(doomed.dispatch_due())
        await stalling.stuck.wait()
        for _ in range(500):  # the ten sends under way are recorded
            if [s[2] for s in await setting.statuses()].count("sent") == 10:
                break
            await asyncio.sleep(0.01)
        round_.cancel()  # killed: no outcome recorded for what it still held
        with pytest.raises(asyncio.CancelledError):
            await round_
        # Its claims are leased: the other instance leaves them until the lease lapses.
        assert await survivor.dispatch_due() == 0
        setting.clinic.at = BOOKED + Policy().lease
        assert await survivor.dispatch_due() == 20
        assert await survivor.dispatch_due() == 0
        assert len(sinks.mail.received) == 30
        assert set(mail_ids(sinks).values()) == {1}
        assert {s[2] for s in await setting.statuses()} == {"sent"}
    finally:
        await doomed.stop()
        await survivor.stop()


class LosingTheDatabase:
    """A channel whose provider takes each message, after which the dispatcher's database
    connections are cut (PostgreSQL restarting, or failing over) before it records it."""

    def __init__(self, inner: Any, database: Database, application_name: str) -> None:
        self.inner, self.database, self.name = inner, database, inner.name
        self.application_name = application_name

    async def send(self, message: Outgoing) -> Outcome:
        outcome: Outcome = await self.inner.send(message)
        async with self.database.pool.connection() as conn:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                [self.application_name],
            )
        return outcome

    async def close(self) -> None:
        await self.inner.close()


async def test_a_message_sent_as_the_database_went_away_is_recorded_sent_and_never_sent_again(
    database: Database, sinks: Sinks
) -> None:
    setting = Setting(database, sinks, reminder_plan=())
    await setting.bookings_by_email(3)
    # The dispatcher's own pool, whose connections the channel cuts after each send.
    own = Database(database.url, database.schema, "notification-losing-its-database", 2)
    await own.pool.open(wait=True)
    dispatcher = setting.dispatcher("cut-off", own)
    dispatcher.channels["email"] = LosingTheDatabase(
        dispatcher.channels["email"], database, "notification-losing-its-database"
    )
    try:
        assert await dispatcher.dispatch_due() == 3
        assert {s[2:4] for s in await setting.statuses()} == {("sent", 1)}
        # Before, each stayed "sending" and went out again once its lease lapsed.
        setting.clinic.at = BOOKED + Policy().lease
        assert await dispatcher.dispatch_due() == 0
        assert len(sinks.mail.received) == 3
        assert set(mail_ids(sinks).values()) == {1}
    finally:
        await dispatcher.stop()
        await own.close()


async def test_two_instances_at_once_send_every_message_exactly_once(
    database: Database, sinks: Sinks
) -> None:
    setting = Setting(database, sinks, reminder_plan=())
    for n in range(40):
        channel = "sms" if n % 2 else "email"
        setting.book(setting.patient(n, preferred_channel=channel))
    await setting.deliver()
    one, two = setting.dispatcher("one", batch_size=7), setting.dispatcher("two", batch_size=7)
    try:
        while sum(await asyncio.gather(one.dispatch_due(), two.dispatch_due())):
            pass
        assert len(sinks.mail.received) == 20
        assert set(mail_ids(sinks).values()) == {1}
        assert len(sinks.sms.messages) == 20
        assert len({m.to for m in sinks.sms.messages}) == 20
        assert {s[2:4] for s in await setting.statuses()} == {("sent", 1)}
    finally:
        await one.stop()
        await two.stop()


async def test_a_temporary_refusal_is_retried_after_a_backoff_and_a_permanent_one_is_recorded(
    database: Database, sinks: Sinks
) -> None:
    setting = Setting(database, sinks, reminder_plan=())
    busy = setting.book(setting.patient(1, preferred_channel="email"))
    gone = setting.book(setting.patient(2, preferred_channel="email"))
    invalid = setting.book(
        setting.patient(
            3,
            preferred_channel="sms",
            contacts=(pat.ContactPoint(system="phone", value="+15005550001"),),
        )
    )
    await setting.deliver()
    sinks.mail.refuse["ana1@example.org"] = "451 4.2.1 Mailbox busy, try later"
    sinks.mail.refuse["ana2@example.org"] = "550 5.1.1 No such user"
    dispatcher = setting.dispatcher("one", backoff_base=dt.timedelta(seconds=60), max_attempts=3)
    try:
        assert await dispatcher.dispatch_due() == 3
        assert await setting.statuses(busy) == [
            ("confirmation", "email", "pending", 1, "SMTP 451 4.2.1 Mailbox busy, try later")
        ]
        assert await setting.statuses(gone) == [
            ("confirmation", "email", "failed", 1, "SMTP 550 5.1.1 No such user")
        ]
        # What ops see (the "SMTP failing" alert reads this).
        outcomes = dispatcher.metrics.outcomes
        assert counted(outcomes, channel="email", kind="confirmation", outcome="failed") == 1
        assert counted(outcomes, channel="email", kind="confirmation", outcome="retried") == 1
        [(*_, reason)] = await setting.statuses(invalid)
        assert "code 21211" in reason
        async with database.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT retry_at - %s FROM messages WHERE appointment_id = %s", [BOOKED, busy]
            )
            [(wait,)] = await cursor.fetchall()
        assert dt.timedelta(seconds=30) <= wait <= dt.timedelta(seconds=60)  # jittered
        assert await dispatcher.dispatch_due() == 0  # not before its time
        setting.clinic.at = BOOKED + wait
        del sinks.mail.refuse["ana1@example.org"]
        assert await dispatcher.dispatch_due() == 1
        assert (await setting.statuses(busy))[0][2:4] == ("sent", 2)
        assert [r.recipients for r in sinks.mail.received] == [["ana1@example.org"]]
    finally:
        await dispatcher.stop()


async def test_a_message_that_keeps_failing_temporarily_fails_after_its_last_attempt(
    database: Database, sinks: Sinks
) -> None:
    setting = Setting(database, sinks, reminder_plan=())
    aid = setting.book(setting.patient(1, preferred_channel="email"))
    await setting.deliver()
    sinks.mail.refuse["ana1@example.org"] = "421 4.3.2 Service shutting down"
    dispatcher = setting.dispatcher("one", max_attempts=3)
    try:
        for _ in range(3):
            assert await dispatcher.dispatch_due() == 1
            setting.clinic.at += Policy().backoff_cap
        assert await dispatcher.dispatch_due() == 0
        [(_, _, status, attempts, reason)] = await setting.statuses(aid)
        assert (status, attempts) == ("failed", 3)
        assert reason.startswith("gave up after 3 attempts: SMTP 421")
    finally:
        await dispatcher.stop()


async def test_an_organisation_is_held_to_its_rate_and_does_not_hold_up_another(
    database: Database, sinks: Sinks
) -> None:
    busy, quiet = Setting(database, sinks, reminder_plan=()), Setting(database, sinks)
    quiet.clinic.at = busy.clinic.at = BOOKED.replace(second=30)
    for n in range(12):
        busy.book(busy.patient(n, preferred_channel="email"))
    for n in range(3):
        quiet.book(quiet.patient(100 + n, preferred_channel="sms"))
    await busy.deliver()
    await quiet.deliver()
    dispatcher = busy.dispatcher("one", rate_per_minute=5, batch_size=50)
    try:
        assert await dispatcher.dispatch_due() == 8  # 5 of the busy one's, all 3 of the other
        assert await dispatcher.dispatch_due() == 0  # the same minute: no more
        busy.clinic.at += dt.timedelta(seconds=30)  # the next minute
        assert await dispatcher.dispatch_due() == 5
        busy.clinic.at += dt.timedelta(minutes=1)
        assert await dispatcher.dispatch_due() == 2
        assert len(sinks.mail.received) == 12
        assert len(sinks.sms.messages) == 3
    finally:
        await dispatcher.stop()


async def test_an_opted_out_address_and_an_appointment_already_started_get_nothing(
    database: Database, sinks: Sinks
) -> None:
    setting = Setting(database, sinks, reminder_plan=())
    stopped = setting.book(setting.patient(1, preferred_channel="sms"))
    late = setting.book(
        setting.patient(2, preferred_channel="email"), start=BOOKED + dt.timedelta(minutes=5)
    )
    await setting.deliver()
    async with database.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO opt_outs VALUES ('sms', '+491510000001', %s, 'STOP by SMS')", [BOOKED]
        )
    setting.clinic.at = BOOKED + dt.timedelta(minutes=10)  # the dispatcher was down meanwhile
    dispatcher = setting.dispatcher("one")
    try:
        assert await dispatcher.dispatch_due() == 0
        assert await setting.statuses(stopped) == [
            ("confirmation", "sms", "skipped", 0, "the address opted out")
        ]
        assert await setting.statuses(late) == [
            ("confirmation", "email", "expired", 0, "the appointment started before it went out")
        ]
        assert sinks.sms.messages == []
        assert sinks.mail.received == []
    finally:
        await dispatcher.stop()


async def test_a_reminder_due_at_night_waits_for_quiet_hours_and_one_across_dst_keeps_local_time(
    database: Database, sinks: Sinks
) -> None:
    # Sunday 2027-03-28 02:00 Berlin moves to 03:00. A 07:30 visit on Monday the 29th with a
    # reminder 5 hours before (02:30 local, quiet) and one 24 h before (Sunday 07:30 local,
    # quiet too: it waits to 08:00 local, 06:00 UTC, not 07:00 UTC as before the change).
    monday = dt.datetime(2027, 3, 29, 5, 30, tzinfo=dt.UTC)  # 07:30 CEST
    setting = Setting(
        database,
        sinks,
        reminder_plan=(
            ref.ReminderSpec(before_minutes=24 * 60, channel="sms"),
            ref.ReminderSpec(before_minutes=5 * 60, channel="sms"),
        ),
    )
    setting.clinic.at = dt.datetime(2027, 3, 20, 12, tzinfo=dt.UTC)
    setting.book(setting.patient(1, preferred_channel="email"), start=monday)
    await setting.deliver()
    dispatcher = setting.dispatcher("one")
    try:
        assert await dispatcher.dispatch_due() == 1  # the confirmation
        setting.clinic.at = dt.datetime(2027, 3, 28, 5, 59, tzinfo=dt.UTC)  # 07:59 CEST
        assert await dispatcher.dispatch_due() == 0
        setting.clinic.at = dt.datetime(2027, 3, 28, 6, tzinfo=dt.UTC)  # 08:00 CEST
        assert await dispatcher.dispatch_due() == 1
        setting.clinic.at = dt.datetime(2027, 3, 29, 0, 30, tzinfo=dt.UTC)  # 02:30 CEST
        assert await dispatcher.dispatch_due() == 0  # quiet: it waits for 08:00, after the
        setting.clinic.at = monday  # visit begins, so it was never planned
        assert await dispatcher.dispatch_due() == 0
        assert len(sinks.sms.messages) == 1
    finally:
        await dispatcher.stop()
