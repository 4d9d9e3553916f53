"""Booking's directory of appointments, and the hold sweeper that reads it.

The event store answers "what is this appointment?" by its id. Two questions need an index
instead: "which appointments has this patient?" and "which holds have run out?". The
directory answers both from a table in booking's own database: one row per appointment, as
it stands after its latest event (status, times, hold expiry), kept by following the event
store's notification log (appointment events only).

- Every replica follows the log. The follower's position is a row read ``FOR UPDATE`` in the
  transaction that writes the rows and moves it, so replicas take turns and each event is
  applied once; a row is only replaced by a later version of its appointment.
- A commit wakes the follower (the event store NOTIFYs), so the directory trails the event
  store by milliseconds; it is a projection, and a client that needs its own write at once
  reads the appointment by id.
- The sweeper, in every replica, picks rows of holds past their expiry ``FOR UPDATE SKIP
  LOCKED`` (replicas share the work, never the same row at once) and asks booking to record
  ``HoldExpired`` with the request id ``expire-hold:{id}``: the decision loop records it
  once whoever asks, and the hold's time was free to the next booking from the expiry on
  whether or not it is recorded yet. The delay from expiry to the event is at most the sweep
  interval plus the directory's lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

from prometheus_client import CollectorRegistry, Counter, Gauge

from clinic.booking.application import Bookings
from clinic.booking.commands import ExpireHold
from clinic.booking.domain.appointment import Appointment
from clinic.booking.domain.errors import BookingError
from clinic.booking.outbox import EventLog, OutboxReader, wake_on_notify
from clinic.booking.reference_cache import event_topics
from clinic.events.types import format_utc
from clinic.platform.database import Database
from clinic.platform.paging import after, split_page

log = logging.getLogger(__name__)

DIRECTORY_DDL = [
    """
    CREATE TABLE IF NOT EXISTS appointment_directory (
        appointment_id uuid PRIMARY KEY,
        organization_id uuid NOT NULL,
        patient_id uuid NOT NULL,
        appointment_type_id uuid NOT NULL,
        location_id uuid NOT NULL,
        status text NOT NULL,
        start_at timestamptz NOT NULL,
        end_at timestamptz NOT NULL,
        hold_expires_at timestamptz,
        resource_ids uuid[] NOT NULL,
        version integer NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """CREATE INDEX IF NOT EXISTS appointment_directory_by_patient
       ON appointment_directory (organization_id, patient_id, start_at, appointment_id)""",
    """CREATE INDEX IF NOT EXISTS appointment_directory_pending_holds
       ON appointment_directory (hold_expires_at) WHERE status = 'pending'""",
    """
    CREATE TABLE IF NOT EXISTS directory_position (
        name text PRIMARY KEY,
        position bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "INSERT INTO directory_position (name, position) VALUES ('appointments', 0) "
    "ON CONFLICT (name) DO NOTHING",
]

UPSERT = """
INSERT INTO appointment_directory (appointment_id, organization_id, patient_id,
    appointment_type_id, location_id, status, start_at, end_at, hold_expires_at,
    resource_ids, version)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (appointment_id) DO UPDATE SET
    status = EXCLUDED.status, start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at,
    hold_expires_at = EXCLUDED.hold_expires_at, resource_ids = EXCLUDED.resource_ids,
    patient_id = EXCLUDED.patient_id, version = EXCLUDED.version, updated_at = now()
WHERE appointment_directory.version < EXCLUDED.version
"""

APPOINTMENT_TOPICS = event_topics((Appointment,))


class DirectoryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag = Gauge(
            "booking_directory_lag_events",
            "Events in the event store the appointment directory has still to read, at most "
            "(0 once it has applied every appointment event: other events do not count).",
            registry=registry,
        )
        self.expired = Counter(
            "booking_holds_swept_total",
            "Holds past their expiry this replica's sweeper recorded as expired.",
            registry=registry,
        )
        self.sweep_errors = Counter(
            "booking_hold_sweep_errors_total",
            "Sweeps that failed (database or event store unreachable); the next one retries.",
            registry=registry,
        )


def _row(appointment: Appointment) -> tuple[Any, ...]:
    return (
        appointment.id,
        appointment.organization_id,
        appointment.patient_id,
        appointment.appointment_type_id,
        appointment.location_id,
        str(appointment.status),
        appointment.start,
        appointment.end,
        appointment.hold_expires_at if str(appointment.status) == "pending" else None,
        sorted({p.resource_id for p in appointment.participants}),
        appointment.version,
    )


class AppointmentDirectory:
    def __init__(
        self,
        event_log: EventLog,
        database: Database,
        metrics: DirectoryMetrics,
        batch_size: int = 500,
        idle_seconds: float = 0.5,
    ) -> None:
        self.event_log = event_log
        self.database = database
        self.metrics = metrics
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.reader = OutboxReader(event_log)
        self.wake = asyncio.Event()

    async def follow(self) -> None:
        """Apply the log for ever; woken by each commit, or after ``idle_seconds``."""
        listener = asyncio.create_task(
            wake_on_notify(self.database.conninfo, self.event_log.channel, self.wake)
        )
        try:
            while True:
                self.wake.clear()
                try:
                    applied = await self.step()
                except Exception:  # the loop outlives any failure; it retries
                    log.exception("directory could not follow the log")
                    await asyncio.sleep(1.0)
                    continue
                if applied == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), self.idle_seconds)
        finally:
            listener.cancel()

    async def step(self) -> int:
        """Apply the next batch of appointment events, in one transaction with the position."""
        async with self.database.transaction() as conn:
            row = await (
                await conn.execute(
                    "SELECT position FROM directory_position WHERE name = 'appointments' FOR UPDATE"
                )
            ).fetchone()
            position = int(row[0]) if row else 0
            top, states = await asyncio.to_thread(self._states_after, position)
            if not states:
                # Every appointment event up to the top is applied; what follows the
                # position is other topics' events, which the directory never reads.
                self.metrics.lag.set(0)
                return 0
            latest = {appointment.id: appointment for _, appointment in states}
            async with conn.cursor() as cursor:
                await cursor.executemany(UPSERT, [_row(a) for a in latest.values()])
            await conn.execute(
                "UPDATE directory_position SET position = %s, updated_at = now() "
                "WHERE name = 'appointments'",
                (states[-1][0],),
            )
            # A batch shorter than asked for read every appointment event up to the top.
            behind = top - states[-1][0] if len(states) >= self.batch_size else 0
            self.metrics.lag.set(max(0, behind))
            return len(states)

    def _states_after(self, position: int) -> tuple[int, list[tuple[int, Appointment]]]:
        recorder = self.event_log.recorder
        top, notifications = recorder.notifications_since(  # type: ignore[attr-defined]
            position, APPOINTMENT_TOPICS, self.batch_size
        )
        states = []
        for notification in notifications:
            event = self.event_log.mapper.to_domain_event(notification)
            states.append((notification.id, self.reader.after(event)))
        return top, states

    # ------------------------------------------------------------------ a patient's

    async def of_patients(
        self,
        organization_id: UUID,
        patient_ids: Sequence[UUID],
        statuses: Sequence[str],
        since: dt.datetime | None,
        until: dt.datetime | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the patients' appointments by start time, and the cursor of the next."""
        where = ["organization_id = %s", "patient_id = ANY(%s)"]
        params: list[Any] = [organization_id, list(patient_ids)]
        if statuses:
            where.append("status = ANY(%s)")
            params.append(list(statuses))
        if since is not None:
            where.append("end_at > %s")
            params.append(since)
        if until is not None:
            where.append("start_at < %s")
            params.append(until)
        paging, cursor_params = after(cursor, "start_at", "appointment_id")
        params += [*cursor_params, limit + 1]
        query = (
            "SELECT appointment_id, patient_id, appointment_type_id, location_id, status, "
            "start_at, end_at, hold_expires_at, resource_ids, version "
            f"FROM appointment_directory WHERE {' AND '.join(where)}{paging} "
            "ORDER BY start_at, appointment_id LIMIT %s"
        )
        async with self.database.transaction() as conn:
            rows = await (await conn.execute(query, params)).fetchall()
        page, following = split_page(rows, limit, lambda row: (row[5], row[0]))
        return [_entry(row) for row in page], following


def format_time(value: dt.datetime | None) -> str | None:
    return None if value is None else format_utc(value)


def _entry(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": str(row[0]),
        "patient_id": str(row[1]),
        "appointment_type_id": str(row[2]),
        "location_id": str(row[3]),
        "status": row[4],
        "start": format_time(row[5]),
        "end": format_time(row[6]),
        "hold_expires_at": format_time(row[7]),
        "resource_ids": [str(r) for r in row[8]],
        "version": row[9],
    }


# ---------------------------------------------------------------------- the sweeper


class HoldSweeper:
    def __init__(
        self,
        bookings: Bookings,
        database: Database,
        metrics: DirectoryMetrics,
        interval_seconds: float,
        batch_size: int = 100,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.bookings = bookings
        self.database = database
        self.metrics = metrics
        self.interval_seconds = interval_seconds
        self.batch_size = batch_size
        self.clock = clock or bookings.clock

    async def run(self) -> None:
        while True:
            try:
                while await self.sweep() == self.batch_size:
                    pass  # a full batch: more may be due
            except Exception:  # the loop outlives any failure; the next sweep retries
                self.metrics.sweep_errors.inc()
                log.exception("hold sweep failed")
            await asyncio.sleep(self.interval_seconds)

    async def sweep(self) -> int:
        """Record every hold past its expiry that no other replica is recording; how many
        this replica looked at."""
        async with self.database.transaction() as conn:
            due = await (
                await conn.execute(
                    "SELECT appointment_id, organization_id FROM appointment_directory "
                    "WHERE status = 'pending' AND hold_expires_at <= %s "
                    "ORDER BY hold_expires_at LIMIT %s FOR UPDATE SKIP LOCKED",
                    (self.clock(), self.batch_size),
                )
            ).fetchall()
            for appointment_id, organization_id in due:
                command = ExpireHold.of(organization_id, appointment_id)
                try:
                    outcome = await asyncio.to_thread(self.bookings.handle, command)
                except BookingError as refused:
                    log.warning(
                        "hold not expired",
                        extra={"appointment_id": str(appointment_id), "error": str(refused)},
                    )
                    continue
                if not outcome.replayed:
                    self.metrics.expired.inc()
                # What it is now, until the directory applies the event itself.
                await conn.execute(
                    "UPDATE appointment_directory SET status = %s, hold_expires_at = NULL "
                    "WHERE appointment_id = %s",
                    (outcome.body["status"], appointment_id),
                )
        return len(due)
