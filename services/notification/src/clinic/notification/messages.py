"""The messages table: each appointment's planned messages reconciled with what exists, in
the consumer's transaction, after each batch.

Planning is pure (``planning``); here it meets the tables. For every appointment a batch
touched (its own events, or a change of its patient's record, its type's plan or its
location), the plan is made again and compared with the stored messages:
- a planned message not stored yet is inserted (``pending``, or ``skipped`` with the reason);
- one stored and not yet handed to a channel follows the plan (a new channel, address,
  language or due time), and comes back if it had been superseded;
- one stored, not yet sent and no longer planned is ``superseded`` (a move or cancellation
  supersedes every pending message of that appointment);
- one already sent, sending or failed is never touched;
- one to an address that opted out of its channel is ``skipped``.
Waitlist offers are the offerer's (``waitlist``), never reconciled here.
A message planned long after it was due (a rebuild, a consumer far behind) is stored as
``expired``, visible and never sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from clinic.notification import planning
from clinic.notification.planning import Planned, QuietHours
from clinic.platform.rows import Op, Upsert

DDL = [
    """CREATE TABLE IF NOT EXISTS messages (
        message_id uuid PRIMARY KEY, organization_id uuid NOT NULL, appointment_id uuid NOT NULL,
        patient_id uuid NOT NULL, kind text NOT NULL, channel text, address text,
        language text NOT NULL, due_at timestamptz NOT NULL, before_minutes integer,
        status text NOT NULL, reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE INDEX IF NOT EXISTS messages_due ON messages (due_at) WHERE status = 'pending'""",
    """CREATE INDEX IF NOT EXISTS messages_by_appointment ON messages (appointment_id)""",
]
OPEN = frozenset({"pending", "skipped", "superseded", "expired"})
"""Statuses a new plan may still change; the others belong to the dispatcher."""
OPTED_OUT = "the address opted out"
EVERYONE = "00000000-0000-0000-0000-000000000000"
"""The scope of an opt-out the address's owner sent (a STOP reply): every organisation."""
APPLIES = "(o.organization_id IS NULL OR o.organization_id = {org})"
"""An opt-out applies to a message of its organisation, and a STOP reply to every message."""
STALE = dt.timedelta(hours=1)
"""How long after its due time a message is still worth sending when first planned."""

PLAN_INPUTS = """
SELECT a.appointment_id, a.organization_id, a.patient_id, a.status, a.start_at, a.booked_at,
       a.moved_at, a.cancelled_at, a.cancelled_by, COALESCE(l.time_zone, 'UTC') AS zone,
       COALESCE(survivor.patient_id, p.patient_id) AS record_id,
       COALESCE(survivor.preferred_channel, p.preferred_channel) AS preferred_channel,
       COALESCE(survivor.language, p.language) AS language,
       COALESCE(survivor.consent_sms, p.consent_sms) AS consent_sms,
       COALESCE(survivor.consent_email, p.consent_email) AS consent_email,
       COALESCE(survivor.contacts, p.contacts) AS contacts,
       CASE WHEN survivor.patient_id IS NULL THEN p.time_zone ELSE survivor.time_zone END
           AS patient_zone,
       t.reminder_plan
FROM appointments a
LEFT JOIN locations l ON l.location_id = a.location_id
LEFT JOIN patients p ON p.patient_id = a.patient_id
LEFT JOIN patients survivor ON survivor.patient_id = p.merged_into
LEFT JOIN appointment_types t ON t.appointment_type_id = a.appointment_type_id
WHERE a.appointment_id = ANY(%s)
"""
"""What planning needs of each appointment; a merged duplicate's messages go to the
record it was merged into."""


def planned_for(row: dict[str, Any], quiet: QuietHours, language: str) -> list[Planned]:
    appointment = planning.Appointment(
        appointment_id=row["appointment_id"],
        organization_id=row["organization_id"],
        patient_id=row["patient_id"],
        status=row["status"],
        start=row["start_at"],
        booked_at=row["booked_at"],
        moved_at=row["moved_at"],
        cancelled_at=row["cancelled_at"],
        cancelled_by=row["cancelled_by"],
        time_zone=row["zone"],
    )
    patient = None
    if row["record_id"] is not None:
        patient = planning.Patient(
            preferred_channel=row["preferred_channel"],
            language=row["language"],
            consent_sms=row["consent_sms"],
            consent_email=row["consent_email"],
            contacts=tuple((c["system"], c["value"]) for c in row["contacts"]),
            time_zone=row["patient_zone"],
        )
    reminders = [
        planning.Reminder(r["before_minutes"], r.get("channel")) for r in row["reminder_plan"] or ()
    ]
    return planning.plan_messages(appointment, patient, reminders, quiet, language)


async def reconcile(
    conn: psycopg.AsyncConnection,
    appointment_ids: Sequence[UUID],
    quiet: QuietHours,
    now: dt.datetime,
    language: str = "en",
) -> None:
    """Make the stored messages of these appointments follow their plan."""
    if not appointment_ids:
        return
    ids = sorted(set(appointment_ids))
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(PLAN_INPUTS, [ids])
        planned = [p for row in await cursor.fetchall() for p in planned_for(row, quiet, language)]
        await cursor.execute(
            "SELECT message_id, status FROM messages WHERE appointment_id = ANY(%s) "
            "AND kind <> 'offer' FOR UPDATE",
            [ids],
        )
        stored = {r["message_id"]: r["status"] for r in await cursor.fetchall()}
        await cursor.execute(
            "SELECT channel, address, organization_id FROM opt_outs WHERE address = ANY(%s)",
            [sorted({p.address for p in planned if p.address})],
        )
        stopped = {(r["channel"], r["address"], r["organization_id"])
                   for r in await cursor.fetchall()}  # fmt: skip
    wanted = {p.message_id for p in planned}
    for p in planned:
        status, reason = ("skipped", p.skipped) if p.skipped else ("pending", None)
        if status == "pending" and (
            (p.channel, p.address, None) in stopped
            or (p.channel, p.address, p.organization_id) in stopped
        ):
            status, reason = "skipped", OPTED_OUT
        was = stored.get(p.message_id)
        if status == "pending" and was != "pending" and p.due_at < now - STALE:
            status, reason = "expired", "planned after it was due"
        values = [p.channel, p.address, p.language, p.due_at, p.before_minutes, status, reason]
        if was is None:
            await conn.execute(
                "INSERT INTO messages (message_id, organization_id, appointment_id, patient_id, "
                "kind, channel, address, language, due_at, before_minutes, status, reason) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [p.message_id, p.organization_id, p.appointment_id, p.patient_id, p.kind, *values],
            )
        elif was in OPEN and was != "expired":
            await conn.execute(
                "UPDATE messages SET channel = %s, address = %s, language = %s, due_at = %s, "
                "before_minutes = %s, status = %s, reason = %s, updated_at = now() "
                "WHERE message_id = %s AND (channel, address, language, due_at, status, reason) "
                "IS DISTINCT FROM (%s, %s, %s, %s, %s, %s)",
                [*values, p.message_id, p.channel, p.address, p.language, p.due_at, status, reason],
            )
    gone = [
        m for m, status in stored.items() if m not in wanted and status in ("pending", "skipped")
    ]
    if gone:
        await conn.execute(
            "UPDATE messages SET status = 'superseded', reason = 'no longer planned', "
            "updated_at = now() WHERE message_id = ANY(%s)",
            [gone],
        )


@dataclass
class Touched:
    """The appointments one batch's operations may change the plan of."""

    appointments: set[UUID] = field(default_factory=set)
    patients: set[UUID] = field(default_factory=set)
    types: set[UUID] = field(default_factory=set)
    locations: set[UUID] = field(default_factory=set)

    def note(self, ops: Iterable[Op]) -> None:
        for op in ops:
            if op.table == "appointments":
                self.appointments.add(
                    op.row["appointment_id"] if isinstance(op, Upsert) else op.prefix[0]
                )
            elif op.table == "patients" and isinstance(op, Upsert):
                self.patients.add(op.row["patient_id"])
            elif op.table == "appointment_types" and isinstance(op, Upsert):
                self.types.add(op.row["appointment_type_id"])
            elif op.table == "locations" and isinstance(op, Upsert):
                self.locations.add(op.row["location_id"])

    async def appointment_ids(self, conn: psycopg.AsyncConnection, now: dt.datetime) -> list[UUID]:
        """The touched appointments, with those whose patient (or a record merged into it),
        type or location changed and that have not started yet."""
        found = set(self.appointments)
        if self.patients or self.types or self.locations:
            cursor = await conn.execute(
                "SELECT a.appointment_id FROM appointments a "
                "LEFT JOIN patients p ON p.patient_id = a.patient_id "
                "WHERE a.start_at > %s AND (a.patient_id = ANY(%s) OR p.merged_into = ANY(%s) "
                "OR a.appointment_type_id = ANY(%s) OR a.location_id = ANY(%s))",
                [
                    now,
                    sorted(self.patients),
                    sorted(self.patients),
                    sorted(self.types),
                    sorted(self.locations),
                ],
            )
            found.update(r[0] for r in await cursor.fetchall())
        return sorted(found)
