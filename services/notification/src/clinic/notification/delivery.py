"""After a message leaves: the provider's delivery reports, patients' replies, opt-outs.

- A delivery report moves a sent message's ``delivery`` forward only (queued, sending, sent,
  delivered, or undelivered/failed with the carrier's code): reports that arrive late or
  twice never move it back.
- An opt-out is kept per channel and address, scoped: an organisation's (its staff, its
  unsubscribe link) stops that organisation's messages; the address owner's STOP reply stops
  every organisation's. Only the same scope lifts it (START for a STOP): no organisation can
  lift what a patient said to another or to everyone. Messages still planned for an opted-out
  address are skipped with the reason.
- Every reply is kept with what it was taken to mean.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import psycopg

from clinic.notification.messages import APPLIES, OPTED_OUT
from clinic.notification.replies import Intent
from clinic.notification.sms import DELIVERY_STATES

DDL = [
    """CREATE TABLE IF NOT EXISTS replies (
        reply_id text PRIMARY KEY, channel text NOT NULL, address text NOT NULL,
        body text NOT NULL, intent text NOT NULL, outcome text NOT NULL,
        received_at timestamptz NOT NULL)""",
]
FINAL = frozenset({"delivered", "undelivered", "failed"})


async def record_delivery(
    conn: psycopg.AsyncConnection,
    reference: str,
    state: str,
    error_code: str | None,
    now: dt.datetime,
) -> bool:
    """Apply a provider's report on the message it calls ``reference``. False when no message
    of ours has that reference."""
    earlier = [s for s in DELIVERY_STATES[: DELIVERY_STATES.index(state)] if s not in FINAL]
    reason = f"the carrier reported {state} (error {error_code})" if error_code else None
    cursor = await conn.execute(
        "UPDATE messages SET delivery = %s, delivery_at = %s, reason = COALESCE(%s, reason), "
        "updated_at = %s WHERE reference = %s AND (delivery IS NULL OR delivery = ANY(%s))",
        [state, now, reason, now, reference, earlier],
    )
    if cursor.rowcount:
        return True
    found = await conn.execute("SELECT 1 FROM messages WHERE reference = %s", [reference])
    return await found.fetchone() is not None


async def opt_out(
    conn: psycopg.AsyncConnection,
    channel: str,
    address: str,
    source: str,
    now: dt.datetime,
    organization_id: UUID | None,
) -> int:
    """Stop ``channel`` to ``address`` for one organisation's messages, or for everyone's
    (``organization_id`` None: the address's owner said STOP). Returns how many planned
    messages it skipped."""
    await conn.execute(
        "INSERT INTO opt_outs (channel, address, opted_out_at, source, organization_id) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [channel, address, now, source, organization_id],
    )
    cursor = await conn.execute(
        "UPDATE messages SET status = 'skipped', reason = %s, updated_at = %s "
        "WHERE channel = %s AND address = %s AND status = 'pending' "
        "AND (%s::uuid IS NULL OR organization_id = %s)",
        [OPTED_OUT, now, channel, address, organization_id, organization_id],
    )
    return cursor.rowcount


async def opt_in(
    conn: psycopg.AsyncConnection,
    channel: str,
    address: str,
    now: dt.datetime,
    organization_id: UUID | None,
) -> bool:
    """Lift one scope's opt-out (an organisation's, or the owner's own with ``None``): an
    organisation can never lift what the address's owner said. Messages skipped for it and
    not yet due come back unless another opt-out still applies."""
    cursor = await conn.execute(
        "DELETE FROM opt_outs WHERE channel = %s AND address = %s "
        "AND organization_id IS NOT DISTINCT FROM %s",
        [channel, address, organization_id],
    )
    await conn.execute(
        "UPDATE messages m SET status = 'pending', reason = NULL, updated_at = %s "
        "WHERE m.channel = %s AND m.address = %s AND m.status = 'skipped' AND m.reason = %s "
        "AND m.due_at > %s AND (%s::uuid IS NULL OR m.organization_id = %s) "
        "AND NOT EXISTS (SELECT 1 FROM opt_outs o WHERE o.channel = m.channel "
        "AND o.address = m.address AND " + APPLIES.format(org="m.organization_id") + ")",
        [now, channel, address, OPTED_OUT, now, organization_id, organization_id],
    )
    return cursor.rowcount > 0


async def record_reply(
    conn: psycopg.AsyncConnection,
    reply_id: str,
    address: str,
    body: str,
    intent: Intent,
    outcome: str,
    now: dt.datetime,
) -> bool:
    """Keep a reply once (providers retry webhooks); False when it was already kept."""
    cursor = await conn.execute(
        "INSERT INTO replies (reply_id, channel, address, body, intent, outcome, received_at) "
        "VALUES (%s, 'sms', %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        [reply_id, address, body, intent, outcome, now],
    )
    return cursor.rowcount > 0


async def settle_reply(conn: psycopg.AsyncConnection, reply_id: str, outcome: str) -> None:
    await conn.execute("UPDATE replies SET outcome = %s WHERE reply_id = %s", [outcome, reply_id])


async def forget_reply(conn: psycopg.AsyncConnection, reply_id: str) -> None:
    """A reply that could not be acted on yet: the provider's retry will find it new."""
    await conn.execute("DELETE FROM replies WHERE reply_id = %s", [reply_id])


async def latest_sent_to(
    conn: psycopg.AsyncConnection, channel: str, address: str, now: dt.datetime
) -> tuple[UUID, UUID, UUID, bool] | None:
    """(organisation, appointment, patient, confirmed already) of the latest message sent to
    ``address`` about an appointment still to come: what a reply such as ``C`` refers to."""
    cursor = await conn.execute(
        "SELECT m.organization_id, m.appointment_id, a.patient_id, "
        "a.attendance_confirmed_at IS NOT NULL FROM messages m "
        "JOIN appointments a ON a.appointment_id = m.appointment_id "
        "WHERE m.channel = %s AND m.address = %s AND m.status = 'sent' AND a.start_at > %s "
        "AND m.kind <> 'cancelled' "
        "AND a.status IN ('booked', 'arrived', 'checked-in') "
        "ORDER BY m.sent_at DESC LIMIT 1",
        [channel, address, now],
    )
    row = await cursor.fetchone()
    return (row[0], row[1], row[2], row[3]) if row else None
