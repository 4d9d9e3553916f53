"""Composition root of the availability service."""

from __future__ import annotations

from fastapi import FastAPI

import clinic.availability
from clinic.availability.api import calendars, directory, kpis
from clinic.availability.api.routes import router
from clinic.availability.consumer import TOPICS, ProjectionWriter
from clinic.availability.kpi_gauges import KpiGauges
from clinic.availability.rebuild import RebuildMetrics
from clinic.availability.refresher import IndexRefresher
from clinic.availability.settings import AvailabilitySettings
from clinic.availability.store import DDL
from clinic.platform import dead_letters
from clinic.platform.service import create_runtime, create_service_app, subscribe_projection


def create_app(settings: AvailabilitySettings | None = None) -> FastAPI:
    settings = settings or AvailabilitySettings()
    runtime = create_runtime(settings, topics=TOPICS)
    runtime.migrations += DDL
    app = create_service_app(
        runtime, title="clinic availability", description=clinic.availability.__doc__ or ""
    )
    app.state.settings = settings
    app.state.rebuild_metrics = RebuildMetrics(runtime.registry)
    app.include_router(router)
    app.include_router(dead_letters.router)
    app.include_router(calendars.router)
    app.include_router(kpis.router)
    app.include_router(directory.router)
    writer = ProjectionWriter(runtime.registry)
    lag = subscribe_projection(
        runtime, TOPICS, settings.consumer_group, writer.write_one, writer.write_many
    )
    refresher = IndexRefresher(runtime.database, settings.refresh_interval_seconds)
    app.state.refresher = refresher

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
    runtime.readiness.add("index", refresher.check)
    return app
