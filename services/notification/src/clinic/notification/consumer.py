"""The projection consumer: booking's topics -> notification's tables, idempotently, in
batches (the platform's consumer records each event's (aggregate, version) in the same
transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import psycopg
from prometheus_client import CollectorRegistry

from clinic.events import Envelope, Topic
from clinic.notification import waitlist
from clinic.notification.messages import Touched, reconcile
from clinic.notification.planning import QuietHours
from clinic.notification.projection import plan
from clinic.notification.store import apply_ops
from clinic.platform.consumer import ProjectionFreshness

TOPICS = [str(Topic.REFERENCE), str(Topic.PATIENTS), str(Topic.APPOINTMENTS), str(Topic.WAITLIST)]


class ProjectionWriter:
    """Applies each batch to the tables (noticing time that frees up for the waitlist first),
    then makes the messages of every appointment it may have changed follow their plan, in
    the same transaction."""

    def __init__(
        self,
        registry: CollectorRegistry,
        quiet: QuietHours,
        language: str = "en",
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.freshness = ProjectionFreshness(registry, "notification")
        self.offer_metrics = waitlist.OfferMetrics(registry)
        self.quiet = quiet
        self.language = language
        self.clock = clock

    async def write_one(self, conn: psycopg.AsyncConnection, envelope: Envelope) -> None:
        await self.write_many(conn, [envelope])

    async def write_many(self, conn: psycopg.AsyncConnection, envelopes: list[Envelope]) -> None:
        touched = Touched()
        now = self.clock()
        for envelope in envelopes:
            for outcome in await waitlist.notice(conn, envelope, now):
                self.offer_metrics.count(outcome)
            ops = plan(envelope)
            touched.note(ops)
            await apply_ops(conn, ops)
        ids = await touched.appointment_ids(conn, now)
        await reconcile(conn, ids, self.quiet, now, self.language)
        self.freshness.applied(envelopes)
