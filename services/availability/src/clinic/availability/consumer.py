"""The projection consumer: booking's topics -> the availability tables, idempotently, in
batches, plus a change feed the in-memory index follows."""

from __future__ import annotations

import psycopg
from prometheus_client import CollectorRegistry

from clinic.availability.projection import Change, plan
from clinic.availability.store import apply_ops, record_changes
from clinic.availability.views import Stale
from clinic.events import Envelope, Topic
from clinic.platform.consumer import ProjectionFreshness

TOPICS = [
    str(Topic.REFERENCE),
    str(Topic.SCHEDULES),
    str(Topic.RESOURCE_DAYS),
    str(Topic.APPOINTMENTS),
]


class ProjectionWriter:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.freshness = ProjectionFreshness(registry, "availability")

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
        self.freshness.applied(envelopes)
