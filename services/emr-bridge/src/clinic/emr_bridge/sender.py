"""Sending the outbox to each EMR endpoint over MLLP, one message at a time, each waiting for
its ACK (original mode).

- One sender per endpoint across all replicas: a worker holds a PostgreSQL advisory lock for
  the endpoint while it sends (a crashed replica's lock goes with its connection).
- The next message is the oldest pending one whose appointment has nothing older waiting
  (pending or parked): order per appointment is kept, and other appointments are not held up
  by a parked one.
- ``AA`` (or ``CA``) acknowledges; ``AR`` (or ``CR``) parks the message with the EMR's
  reason at once; ``AE`` (or ``CE``), an error on the EMR's side, is tried again with backoff
  and parked after ``error_retries`` tries;
- no ACK in time, an ACK for another control id, a refused or dropped connection are
  temporary: the connection is closed and the same message (same control id, same text) is
  sent again after a backoff that doubles up to a cap, with jitter.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from hl7.mllp import MLLPStreamReader, MLLPStreamWriter
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from clinic.emr_bridge import siu
from clinic.emr_bridge.outbox import (
    FACTS_WAIT,
    EndpointRow,
    active_endpoint,
    endpoints,
    render,
)
from clinic.platform.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    ack_timeout: float = 30.0
    connect_timeout: float = 10.0
    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    idle_seconds: float = 30.0
    """A worker with nothing to send for this long closes its connection and stops."""
    error_retries: int = 5
    """Tries of a message the EMR answers AE (an error on its side, often passing) before it
    is parked; AR (rejected as such) parks it at once."""


class SenderMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages = Counter(
            "hl7_messages_total",
            "SIU messages sent, by trigger and outcome (acked, rejected, failed).",
            ["trigger", "outcome"],
            registry=registry,
        )
        self.ack_failures = Counter(
            "hl7_ack_failures_total",
            "Messages an EMR answered with an error (AE) or a rejection (AR); no answer at "
            'all (a timeout, a dropped connection) is hl7_messages_total{outcome="failed"}.',
            ["endpoint"],
            registry=registry,
        )
        self.round_trip = Histogram(
            "hl7_ack_seconds",
            "From sending a message to its ACK.",
            registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.peer_up = Gauge(
            "hl7_peer_up",
            "1 when the last attempt to reach the endpoint got an answer.",
            ["endpoint"],
            registry=registry,
        )


class Temporary(Exception):
    """Try the same message again later."""


def _backoff(policy: Policy, attempts: int) -> float:
    delay = min(policy.backoff_cap, policy.backoff_base * 2 ** max(0, attempts - 1))
    return float(delay * random.uniform(0.5, 1.0))


class Connection:
    """One MLLP connection to an endpoint, opened when needed."""

    def __init__(self, endpoint: EndpointRow, policy: Policy) -> None:
        self.endpoint = endpoint
        self.policy = policy
        self.reader: MLLPStreamReader | None = None
        self.writer: MLLPStreamWriter | None = None

    async def exchange(self, body: str) -> str:
        if self.writer is None:
            loop = asyncio.get_running_loop()
            reader = MLLPStreamReader(loop=loop)
            protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
            try:
                transport, _ = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: protocol, self.endpoint.host, self.endpoint.port
                    ),
                    self.policy.connect_timeout,
                )
            except (OSError, TimeoutError) as error:
                raise Temporary(f"cannot connect: {error!r}") from None
            self.reader = reader
            self.writer = MLLPStreamWriter(transport, protocol, reader, loop)
        assert self.reader is not None
        try:
            self.writer.writeblock(body.encode("utf-8"))
            await self.writer.drain()
            async with asyncio.timeout(self.policy.ack_timeout):
                block = await self.reader.readblock()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
            await self.close()
            raise Temporary(f"no ACK: {error!r}") from None
        return bytes(block).decode("utf-8", errors="replace")

    async def close(self) -> None:
        writer, self.writer, self.reader = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()


NEXT = """SELECT seq, control_id, trigger, body, attempts, visit, created_at FROM hl7_outbox o
    WHERE o.endpoint_id = %s AND o.status = 'pending' AND o.next_attempt_at <= %s
      AND NOT EXISTS (SELECT 1 FROM hl7_outbox p WHERE p.endpoint_id = o.endpoint_id
          AND p.order_key = o.order_key AND p.seq < o.seq
          AND (p.status = 'parked' OR (p.status = 'pending' AND p.next_attempt_at > %s)))
    ORDER BY o.seq LIMIT 100"""
"""The messages that may go now, oldest first (at most 100): none behind an older message of
its appointment that is parked or waiting for its retry. A round sends them in this order and
stops at the first that is not acknowledged, so an appointment's messages never overtake."""


