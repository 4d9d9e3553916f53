"""What a signed link does, apart from HTTP: read it, show what it would do, do it once.

- **Reading** (``look``) changes nothing: the token must be ours and unchanged
  (``link-invalid``), not expired (``link-expired``), about an appointment this service
  knows in the organisation the token names (``link-not-found``: a token signed for another
  organisation's appointment finds nothing), not used yet (``link-used``), and the
  appointment must still be open to the action (``appointment-closed``).
- An offer's ``accept`` link wants the hold still held; the others a booked appointment.
- **Acting** (``act``) claims the link in ``link_uses`` (its message and action, unique) and
  runs the booking command with the patient as the actor, in one transaction: a second click
  waits for the first and then finds the link used; when booking refuses (a cut-off, a time
  just taken) or cannot be reached, the claim is rolled back and the link still works.
  Booking's idempotency key is the link's (message, action), so a retry after a crash
  between booking's answer and the commit gets booking's first answer.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from clinic.notification.clinics import Acting, Answer, Booking
from clinic.notification.links import Link, LinkRefused, Signer, digest
from clinic.platform.database import Database
from clinic.platform.problems import Problem

DDL = [
    """CREATE TABLE IF NOT EXISTS link_uses (
        link_digest bytea PRIMARY KEY, message_id uuid NOT NULL, action text NOT NULL,
        organization_id uuid NOT NULL, appointment_id uuid NOT NULL,
        used_at timestamptz NOT NULL, outcome text NOT NULL)""",
]
log = logging.getLogger(__name__)
OPEN = frozenset({"booked"})
"""Statuses a patient's link may still change (not started, not cancelled)."""


class LinkInvalidError(Problem):
    status = 400
    slug = "link-invalid"
    title = "This link is not valid"


class LinkExpiredError(Problem):
    status = 410
    slug = "link-expired"
    title = "This link has expired"


class LinkNotFoundError(Problem):
    status = 404
    slug = "link-not-found"
    title = "This link leads nowhere"


class LinkUsedError(Problem):
    status = 409
    slug = "link-used"
    title = "This link has been used"


class AppointmentClosedError(Problem):
    status = 409
    slug = "appointment-closed"
    title = "This appointment can no longer be changed here"


class BookingRefusedError(Problem):
    status = 409
    slug = "booking-refused"
    title = "The clinic's calendar did not accept this"


class BookingUnavailableError(Problem):
    status = 503
    slug = "booking-unavailable"
    title = "The clinic's calendar cannot be reached"


TARGET = """
SELECT a.appointment_id, a.organization_id, a.patient_id, a.status, a.start_at, a.end_at,
       a.appointment_type_id, a.location_id, COALESCE(o.name, '') AS organization,
       COALESCE(t.name, '') AS type_name, COALESCE(t.patient_facing, '{}'::jsonb) AS facing,
       COALESCE(l.name, '') AS location, COALESCE(l.time_zone, 'UTC') AS time_zone,
       a.hold_expires_at, m.language, m.channel, m.address, u.used_at, w.entry_id
FROM appointments a
LEFT JOIN messages m ON m.message_id = %(message)s AND m.appointment_id = a.appointment_id
LEFT JOIN organizations o ON o.organization_id = a.organization_id
LEFT JOIN appointment_types t ON t.appointment_type_id = a.appointment_type_id
LEFT JOIN locations l ON l.location_id = a.location_id
LEFT JOIN link_uses u ON u.link_digest = %(digest)s
LEFT JOIN offers w ON w.hold_appointment_id = a.appointment_id
WHERE a.appointment_id = %(appointment)s AND a.organization_id = %(org)s
"""


@dataclass(frozen=True)
class Target:
    link: Link
    row: dict[str, Any]

    @property
    def language(self) -> str:
        return str(self.row.get("language") or "en")


def read(signer: Signer, token: str, now: dt.datetime) -> Link:
    try:
        return signer.verify(token, now)
    except LinkRefused as refused:
        if refused.reason == "expired":
            raise LinkExpiredError(refused.detail) from None
        raise LinkInvalidError(refused.detail, reason=refused.reason) from None


