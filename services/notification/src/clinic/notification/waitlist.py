"""Waitlist offers: time that frees up goes to the patients waiting for it, one at a time.

- **Noticing** (in the consumer's transaction, ``notice``): an appointment that held time in
  the future and is cancelled, moved away, entered in error, or a hold that lapsed, leaves a
  ``freed_times`` row (its id derived from the appointment and start: seen twice, stored
  once). When the appointment was itself an offer's hold, its fate is the offer's instead:
  booked from the hold, the offer is accepted and the time filled; lapsed or cancelled, the
  offer lapsed (or was declined) and the time is open for the next patient.
- **Offering** (``Offerer``, a background loop with an injectable clock): open freed times,
  locked ``FOR UPDATE SKIP LOCKED``, each get the first suitable waiting patient
  (``offers.candidates``: priority, then who waited longest; not asked before for this
  time; no live offer overlapping it). The offer is stored ``placing`` first (a unique
  index allows one live offer per freed time, so the time is never offered twice), then
  booking holds the time for that patient (``NOTIFICATION_OFFER_HOLD_MINUTES``), then the
  offer is ``live`` and its message (with an accept link until the hold expires) is due at
  once. Booking refusing the hold because the time is taken closes the freed time; refusing
  it for the patient moves on to the next one.
- Offers are not made in the location's quiet hours, nor for time starting within
  ``NOTIFICATION_OFFER_NOTICE_MINUTES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
from prometheus_client import CollectorRegistry, Counter
from psycopg.rows import dict_row

from clinic.events import Envelope
from clinic.events import appointments as appt
from clinic.events import waitlist as wl
from clinic.notification import offers
from clinic.notification.clinics import Acting, Booking
from clinic.notification.messages import OPTED_OUT
from clinic.notification.offers import FreedTime, Waiting
from clinic.notification.planning import NAMESPACE, QuietHours, _channel, _language
from clinic.notification.planning import Patient as Contactable
from clinic.platform.database import Database

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]

DDL = [
    """CREATE TABLE IF NOT EXISTS freed_times (
        freed_id uuid PRIMARY KEY, organization_id uuid NOT NULL, location_id uuid NOT NULL,
        appointment_type_id uuid NOT NULL, start_at timestamptz NOT NULL,
        end_at timestamptz NOT NULL, resources jsonb NOT NULL, source_appointment_id uuid NOT NULL,
        status text NOT NULL, reason text, look_at timestamptz NOT NULL,
        found_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS freed_times_open ON freed_times (look_at)
        WHERE status = 'open'""",
    """CREATE TABLE IF NOT EXISTS offers (
        offer_id uuid PRIMARY KEY, freed_id uuid NOT NULL, entry_id uuid NOT NULL,
        patient_id uuid NOT NULL, organization_id uuid NOT NULL, hold_appointment_id uuid,
        status text NOT NULL, reason text, offered_at timestamptz NOT NULL,
        expires_at timestamptz, updated_at timestamptz NOT NULL,
        UNIQUE (freed_id, entry_id))""",
    """CREATE UNIQUE INDEX IF NOT EXISTS offers_one_live_per_freed_time ON offers (freed_id)
        WHERE status IN ('placing', 'live')""",
    """CREATE UNIQUE INDEX IF NOT EXISTS offers_by_hold ON offers (hold_appointment_id)
        WHERE hold_appointment_id IS NOT NULL""",
]
LIVE = ("placing", "live")
HOLDING = frozenset({"pending", "booked", "checked-in", "arrived"})
TAKEN = frozenset({"slot-taken", "no-resource-available", "outside-working-hours",
                   "time-off", "conflict", "overbooked"})  # fmt: skip
"""Booking's refusals that mean the time is gone, not that this patient cannot have it."""
RETRY = dt.timedelta(minutes=1)


class OfferMetrics:
    def count(self, outcome: str) -> None:
        if outcome == "freed":
            self.freed.inc()
        else:
            self.offers.labels(outcome).inc()

    def __init__(self, registry: CollectorRegistry) -> None:
        self.offers = Counter(
            "notification_waitlist_offers_total",
            "Waitlist offers by outcome: made (held and sent), accepted, lapsed, declined, "
            "refused (booking would not hold the time).",
            ["outcome"],
            registry=registry,
        )
        self.freed = Counter(
            "notification_freed_times_total",
            "Freed times noticed (cancellations, moves, lapsed holds of future time).",
            registry=registry,
        )


# -- noticing, in the consumer's transaction ------------------------------------------------


async def notice(conn: psycopg.AsyncConnection, envelope: Envelope, now: dt.datetime) -> list[str]:
    """What this appointment event means for freed times and offers; call it before the
    event's row operations are applied (it reads the appointment as it was). Returns the
    offer outcomes it recorded (for metrics)."""
    payload = envelope.typed_payload()
    if isinstance(payload, wl.WaitlistJoined):  # someone new may suit what nobody did
        await conn.execute(
            "UPDATE freed_times SET look_at = %s WHERE status = 'open' AND look_at > %s "
            "AND organization_id = %s AND appointment_type_id = %s",
            [now, now, envelope.organization_id, payload.appointment_type_id],
        )
        return []
    if not isinstance(payload, appt._AppointmentEvent):
        return []
    aid = payload.appointment_id
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT offer_id, freed_id, status FROM offers WHERE hold_appointment_id = %s "
            "FOR UPDATE",
            [aid],
        )
        offer = await cur.fetchone()
        if offer is not None:
            return await _offer_event(cur, offer, payload, now)
        frees = isinstance(
            payload, (appt.AppointmentCancelled, appt.AppointmentHoldExpired,
                      appt.AppointmentRescheduled)
        ) or (isinstance(payload, appt.AppointmentStatusChanged)
              and str(payload.status) == "entered-in-error")  # fmt: skip
        if not frees:
            return []
        await cur.execute(
            "SELECT organization_id, location_id, appointment_type_id, status, start_at, end_at, "
            "resources FROM appointments WHERE appointment_id = %s",
            [aid],
        )
        was = await cur.fetchone()
        if was is None or was["status"] not in HOLDING or was["start_at"] <= now:
            return []
        if isinstance(payload, appt.AppointmentRescheduled) and payload.start == was["start_at"]:
            return []  # moved to another resource at the same time: nothing freed
        await cur.execute(
            "INSERT INTO freed_times (freed_id, organization_id, location_id, "
            "appointment_type_id, start_at, end_at, resources, source_appointment_id, status, "
            "look_at, found_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'open', %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [offers.freed_id(aid, was["start_at"]), was["organization_id"], was["location_id"],
             was["appointment_type_id"], was["start_at"], was["end_at"],
             psycopg.types.json.Jsonb(was["resources"]), aid, now, now, now],
        )  # fmt: skip
        return ["freed"] if cur.rowcount else []


