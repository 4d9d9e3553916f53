"""The projection consumer: booking's topics -> notification's tables, idempotently, in
batches (the platform's consumer records each event's (aggregate, version) in the same
transaction)."""

from __future__ import annotations

import psycopg
from prometheus_client import CollectorRegistry

from clinic.events import Envelope, Topic
from clinic.notification.projection import plan
from clinic.notification.store import apply_ops
from clinic.platform.consumer import ProjectionFreshness

TOPICS = [str(Topic.REFERENCE), str(Topic.PATIENTS), str(Topic.APPOINTMENTS)]


class ProjectionWriter:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.freshness = ProjectionFreshness(registry, "notification")

    async def write_one(self, conn: psycopg.AsyncConnection, envelope: Envelope) -> None:
        await self.write_many(conn, [envelope])

    async def write_many(self, conn: psycopg.AsyncConnection, envelopes: list[Envelope]) -> None:
        for envelope in envelopes:
            await apply_ops(conn, plan(envelope))
        self.freshness.applied(envelopes)
