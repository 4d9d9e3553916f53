"""Composition root of the notification service."""

from __future__ import annotations

from fastapi import FastAPI

import clinic.notification
from clinic.notification.consumer import TOPICS, ProjectionWriter
from clinic.notification.planning import QuietHours
from clinic.notification.settings import NotificationSettings
from clinic.notification.store import DDL
from clinic.platform.consumer import ConsumerMetrics, IdempotentConsumer, subscribe_batches
from clinic.platform.lag import LagMetrics, LagMonitor
from clinic.platform.service import create_runtime, create_service_app


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()
    runtime = create_runtime(settings, topics=TOPICS)
    runtime.migrations += DDL
    app = create_service_app(
        runtime, title="clinic notification", description=clinic.notification.__doc__ or ""
    )
    app.state.settings = settings
    writer = ProjectionWriter(
        runtime.registry,
        QuietHours(settings.quiet_hours_start, settings.quiet_hours_end),
        settings.default_language,
    )
    consumer = IdempotentConsumer(
        runtime.database,
        settings.consumer_group,
        writer.write_one,
        ConsumerMetrics(runtime.registry),
        batch_handler=writer.write_many,
    )
    subscribe_batches(runtime.broker, consumer, TOPICS, settings.consumer_group)
    lag = LagMonitor(
        settings.kafka_bootstrap_servers,
        settings.consumer_group,
        TOPICS,
        LagMetrics(runtime.registry),
        settings.consumer_lag_interval_seconds,
    )

    async def started() -> None:
        lag.start()

    runtime.started = started
    runtime.stopping.append(lag.stop)
    return app