async def look(
    conn: psycopg.AsyncConnection,
    signer: Signer,
    token: str,
    now: dt.datetime,
    unsubscribe: bool = False,
) -> Target:
    """The link's target, or the problem that stops it; changes nothing. ``unsubscribe``:
    the page that stops messages (its own links), else the pages that act on appointments."""
    link = read(signer, token, now)
    if (link.action == "unsubscribe") != unsubscribe:
        raise LinkInvalidError("This link belongs to another page.", reason="action")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            TARGET,
            {
                "message": link.message_id,
                "digest": digest(link),
                "appointment": link.appointment_id,
                "org": link.organization_id,
            },
        )
        row = await cur.fetchone()
    if row is None or row["channel"] is None:
        raise LinkNotFoundError("No appointment of this organisation matches this link.")
    target = Target(link, row)
    if link.action == "unsubscribe":
        return target
    if row["used_at"] is not None:
        raise LinkUsedError(
            f"It was used on {row['used_at']:%Y-%m-%d at %H:%M} UTC.",
            used_at=row["used_at"].isoformat(),
        )
    if link.action == "accept":
        held = row["hold_expires_at"]
        if row["status"] != "pending" or held is None or held <= now:
            raise AppointmentClosedError(
                "This time is no longer held for you: it went to the next patient waiting.",
                appointment_status=row["status"],
            )
    elif row["status"] not in OPEN or row["start_at"] <= now:
        raise AppointmentClosedError(
            "The appointment is cancelled or has begun; please call the clinic.",
            appointment_status=row["status"],
        )
    return target


async def act(
    database: Database,
    booking: Booking,
    signer: Signer,
    token: str,
    now: dt.datetime,
    start: dt.datetime | None = None,
) -> tuple[Target, Answer]:
    """Run the link's action once; returns booking's (successful) answer."""
    async with database.transaction() as conn:
        target = await look(conn, signer, token, now)
        link, row = target.link, target.row
        claimed = await conn.execute(
            "INSERT INTO link_uses (link_digest, message_id, action, organization_id, "
            "appointment_id, used_at, outcome) VALUES (%s, %s, %s, %s, %s, %s, 'done') "
            "ON CONFLICT DO NOTHING",
            [digest(link), link.message_id, link.action, link.organization_id,
             link.appointment_id, now],
        )  # fmt: skip
        if claimed.rowcount == 0:  # a click at the same moment won
            raise LinkUsedError("It was used a moment ago.")
        acting = Acting(
            row["patient_id"], "link", f"link:{link.message_id}:{link.action}", link.message_id
        )
        org, appointment = link.organization_id, link.appointment_id
        if link.action == "confirm":
            answer = await booking.confirm_attendance(org, appointment, acting)
        elif link.action == "cancel":
            reason = "cancelled by the patient from a message's link"
            answer = await booking.cancel(org, appointment, acting, reason)
        elif link.action == "accept":
            answer = await booking.confirm_hold(org, appointment, acting)
        elif link.action == "reschedule":
            if start is None:
                raise LinkInvalidError("Choose a new time first.", reason="no-start")
            answer = await booking.reschedule(org, appointment, acting, start)
        else:
            raise LinkInvalidError("This link does not act on appointments.")
        if not answer.ok:  # the transaction rolls back: the link still works
            if answer.definitive:
                raise BookingRefusedError(answer.detail, booking_status=answer.status)
            raise BookingUnavailableError(answer.detail)
    if link.action == "accept" and row["entry_id"] is not None:
        # Booked from the waitlist: the entry is done (its own idempotency key).
        left = await booking.leave_waitlist(
            org,
            row["entry_id"],
            Acting(row["patient_id"], "link", f"offer-accepted:{link.message_id}"),
            "booked a time offered from the waitlist",
        )
        if not left.ok:
            log.warning("waitlist entry not left", extra={"entry_id": str(row["entry_id"]),
                                                          "status": left.status})  # fmt: skip
    return target, answer
