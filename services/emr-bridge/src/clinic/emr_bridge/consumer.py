"""The projection consumer: booking's topics -> the bridge's tables and FHIR resources,
idempotently, in batches (the platform's consumer records each event's (aggregate, version)
in the same transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import psycopg
from prometheus_client import CollectorRegistry, Counter

from clinic.emr_bridge.outbox import enqueue
from clinic.emr_bridge.store import write
from clinic.events import Envelope, Topic
from clinic.platform.consumer import ProjectionFreshness

TOPICS = [
    str(Topic.REFERENCE),
    str(Topic.PATIENTS),
    str(Topic.SCHEDULES),
    str(Topic.RESOURCE_DAYS),
    str(Topic.APPOINTMENTS),
]


class ProjectionWriter:
    """Applies each event of a batch in order: each resource it changed gets its next
    version, and each EMR endpoint of the organisation the SIU message it makes."""

    def __init__(
        self,
        registry: CollectorRegistry,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.clock = clock
        self.freshness = ProjectionFreshness(registry, "emr-bridge")
        self.versions = Counter(
            "fhir_resource_versions_total",
            "FHIR resource versions written, by resource type.",
            ["resource_type"],
            registry=registry,
        )

    async def write_one(self, conn: psycopg.AsyncConnection, envelope: Envelope) -> None:
        await self.write_many(conn, [envelope])

    async def write_many(self, conn: psycopg.AsyncConnection, envelopes: list[Envelope]) -> None:
        now = self.clock()
        for envelope in envelopes:
            for version in await write(conn, envelope):
                self.versions.labels(version.resource_type).inc()
            await enqueue(conn, envelope, now)
        self.freshness.applied(envelopes)