async def _offer_event(
    cur: psycopg.AsyncCursor[dict[str, Any]],
    offer: dict[str, Any],
    payload: appt._AppointmentEvent,
    now: dt.datetime,
) -> list[str]:
    if offer["status"] not in LIVE:
        return []
    if isinstance(payload, appt.AppointmentBooked) and payload.from_hold:
        outcome, offer_status, freed_status = "accepted", "accepted", "filled"
    elif isinstance(payload, appt.AppointmentHoldExpired):
        outcome, offer_status, freed_status = "lapsed", "lapsed", "open"
    elif isinstance(payload, appt.AppointmentCancelled):
        outcome, offer_status, freed_status = "declined", "declined", "open"
    else:
        return []
    await cur.execute(
        "UPDATE offers SET status = %s, updated_at = %s WHERE offer_id = %s",
        [offer_status, now, offer["offer_id"]],
    )
    await cur.execute(
        "UPDATE freed_times SET status = %s, look_at = %s, updated_at = %s WHERE freed_id = %s",
        [freed_status, now, now, offer["freed_id"]],
    )
    if offer_status != "accepted":
        await cur.execute(
            "UPDATE messages SET status = 'superseded', reason = %s, updated_at = %s "
            "WHERE message_id = %s AND status IN ('pending', 'skipped')",
            [f"the offer {offer_status}", now, offer_message_id(offer["offer_id"])],
        )
    return [outcome]


def offer_message_id(offer_id: UUID) -> UUID:
    return uuid.uuid5(NAMESPACE, f"{offer_id}/offer")


# -- offering, in the background --------------------------------------------------------------


@dataclass(frozen=True)
class Placing:
    offer_id: UUID
    freed_id: UUID
    entry_id: UUID
    patient_id: UUID
    freed: FreedTime


OPEN_FREED = """
SELECT f.freed_id, f.organization_id, f.location_id, f.appointment_type_id, f.start_at,
       f.end_at, f.resources, COALESCE(l.time_zone, 'UTC') AS time_zone
FROM freed_times f LEFT JOIN locations l ON l.location_id = f.location_id
WHERE f.freed_id IN (
    SELECT freed_id FROM freed_times WHERE status = 'open' AND look_at <= %(now)s
    ORDER BY look_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
"""
WAITING = """
SELECT entry_id, patient_id, appointment_type_id, location_ids, earliest, latest, times_of_day,
       provider_id, joined_at, priority, weekdays
FROM waitlist WHERE organization_id = %s AND appointment_type_id = %s AND active
"""
BUSY = """
SELECT DISTINCT o.patient_id FROM offers o JOIN freed_times f ON f.freed_id = o.freed_id
WHERE o.status IN ('placing', 'live') AND o.organization_id = %s
  AND f.start_at < %s AND f.end_at > %s
"""


