"""The projection consumer: booking's topics -> the availability tables, idempotently, in
batches, plus a change feed the in-memory index follows."""

from __future__ import annotations

import datetime as dt

import psycopg
from prometheus_client import CollectorRegistry, Gauge

from clinic.availability.projection import Change, plan
from clinic.availability.store import apply_ops, record_changes
from clinic.availability.views import Stale
from clinic.events import Envelope, Topic

TOPICS = [
    str(Topic.REFERENCE),
    str(Topic.SCHEDULES),
    str(Topic.RESOURCE_DAYS),
    str(Topic.APPOINTMENTS),
]


class ProjectionWriter:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.lag = Gauge(
            "projection_event_lag_seconds",
            "Age of the newest event in the last applied batch (consumer lag in time).",
            ["consumer"],
            registry=registry,
        )
        self.last_applied = Gauge(
            "projection_last_applied_timestamp_seconds",
            "When the projection last applied an event.",
            ["consumer"],
            registry=registry,
        )

    async def write_one(self, conn: psycopg.AsyncConnection, envelope: Envelope) -> None:
        await self.write_many(conn, [envelope])

    async def write_many(self, conn: psycopg.AsyncConnection, envelopes: list[Envelope]) -> None:
        changes: list[Change] = []
        stale = Stale()
        for envelope in envelopes:
            ops, touched = plan(envelope)
            await stale.note(conn, ops)
            await apply_ops(conn, ops)
            changes += touched
        await stale.render(conn)
        await record_changes(conn, changes)
        if envelopes:
            now = dt.datetime.now(dt.UTC)
            newest = max(e.occurred_at for e in envelopes)
            self.lag.labels("availability").set(max(0.0, (now - newest).total_seconds()))
            self.last_applied.labels("availability").set(now.timestamp())
