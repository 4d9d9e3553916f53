"""Composition root of the availability service."""

from __future__ import annotations

from fastapi import FastAPI

import clinic.availability
from clinic.availability.api import calendars, kpis
from clinic.availability.api.routes import router
from clinic.availability.consumer import TOPICS, ProjectionWriter
from clinic.availability.kpi_gauges import KpiGauges
from clinic.availability.refresher import IndexRefresher
from clinic.availability.settings import AvailabilitySettings
from clinic.availability.store import DDL
from clinic.platform.consumer import ConsumerMetrics, IdempotentConsumer, subscribe_batches
from clinic.platform.lag import LagMetrics, LagMonitor
from clinic.platform.service import create_runtime, create_service_app


def create_app(settings: AvailabilitySettings | None = None) -> FastAPI:
    settings = settings or AvailabilitySettings()
    runtime = create_runtime(settings, topics=TOPICS)
    runtime.migrations += DDL
    app = create_service_app(
        runtime, title="clinic availability", description=clinic.availability.__doc__ or ""
    )
    app.state.settings = settings
    app.include_router(router)
    app.include_router(calendars.router)
    app.include_router(kpis.router)
    writer = ProjectionWriter(runtime.registry)
    consumer = IdempotentConsumer(
        runtime.database,
        settings.consumer_group,
        writer.write_one,
        ConsumerMetrics(runtime.registry),
        batch_handler=writer.write_many,
    )
    subscribe_batches(runtime.broker, consumer, TOPICS, settings.consumer_group)
    refresher = IndexRefresher(runtime.database, settings.refresh_interval_seconds)
    app.state.refresher = refresher
    lag = LagMonitor(
        settings.kafka_bootstrap_servers,
        settings.consumer_group,
        TOPICS,
        LagMetrics(runtime.registry),
        settings.consumer_lag_interval_seconds,
    )

    gauges = KpiGauges(
        runtime.registry,
        runtime.database,
        refresher,
        settings.kpi_gauge_seconds,
        settings.kpi_gauge_days,
    )

    async def started() -> None:
        lag.start()
        refresher.start()
        gauges.start()
        # Start-up ends once the index is loaded, so the heap settled after start-up
        # (see clinic.platform.service.settle_heap) includes it.
        await refresher.loaded.wait()

    runtime.started = started
    runtime.stopping.append(gauges.stop)
    runtime.stopping.append(refresher.stop)
    runtime.stopping.append(lag.stop)
    runtime.readiness.add("index", refresher.check)
    return app