class Offerer:
    def __init__(
        self,
        database: Database,
        booking: Booking,
        metrics: OfferMetrics,
        quiet: QuietHours,
        language: str = "en",
        hold_minutes: int = 60,
        notice_minutes: int = 120,
        clock: Clock = lambda: dt.datetime.now(dt.UTC),
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.database = database
        self.booking = booking
        self.metrics = metrics
        self.quiet = quiet
        self.language = language
        self.hold = dt.timedelta(minutes=hold_minutes)
        self.notice = dt.timedelta(minutes=notice_minutes)
        self.clock = clock
        self.wake = wake
        self._task: asyncio.Task[None] | None = None

    async def offer_due(self, limit: int = 20) -> int:
        """One round: choose patients for open freed times, hold the time for each through
        booking, and plan the offers' messages. Returns how many offers were made."""
        placing = await self._choose(self.clock(), limit)
        made = 0
        for p in placing:
            made += await self._place(p)
        if made:
            self.wake()
        return made

    async def _choose(self, now: dt.datetime, limit: int) -> list[Placing]:
        chosen: list[Placing] = []
        async with self.database.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(OPEN_FREED, {"now": now, "limit": limit})
            for row in await cur.fetchall():
                freed = FreedTime(
                    row["organization_id"], row["location_id"], row["appointment_type_id"],
                    row["start_at"], row["end_at"],
                    tuple((r["role"], UUID(r["resource_id"])) for r in row["resources"]),
                    row["time_zone"],
                )  # fmt: skip
                wait = self._not_now(freed, now)
                if wait is not None:
                    await cur.execute(
                        "UPDATE freed_times SET status = %s, look_at = %s, reason = %s, "
                        "updated_at = %s WHERE freed_id = %s",
                        [*wait, now, row["freed_id"]],
                    )
                    continue
                await cur.execute(WAITING, [freed.organization_id, freed.appointment_type_id])
                entries = [_waiting(r) for r in await cur.fetchall()]
                await cur.execute("SELECT entry_id FROM offers WHERE freed_id = %s",
                                  [row["freed_id"]])  # fmt: skip
                asked = [r["entry_id"] for r in await cur.fetchall()]
                await cur.execute(BUSY, [freed.organization_id, freed.end, freed.start])
                busy = [r["patient_id"] for r in await cur.fetchall()]
                ranked = offers.candidates(entries, freed, asked, busy)
                if not ranked:
                    await cur.execute(
                        "UPDATE freed_times SET look_at = %s, reason = %s, updated_at = %s "
                        "WHERE freed_id = %s",
                        [now + dt.timedelta(minutes=15), "nobody waiting suits it", now,
                         row["freed_id"]],
                    )  # fmt: skip
                    continue
                entry = ranked[0]
                offer_id = uuid.uuid4()
                await cur.execute(
                    "INSERT INTO offers (offer_id, freed_id, entry_id, patient_id, "
                    "organization_id, status, offered_at, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, 'placing', %s, %s)",
                    [offer_id, row["freed_id"], entry.entry_id, entry.patient_id,
                     freed.organization_id, now, now],
                )  # fmt: skip
                await cur.execute(
                    "UPDATE freed_times SET status = 'offered', reason = NULL, updated_at = %s "
                    "WHERE freed_id = %s",
                    [now, row["freed_id"]],
                )
                chosen.append(
                    Placing(offer_id, row["freed_id"], entry.entry_id, entry.patient_id, freed)
                )
        return chosen

    def _not_now(self, freed: FreedTime, now: dt.datetime) -> tuple[str, dt.datetime, str] | None:
        """(status, look again at, why) when no offer should be made now."""
        if freed.start - self.notice <= now:
            return ("gone", now, "too close to its start to offer")
        zone = ZoneInfo(freed.time_zone)
        released = self.quiet.release(now, zone)
        if released > now:
            return ("open", released, "waiting for the quiet hours to end")
        return None

    async def _place(self, p: Placing) -> int:
        now = self.clock()
        freed = p.freed
        minutes = int(min(self.hold, freed.start - self.notice - now).total_seconds() // 60)
        acting = Acting(None, "waitlist", f"offer:{p.offer_id}", p.offer_id)
        answer = await self.booking.hold(
            freed.organization_id, acting, p.patient_id, freed.appointment_type_id,
            freed.location_id, freed.start, {role: str(r) for role, r in freed.resources},
            max(1, min(120, minutes)),
        )  # fmt: skip
        async with self.database.transaction() as conn:
            if answer.ok:
                hold = UUID(str(answer.body["id"]))
                expires = dt.datetime.fromisoformat(str(answer.body["hold_expires_at"]))
                await conn.execute(
                    "UPDATE offers SET status = 'live', hold_appointment_id = %s, "
                    "expires_at = %s, updated_at = %s WHERE offer_id = %s",
                    [hold, expires, now, p.offer_id],
                )
                await self._plan_message(conn, p, hold, now)
                self.metrics.offers.labels("made").inc()
                return 1
            slug = str(answer.body.get("type", "")).rsplit("/", 1)[-1]
            freed_update: tuple[str, dt.datetime, str | None]
            if not answer.definitive:  # booking unreachable: try again in a minute
                await conn.execute("DELETE FROM offers WHERE offer_id = %s", [p.offer_id])
                freed_update = ("open", now + RETRY, answer.detail)
            elif slug in TAKEN:
                await conn.execute(
                    "UPDATE offers SET status = 'refused', reason = %s, updated_at = %s "
                    "WHERE offer_id = %s",
                    [answer.detail, now, p.offer_id],
                )
                freed_update = ("gone", now, f"booking would not hold it: {answer.detail}")
            else:  # this patient cannot have it (merged, retired type...): the next one
                await conn.execute(
                    "UPDATE offers SET status = 'refused', reason = %s, updated_at = %s "
                    "WHERE offer_id = %s",
                    [answer.detail, now, p.offer_id],
                )
                freed_update = ("open", now, None)
            await conn.execute(
                "UPDATE freed_times SET status = %s, look_at = %s, reason = %s, updated_at = %s "
                "WHERE freed_id = %s",
                [*freed_update, now, p.freed_id],
            )
            self.metrics.offers.labels("refused").inc()
        return 0

    async def _plan_message(
        self, conn: psycopg.AsyncConnection, p: Placing, hold: UUID, now: dt.datetime
    ) -> None:
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT COALESCE(s.preferred_channel, p.preferred_channel) AS preferred_channel, "
                "COALESCE(s.language, p.language) AS language, "
                "COALESCE(s.consent_sms, p.consent_sms) AS consent_sms, "
                "COALESCE(s.consent_email, p.consent_email) AS consent_email, "
                "COALESCE(s.contacts, p.contacts) AS contacts, "
                "COALESCE(s.patient_id, p.patient_id) AS record_id "
                "FROM patients p LEFT JOIN patients s ON s.patient_id = p.merged_into "
                "WHERE p.patient_id = %s",
                [p.patient_id],
            )
            row = await cur.fetchone()
        channel: str | None = None
        address: str | None = None
        skipped: str | None = "the patient is unknown"
        language = "en"
        if row is not None:
            contactable = Contactable(
                preferred_channel=row["preferred_channel"], language=row["language"],
                consent_sms=row["consent_sms"], consent_email=row["consent_email"],
                contacts=tuple((c["system"], c["value"]) for c in row["contacts"]),
            )  # fmt: skip
            channel, address, skipped = _channel(row["preferred_channel"], contactable)
            language = _language(row["language"], self.language)
            if skipped is None:
                stopped = await conn.execute(
                    "SELECT 1 FROM opt_outs WHERE channel = %s AND address = %s "
                    "AND (organization_id IS NULL OR organization_id = %s)",
                    [channel, address, p.freed.organization_id],
                )
                if await stopped.fetchone():
                    skipped = OPTED_OUT
        await conn.execute(
            "INSERT INTO messages (message_id, organization_id, appointment_id, patient_id, "
            "kind, channel, address, language, due_at, status, reason) "
            "VALUES (%s, %s, %s, %s, 'offer', %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [offer_message_id(p.offer_id), p.freed.organization_id, hold, p.patient_id,
             channel, address, language, now, "skipped" if skipped else "pending", skipped],
        )  # fmt: skip

    # -- running -------------------------------------------------------------------------

    def start(self, interval: float) -> None:
        self._task = asyncio.create_task(self._run(interval), name="waitlist-offers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, interval: float) -> None:
        while True:
            try:
                await self.offer_due()
            except Exception:
                log.exception("offer round failed; trying again")
            await asyncio.sleep(interval)


def _waiting(row: dict[str, Any]) -> Waiting:
    return Waiting(
        entry_id=row["entry_id"],
        patient_id=row["patient_id"],
        appointment_type_id=row["appointment_type_id"],
        location_ids=tuple(UUID(x) for x in row["location_ids"]),
        earliest=row["earliest"],
        latest=row["latest"],
        times_of_day=tuple(row["times_of_day"]),
        provider_id=row["provider_id"],
        joined_at=row["joined_at"],
        priority=row["priority"],
        weekdays=tuple(row["weekdays"]),
    )
