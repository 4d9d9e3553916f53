"""The dispatcher: due messages leave the database for their channel, each once, across
restarts and several instances.

One round, at the time the clock gives (injectable, so tests drive it without sleeping):
1. **Claim** (one transaction): due ``pending`` messages, oldest first, and ``sending`` ones
   whose lease lapsed (their instance died), locked ``FOR UPDATE SKIP LOCKED`` so instances
   never claim the same row. Those whose appointment has started are ``expired``, those to
   an address that opted out ``skipped``; the rest are granted by each organisation's send
   budget for the current minute (a row per organisation and minute, locked, so the limit
   holds across instances; an organisation out of budget is left out of the scan, so it
   never starves the others), then marked ``sending`` with this instance's name, one more
   attempt and a lease.
2. **Write** each claimed message from what the tables hold now (``texts``), with signed
   action links.
3. **Send** them concurrently through their channel, and record each outcome as soon as
   it is known, fenced by (instance, attempt) so a late instance never overwrites another's
   result: ``sent`` with the provider's reference; for a temporary failure back to
   ``pending`` after a backoff with jitter (``failed`` once the attempts are used up); for
   a permanent one ``failed`` with the reason.
While a round's sends are in flight their leases are renewed, so a slow provider never makes
another instance take them over. An outcome the database cannot take at once (it restarts,
fails over, or drops the connection) is written again until it can: a message the provider
took, left ``sending``, would otherwise go out a second time when its lease lapsed. An
instance killed mid-round leaves its unrecorded claims ``sending``; when their lease lapses
another instance sends them. The one window left is an instance dying between the
provider's acceptance and the recording (milliseconds): such a message goes out again, with
the same ``Message-ID``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import socket
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as Total
from psycopg.rows import dict_row

from clinic.notification.channels import Channel, Failed, Outcome, Outgoing, Retry, Sent
from clinic.notification.links import Action, Link, Signer
from clinic.notification.messages import EVERYONE, OPTED_OUT
from clinic.notification.texts import Context, write
from clinic.platform.database import UNREACHABLE, Database

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]

DDL = [
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS retry_at timestamptz",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS claimed_by text",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS lease_until timestamptz",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS sent_at timestamptz",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS reference text",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS delivery text",
    "ALTER TABLE messages ADD COLUMN IF NOT EXISTS delivery_at timestamptz",
    """CREATE INDEX IF NOT EXISTS messages_sendable
        ON messages ((COALESCE(retry_at, due_at))) WHERE status = 'pending'""",
    """CREATE INDEX IF NOT EXISTS messages_leased
        ON messages (lease_until) WHERE status = 'sending'""",
    """CREATE UNIQUE INDEX IF NOT EXISTS messages_by_reference
        ON messages (reference) WHERE reference IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS opt_outs (
        channel text NOT NULL, address text NOT NULL, opted_out_at timestamptz NOT NULL,
        source text NOT NULL)""",
    # Scoped: an organisation's staff or unsubscribe link stops that organisation's
    # messages; a STOP reply from the address itself (organization_id NULL) stops everyone's.
    "ALTER TABLE opt_outs ADD COLUMN IF NOT EXISTS organization_id uuid",
    "ALTER TABLE opt_outs DROP CONSTRAINT IF EXISTS opt_outs_pkey",
    f"""CREATE UNIQUE INDEX IF NOT EXISTS opt_outs_scoped
        ON opt_outs (channel, address, (COALESCE(organization_id, '{EVERYONE}'::uuid)))""",
    """CREATE TABLE IF NOT EXISTS send_windows (
        organization_id uuid NOT NULL, window_start timestamptz NOT NULL,
        used integer NOT NULL, PRIMARY KEY (organization_id, window_start))""",
]
ACTIONS_OFFERED: tuple[Action, ...] = ("confirm", "cancel", "reschedule")
"""The links each message about a coming appointment carries."""

CLAIMABLE = """
WITH claimable AS (
    SELECT message_id, organization_id, appointment_id, channel, address FROM messages m
    WHERE {condition}
      AND EXISTS (SELECT 1 FROM appointments a WHERE a.appointment_id = m.appointment_id)
    ORDER BY {order} LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
SELECT c.message_id, c.organization_id, COALESCE(a.start_at <= %(now)s, false) AS started,
       EXISTS (SELECT 1 FROM opt_outs o WHERE o.channel = c.channel AND o.address = c.address
               AND (o.organization_id IS NULL OR o.organization_id = c.organization_id))
           AS opted_out
FROM claimable c LEFT JOIN appointments a ON a.appointment_id = c.appointment_id
"""
LAPSED = CLAIMABLE.format(
    condition="status = 'sending' AND lease_until <= %(now)s", order="lease_until"
)
"""Claimed by an instance that has not recorded an outcome within its lease (it died).
Only messages whose appointment the projection has (a waitlist offer is planned as soon as
booking holds the time; the hold's event may still be on its way)."""
DUE = CLAIMABLE.format(
    condition="status = 'pending' AND COALESCE(retry_at, due_at) <= %(now)s "
    "AND due_at <= %(now)s AND organization_id <> ALL(%(exhausted)s)",
    order="COALESCE(retry_at, due_at)",
)
"""Due, oldest first, except organisations out of budget this minute."""
WRITE_INPUTS = """
SELECT m.message_id, m.organization_id, m.appointment_id, m.kind, m.channel, m.address,
       m.language, m.attempts, m.due_at, a.start_at, a.end_at, a.version, a.hold_expires_at,
       COALESCE(survivor.given_name, p.given_name, '') AS given_name,
       COALESCE(o.name, '') AS organization, COALESCE(t.name, '') AS type_name,
       COALESCE(t.patient_facing, '{}'::jsonb) AS patient_facing,
       COALESCE(l.name, '') AS location, COALESCE(l.address, '{}'::jsonb) AS place,
       COALESCE(l.time_zone, 'UTC') AS time_zone
FROM messages m
JOIN appointments a ON a.appointment_id = m.appointment_id
LEFT JOIN patients p ON p.patient_id = a.patient_id
LEFT JOIN patients survivor ON survivor.patient_id = p.merged_into
LEFT JOIN organizations o ON o.organization_id = m.organization_id
LEFT JOIN appointment_types t ON t.appointment_type_id = a.appointment_type_id
LEFT JOIN locations l ON l.location_id = a.location_id
WHERE m.message_id = ANY(%s)
"""


RECORD_PAUSE, RECORD_PAUSE_CAP = 0.2, 2.0
"""Seconds between writes of an outcome the database could not take, doubling to the cap."""


@dataclass(frozen=True)
class Policy:
    batch_size: int = 100
    lease: dt.timedelta = dt.timedelta(minutes=5)
    max_attempts: int = 8
    backoff_base: dt.timedelta = dt.timedelta(seconds=30)
    backoff_cap: dt.timedelta = dt.timedelta(hours=1)
    rate_per_minute: int = 600
    """Messages each organisation may send per minute, across instances."""

    def backoff(self, attempts: int, rng: random.Random) -> dt.timedelta:
        """Exponential in the attempts made, capped, with equal jitter (half fixed, half
        random) so retries of a burst spread out instead of returning together."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** max(0, attempts - 1))
        half: dt.timedelta = ceiling / 2
        return half + half * rng.random()


class DispatchMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.outcomes = Total(
            "notification_messages_total",
            "Messages by channel, kind (confirmation, reminder, rescheduled, cancelled, offer) "
            "and outcome (sent, retried, failed, expired, skipped).",
            ["channel", "kind", "outcome"],
            registry=registry,
        )
        self.lag = Histogram(
            "notification_dispatch_lag_seconds",
            "From a message's due time to its provider taking it.",
            ["channel"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=registry,
        )


@dataclass
class Claimed:
    row: dict[str, Any]
    outgoing: Outgoing | None = None


class Dispatcher:
    def __init__(
        self,
        database: Database,
        channels: Mapping[str, Channel],
        signer: Signer,
        public_url: str,
        metrics: DispatchMetrics,
        policy: Policy | None = None,
        clock: Clock = lambda: dt.datetime.now(dt.UTC),
        rng: random.Random | None = None,
        name: str | None = None,
        links_url: str = "",
    ) -> None:
        self.database = database
        self.channels = dict(channels)
        self.signer = signer
        self.public_url = public_url.rstrip("/")
        self.links_url = (links_url or public_url).rstrip("/")
        """Where action links open: the web app's pages, or this service's own."""
        self.metrics = metrics
        self.policy = policy or Policy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.name = name or f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- one round -------------------------------------------------------------------

    async def dispatch_due(self) -> int:
        """Claim what is due now, send it, record each outcome. Returns how many were
        claimed for sending."""
        now = self.clock()
        claimed = await self.claim(now)
        if not claimed:
            return 0
        renewing = asyncio.create_task(self._renew([c.row["message_id"] for c in claimed]))
        try:
            results = await asyncio.gather(*(self._deliver(c) for c in claimed),
                                           return_exceptions=True)  # fmt: skip
            for c, result in zip(claimed, results, strict=True):
                if isinstance(result, Exception):  # its claim lapses and another try follows
                    log.error("outcome not recorded", exc_info=result,
                              extra={"message_id": str(c.row["message_id"])})  # fmt: skip
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        return len(claimed)

    async def claim(self, now: dt.datetime) -> list[Claimed]:
        policy = self.policy
        window = now.replace(second=0, microsecond=0)
        async with self.database.transaction() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "SELECT organization_id FROM send_windows WHERE window_start = %s AND used >= %s",
                [window, policy.rate_per_minute],
            )
            exhausted = [r["organization_id"] for r in await cur.fetchall()]
            args = {"now": now, "exhausted": exhausted, "limit": policy.batch_size}
            await cur.execute(LAPSED, args)
            rows = await cur.fetchall()
            await cur.execute(DUE, args)
            rows += await cur.fetchall()
            expired = [r["message_id"] for r in rows if r["started"]]
            skipped = [r["message_id"] for r in rows if r["opted_out"] and not r["started"]]
            wanted: dict[UUID, list[UUID]] = defaultdict(list)
            for r in rows:
                if not r["started"] and not r["opted_out"]:
                    wanted[r["organization_id"]].append(r["message_id"])
            granted: list[UUID] = []
            for org, ids in sorted(wanted.items()):
                await cur.execute(
                    "INSERT INTO send_windows (organization_id, window_start, used) "
                    "VALUES (%s, %s, 0) ON CONFLICT DO NOTHING",
                    [org, window],
                )
                await cur.execute(
                    "SELECT used FROM send_windows WHERE organization_id = %s "
                    "AND window_start = %s FOR UPDATE",
                    [org, window],
                )
                used = (await cur.fetchone() or {"used": 0})["used"]
                share = ids[: max(0, policy.rate_per_minute - used)]
                if share:
                    await cur.execute(
                        "UPDATE send_windows SET used = used + %s "
                        "WHERE organization_id = %s AND window_start = %s",
                        [len(share), org, window],
                    )
                granted += share
            await cur.execute(
                "DELETE FROM send_windows WHERE window_start < %s", [window - dt.timedelta(hours=1)]
            )
            await self._close(cur, expired, "expired", "the appointment started before it went out")
            await self._close(cur, skipped, "skipped", OPTED_OUT)
            if not granted:
                return []
            await cur.execute(
                "UPDATE messages SET status = 'sending', attempts = attempts + 1, "
                "claimed_by = %s, lease_until = %s, updated_at = %s WHERE message_id = ANY(%s)",
                [self.name, now + policy.lease, now, granted],
            )
            await cur.execute(WRITE_INPUTS, [granted])
            claimed = [Claimed(row) for row in await cur.fetchall()]
        written = []
        for c in claimed:
            try:
                c.outgoing = self._write(c.row, now)
            except Exception as error:  # a template or data fault fails this message only
                log.exception("message not written", extra={"message_id": str(c.row["message_id"])})
                await self.record(
                    c.row, Failed(f"could not be written: {type(error).__name__}: {error}")
                )
            else:
                written.append(c)
        return written

    async def _close(self, cur: Any, ids: list[UUID], status: str, reason: str) -> None:
        if not ids:
            return
        await cur.execute(
            "UPDATE messages SET status = %s, reason = %s, claimed_by = NULL, lease_until = NULL,"
            " updated_at = now() WHERE message_id = ANY(%s)",
            [status, reason, ids],
        )
        closed = Counter(
            (r[0], r[1])
            for r in await (
                await cur.connection.execute(
                    "SELECT channel, kind FROM messages WHERE message_id = ANY(%s)", [ids]
                )
            ).fetchall()
        )
        for (channel, kind), count in closed.items():
            self.metrics.outcomes.labels(channel or "none", kind, status).inc(count)

    def _write(self, row: dict[str, Any], now: dt.datetime) -> Outgoing:
        org, appointment = row["organization_id"], row["appointment_id"]

        def url(action: Action, path: str, expires: dt.datetime) -> str:
            link = Link(org, appointment, row["message_id"], action, expires)
            base = self.links_url if path == "links" else self.public_url
            return f"{base}/{path}/{self.signer.sign(link)}"

        kind, email = row["kind"], row["channel"] == "email"
        links: dict[str, str] = {}
        if kind == "offer" and row["hold_expires_at"] is not None:
            links = {"accept": url("accept", "links", row["hold_expires_at"])}
        elif kind not in ("cancelled", "offer"):
            links = {a: url(a, "links", row["start_at"]) for a in ACTIONS_OFFERED}
        written = write(
            Context(
                message_id=row["message_id"],
                appointment_id=appointment,
                kind=kind,
                language=row["language"],
                given_name=row["given_name"],
                organization=row["organization"],
                type_name=row["type_name"],
                patient_facing=row["patient_facing"],
                start=row["start_at"],
                end=row["end_at"],
                location=row["location"],
                address=row["place"],
                time_zone=row["time_zone"],
                version=row["version"],
                written_at=now,
                links=links,
                held_until=row["hold_expires_at"],
            ),
            calendar=email,
        )
        return Outgoing(
            message_id=row["message_id"],
            organization_id=org,
            organization=row["organization"],
            channel=row["channel"],
            address=row["address"],
            subject=written.subject,
            text=written.email if email else written.sms,
            ics=written.ics if email else None,
            method="CANCEL" if kind == "cancelled" else "REQUEST",
            unsubscribe_url=(
                url("unsubscribe", "unsubscribe", now + dt.timedelta(days=365)) if email else None
            ),
        )

    async def _deliver(self, claimed: Claimed) -> None:
        row, outgoing = claimed.row, claimed.outgoing
        assert outgoing is not None
        channel = self.channels.get(row["channel"])
        outcome: Outcome
        if channel is None:
            outcome = Retry(f"no {row['channel']} channel is configured")
        else:
            try:
                outcome = await channel.send(outgoing)
            except Exception as error:  # a channel's bug must not lose the message
                log.exception("channel raised", extra={"message_id": str(row["message_id"])})
                outcome = Retry(f"{type(error).__name__}: {error}")
        await self.record(row, outcome)

    async def record(self, row: dict[str, Any], outcome: Outcome) -> None:
        now = self.clock()
        fence = [row["message_id"], self.name, row["attempts"]]
        where = "WHERE message_id = %s AND status = 'sending' AND claimed_by = %s AND attempts = %s"
        channel = row["channel"]
        match outcome:
            case Sent(reference, delivery):
                sql = (
                    "UPDATE messages SET status = 'sent', sent_at = %s, reference = %s, "
                    "delivery = %s, delivery_at = %s, reason = NULL, lease_until = NULL, "
                    f"updated_at = %s {where}"
                )
                values = [now, reference, delivery, now, now, *fence]
                label = "sent"
                due = row.get("due_at")
                if due is not None:
                    self.metrics.lag.labels(channel).observe(max(0.0, (now - due).total_seconds()))
            case Retry(reason) if row["attempts"] < self.policy.max_attempts:
                retry_at = now + self.policy.backoff(row["attempts"], self.rng)
                sql = (
                    "UPDATE messages SET status = 'pending', retry_at = %s, reason = %s, "
                    f"claimed_by = NULL, lease_until = NULL, updated_at = %s {where}"
                )
                values = [retry_at, reason, now, *fence]
                label = "retried"
            case Retry(reason) | Failed(reason):
                if isinstance(outcome, Retry):
                    reason = f"gave up after {row['attempts']} attempts: {reason}"
                sql = (
                    "UPDATE messages SET status = 'failed', reason = %s, lease_until = NULL, "
                    f"updated_at = %s {where}"
                )
                values = [reason, now, *fence]
                label = "failed"
        if await self._write_outcome(sql, values, row["message_id"]) == 0:
            log.warning(
                "outcome not recorded: the claim was taken over",
                extra={"message_id": str(row["message_id"]), "outcome": label},
            )
            return
        self.metrics.outcomes.labels(channel, row["kind"], label).inc()

    async def _write_outcome(self, sql: str, values: list[Any], message_id: UUID) -> int:
        """Write an outcome, again and again while the database cannot be reached (the
        fence keeps a late write from overwriting another instance's claim). The rows it
        changed."""

        async def write(conn: psycopg.AsyncConnection) -> int:
            return (await conn.execute(sql, values)).rowcount

        return await self.database.when_reachable(
            write, what=f"the outcome of message {message_id}", pause=RECORD_PAUSE,
            most=RECORD_PAUSE_CAP,
        )  # fmt: skip

    async def _renew(self, ids: list[UUID]) -> None:
        """Keep this round's leases from lapsing while its sends are in flight (through a
        database that is briefly unreachable)."""
        while True:
            await asyncio.sleep(self.policy.lease.total_seconds() / 3)
            try:
                async with self.database.pool.connection() as conn:
                    await conn.execute(
                        "UPDATE messages SET lease_until = %s WHERE message_id = ANY(%s) "
                        "AND status = 'sending' AND claimed_by = %s",
                        [self.clock() + self.policy.lease, ids, self.name],
                    )
            except UNREACHABLE as error:
                log.warning("leases not renewed: the database is unreachable",
                            extra={"error": str(error)})  # fmt: skip

    # -- running -----------------------------------------------------------------------

    def wake(self) -> None:
        """Something may be due now (the consumer planned messages)."""
        self._wake.set()

    def start(self, interval: float) -> None:
        self._task = asyncio.create_task(self._run(interval), name="dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for channel in self.channels.values():
            await channel.close()

    async def _run(self, interval: float) -> None:
        while True:
            try:
                claimed = await self.dispatch_due()
            except Exception:
                log.exception("dispatch round failed; trying again")
                claimed = 0
            if claimed:
                continue  # more may be due: claim again at once
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
