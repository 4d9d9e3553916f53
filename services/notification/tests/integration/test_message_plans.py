"""Each appointment's messages in PostgreSQL follow its plan as booking's events arrive: a
booking stores its confirmation and reminders once however often its events come; a move
supersedes what was pending and plans the new time; a cancellation tells the patient and
leaves what was sent alone; a patient record arriving after the appointment, or a consent
withdrawn, changes what is planned."""

import datetime as dt
import uuid

from notification_history import NOW, START, Clinic, time_of
from prometheus_client import CollectorRegistry

from clinic.events import Envelope
from clinic.events import appointments as appt
from clinic.events import patients as pat
from clinic.notification.consumer import ProjectionWriter
from clinic.notification.planning import QuietHours
from clinic.platform.database import Database


async def messages(database: Database, aid: uuid.UUID) -> list[tuple[str, str, str | None, str]]:
    async with database.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT kind, status, channel, to_char(due_at AT TIME ZONE 'Europe/Berlin', "
            "'DD HH24:MI') FROM messages WHERE appointment_id = %s ORDER BY due_at, kind, status",
            [aid],
        )
        return [tuple(r) for r in await cursor.fetchall()]  # type: ignore[misc]


async def test_an_appointments_messages_follow_its_plan_through_booking_move_and_cancellation(
    database: Database,
) -> None:
    clinic = Clinic()
    clinic.reference()
    patient = uuid.uuid4()
    record = clinic.record(2).model_copy(
        update={
            "preferred_channel": "sms",
            "contacts": (
                pat.ContactPoint(system="email", value="ana@example.org"),
                pat.ContactPoint(system="phone", value="+4915100000"),
            ),
            "consent": pat.Consent(sms=True, email=True),
        }
    )
    aid = uuid.uuid4()
    when = time_of(aid, clinic.location, clinic.kind, patient, START)
    writer = ProjectionWriter(CollectorRegistry(), QuietHours(), clock=lambda: clinic.at)

    async def deliver(*events: Envelope) -> None:
        async with database.pool.connection() as conn, conn.transaction():
            await writer.write_many(conn, list(events))

    # 1. The appointments topic runs ahead: booked before its patient is known, nothing yet.
    booked = clinic.wrap(aid, appt.AppointmentBooked(**when))
    await deliver(*clinic.events)
    assert await messages(database, aid) == []

    # 2. The patient arrives: confirmation and both reminders (72 h email, 24 h SMS).
    registered = clinic.wrap(patient, pat.PatientRegistered(patient_id=patient, patient=record))
    await deliver(registered)
    planned = [
        ("confirmation", "pending", "sms", "06 10:00"),
        ("reminder", "pending", "email", "09 10:00"),
        ("reminder", "pending", "sms", "11 10:00"),
    ]
    assert await messages(database, aid) == planned

    # 3. Redelivered, the same events change nothing.
    await deliver(booked, registered)
    assert await messages(database, aid) == planned

    # 4. The confirmation goes out (the dispatcher's doing); then the visit moves a day on.
    async with database.pool.connection() as conn:
        await conn.execute(
            "UPDATE messages SET status = 'sent' "
            "WHERE appointment_id = %s AND kind = 'confirmation'",
            [aid],
        )
    clinic.at = NOW + dt.timedelta(days=1)
    later = START + dt.timedelta(days=1)
    await deliver(
        clinic.wrap(
            aid,
            appt.AppointmentRescheduled(
                **(when | {"start": later, "end": later + dt.timedelta(minutes=30)}),
                previous_start=START,
                previous_end=START + dt.timedelta(minutes=30),
            ),
        )
    )
    assert await messages(database, aid) == [
        ("confirmation", "sent", "sms", "06 10:00"),
        ("rescheduled", "pending", "sms", "07 10:00"),
        ("reminder", "superseded", "email", "09 10:00"),
        ("reminder", "pending", "email", "10 10:00"),
        ("reminder", "superseded", "sms", "11 10:00"),
        ("reminder", "pending", "sms", "12 10:00"),
    ]

    # 5. The patient withdraws consent to SMS: what would go by SMS is skipped, with why.
    no_sms = record.model_copy(update={"consent": pat.Consent(sms=False, email=True)})
    await deliver(
        clinic.wrap(patient, pat.PatientPreferencesUpdated(patient_id=patient, patient=no_sms))
    )
    statuses = {(k, s, c) for k, s, c, _ in await messages(database, aid)}
    assert ("reminder", "skipped", "sms") in statuses
    assert ("rescheduled", "skipped", "sms") in statuses

    # 6. Cancelled: every unsent message superseded, the patient told, the sent one kept.
    clinic.at = NOW + dt.timedelta(days=2)
    await deliver(
        clinic.wrap(
            aid,
            appt.AppointmentCancelled(
                appointment_id=aid, cancelled_by=appt.CancelledBy("clinic"), reason="closed"
            ),
        )
    )
    rows = await messages(database, aid)
    assert ("confirmation", "sent", "sms", "06 10:00") in rows
    assert ("cancelled", "pending", "email", "08 10:00") not in rows  # SMS it would be: skipped
    assert [r for r in rows if r[0] == "cancelled"] == [("cancelled", "skipped", "sms", "08 10:00")]
    assert {r[1] for r in rows if r[0] in ("reminder", "rescheduled")} == {"superseded"}