class Sender:
    """Starts a worker for every endpoint with messages waiting, and wakes them."""

    def __init__(
        self,
        database: Database,
        metrics: SenderMetrics,
        policy: Policy | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.database = database
        self.metrics = metrics
        self.policy = policy or Policy()
        self.clock = clock
        self.workers: dict[UUID, asyncio.Task[None]] = {}
        self.wakes: dict[UUID, asyncio.Event] = {}
        self.task: asyncio.Task[None] | None = None
        self.interval = 0.5

    def start(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.task = asyncio.create_task(self._run(), name="hl7-sender")

    def wake(self) -> None:
        for event in self.wakes.values():
            event.set()

    async def stop(self) -> None:
        tasks = [t for t in (self.task, *self.workers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        while True:
            try:
                async with self.database.pool.connection() as conn:
                    waiting = await self._waiting(conn)
                for endpoint in waiting:
                    worker = self.workers.get(endpoint.endpoint_id)
                    if worker is None or worker.done():
                        self.wakes[endpoint.endpoint_id] = asyncio.Event()
                        self.workers[endpoint.endpoint_id] = asyncio.create_task(
                            self._work(endpoint), name=f"hl7-{endpoint.name}"
                        )
            except (psycopg.Error, OSError):
                log.warning("cannot look for HL7 messages to send", exc_info=True)
            await asyncio.sleep(self.interval)

    async def _waiting(self, conn: psycopg.AsyncConnection) -> list[EndpointRow]:
        cursor = await conn.execute(
            "SELECT DISTINCT endpoint_id FROM hl7_outbox WHERE status = 'pending'"
        )
        ids = {r for (r,) in await cursor.fetchall()}
        return [e for e in await endpoints(conn) if e.endpoint_id in ids]

    async def _work(self, endpoint: EndpointRow) -> None:
        """Send the endpoint's messages while this replica holds its lock."""
        async with self.database.pool.connection() as locked:
            cursor = await locked.execute(
                "SELECT pg_try_advisory_lock(hashtext('hl7-endpoint'), hashtext(%s))",
                [str(endpoint.endpoint_id)],
            )
            row = await cursor.fetchone()
            if not row or not row[0]:
                return  # another replica sends for this endpoint
            await locked.commit()
            await locked.set_autocommit(True)
            connection = Connection(endpoint, self.policy)
            try:
                await self._send_all(endpoint, connection, locked)
            finally:
                await connection.close()
                with contextlib.suppress(psycopg.Error):
                    await locked.execute("SELECT pg_advisory_unlock_all()")
                    await locked.set_autocommit(False)

    async def _send_all(
        self, endpoint: EndpointRow, connection: Connection, conn: psycopg.AsyncConnection
    ) -> None:
        """Send round after round of the messages that may go now, on the worker's own
        database connection; each outcome is recorded while the next message goes, in
        order (a crash in between sends a message again, with its control id: at least
        once, never out of order)."""
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        wake = self.wakes[endpoint.endpoint_id]
        while True:
            # The endpoint as it stands: ops may have moved it (a new host or port) while
            # its messages failed against the old address, or turned it off.
            current = await active_endpoint(conn, endpoint.endpoint_id)
            if current is None:
                return  # turned off: its messages wait for it
            if (current.host, current.port) != (endpoint.host, endpoint.port):
                await connection.close()
                log.info(
                    "HL7 endpoint moved: sending to its new address",
                    extra={"endpoint": current.name, "host": current.host, "port": current.port},
                )
            endpoint = connection.endpoint = current
            now = self.clock()
            cursor = await conn.execute(NEXT, [endpoint.endpoint_id, now, now])
            batch = await cursor.fetchall()
            if not batch:
                if loop.time() - idle_since > self.policy.idle_seconds:
                    return
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self.interval)
                continue
            idle_since = loop.time()
            recording: asyncio.Task[None] | None = None
            try:
                for seq, control_id, trigger, body, attempts, visit, created in batch:
                    if body is None:  # its first send: written now, kept for every retry
                        if recording is not None:
                            await recording
                            recording = None
                        body = await self._written(
                            conn, endpoint, seq, control_id, trigger, visit, created
                        )
                        if body is None:
                            break  # its patient or clinic is not known yet: look again
                    outcome = await self._exchange(
                        endpoint, connection, control_id, trigger, body, attempts
                    )
                    if recording is not None:
                        await recording  # outcomes are recorded in order
                    recording = asyncio.create_task(self._record(conn, seq, outcome))
                    if outcome.get("status") != "acked":
                        break  # look again: a parked or failed message changes what may go
            finally:
                if recording is not None:
                    await recording

    async def _exchange(
        self,
        endpoint: EndpointRow,
        connection: Connection,
        control_id: str,
        trigger: str,
        body: str,
        attempts: int,
    ) -> dict[str, Any]:
        """Send one message and read its ACK: the changes to record."""
        started = asyncio.get_running_loop().time()
        outcome: dict[str, Any]
        try:
            ack = await connection.exchange(body)
            code, acknowledged, error = siu.parse_ack(ack)
            if acknowledged != control_id:
                await connection.close()
                raise Temporary(f"ACK for {acknowledged!r}, not {control_id}")
            self.metrics.peer_up.labels(endpoint.name).set(1)
            self.metrics.round_trip.observe(asyncio.get_running_loop().time() - started)
            if code in ("AA", "CA"):
                outcome = {
                    "status": "acked",
                    "ack_code": code,
                    "acked_at": self.clock(),
                    "last_error": None,
                }
                self.metrics.messages.labels(trigger, "acked").inc()
            elif code in ("AE", "CE") and attempts + 1 < self.policy.error_retries:
                self.metrics.messages.labels(trigger, "error").inc()
                self.metrics.ack_failures.labels(endpoint.name).inc()
                delay = dt.timedelta(seconds=_backoff(self.policy, attempts + 1))
                outcome = {
                    "next_attempt_at": self.clock() + delay,
                    "ack_code": code,
                    "last_error": error or f"ACK {code}",
                }
            else:
                outcome = {
                    "status": "parked",
                    "ack_code": code or "?",
                    "last_error": error or f"ACK {code or 'without MSA-1'}",
                }
                self.metrics.messages.labels(trigger, "rejected").inc()
                self.metrics.ack_failures.labels(endpoint.name).inc()
                log.warning(
                    "EMR rejected an HL7 message",
                    extra={"endpoint": endpoint.name, "control_id": control_id, "ack": code},
                )
        except Temporary as failure:
            self.metrics.peer_up.labels(endpoint.name).set(0)
            self.metrics.messages.labels(trigger, "failed").inc()
            delay = dt.timedelta(seconds=_backoff(self.policy, attempts + 1))
            outcome = {"next_attempt_at": self.clock() + delay, "last_error": str(failure)}
        return outcome

    async def _written(
        self,
        conn: psycopg.AsyncConnection,
        endpoint: EndpointRow,
        seq: int,
        control_id: str,
        trigger: str,
        visit: dict[str, Any],
        created: dt.datetime,
    ) -> str | None:
        """The message's text, stored before it is sent; None (and a look again in a
        second) while its patient or clinic has not reached the projection yet."""
        now = self.clock()
        body = await render(conn, endpoint, trigger, control_id, visit, now - created > FACTS_WAIT)
        if body is None:
            await conn.execute(
                "UPDATE hl7_outbox SET next_attempt_at = %s WHERE seq = %s",
                [now + dt.timedelta(seconds=1), seq],
            )
            return None
        await conn.execute(
            "UPDATE hl7_outbox SET body = %s WHERE seq = %s AND body IS NULL", [body, seq]
        )
        return body

    @staticmethod
    async def _record(conn: psycopg.AsyncConnection, seq: int, outcome: dict[str, Any]) -> None:
        """Record an outcome (the worker's connection is in autocommit: one round trip,
        made while the next message is on its way)."""
        assignments = ", ".join(f"{k} = %s" for k in outcome)
        await conn.execute(
            f"UPDATE hl7_outbox SET attempts = attempts + 1, {assignments}"
            " WHERE seq = %s AND status = 'pending'",
            [*outcome.values(), seq],
        )
