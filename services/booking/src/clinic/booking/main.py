"""Composition root of the booking service."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI
from psycopg.conninfo import conninfo_to_dict

import clinic.booking
from clinic.booking.api.answers import CommandMetrics
from clinic.booking.api.routes import router
from clinic.booking.application import Bookings
from clinic.booking.directory import (
    DIRECTORY_DDL,
    AppointmentDirectory,
    DirectoryMetrics,
    HoldSweeper,
)
from clinic.booking.domain.errors import IdempotencyKeyReusedError
from clinic.booking.outbox import EventLog, Replay
from clinic.booking.relay import RELAY_DDL, Relay, RelayMetrics
from clinic.booking.settings import BookingSettings
from clinic.events import ALL_TOPICS
from clinic.platform.kafka import KafkaAccess
from clinic.platform.service import create_runtime, create_service_app

log = logging.getLogger(__name__)


def event_store_env(settings: BookingSettings) -> dict[str, str]:
    """eventsourcing's PostgreSQL settings, from the service's database URL and schema."""
    params = conninfo_to_dict(settings.database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname", "clinic")),
        "POSTGRES_HOST": str(params.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "clinic")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_SCHEMA": settings.schema_name,
        "POSTGRES_POOL_SIZE": str(settings.event_store_pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.event_store_pool_size),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        "POSTGRES_PRE_PING": "n",
        "APPLICATION_RECORDER_TOPIC": "clinic.booking.event_store:BookingRecorder",
    }


def open_bookings(settings: BookingSettings) -> Bookings:
    return Bookings(
        env=event_store_env(settings),
        max_attempts=settings.max_attempts,
        hold_minutes=settings.hold_minutes,
        alternatives=settings.alternatives,
    )


def create_app(settings: BookingSettings | None = None) -> FastAPI:
    settings = settings or BookingSettings()
    runtime = create_runtime(settings, topics=[str(t) for t in ALL_TOPICS])
    runtime.migrations += RELAY_DDL + DIRECTORY_DDL
    app = create_service_app(
        runtime, title="clinic booking", description=clinic.booking.__doc__ or ""
    )
    app.state.bookings = None
    app.state.demo = None
    app.state.relay = None
    app.state.replay = None
    app.state.directory = None
    tasks: list[asyncio.Task[None]] = []
    relay_metrics = RelayMetrics(runtime.registry)
    directory_metrics = DirectoryMetrics(runtime.registry)
    app.state.command_metrics = CommandMetrics(runtime.registry)
    app.include_router(router)

    async def started() -> None:
        bookings = await asyncio.to_thread(open_bookings, settings)
        if settings.load_demo_data:
            from clinic.booking.demo import load_demo

            try:
                summary = await asyncio.to_thread(load_demo, bookings)
            except IdempotencyKeyReusedError as error:
                # The database holds the demo as an earlier version wrote it: keep it.
                log.warning(
                    "demo data not loaded: this database holds another version of the demo "
                    "(make reset wipes it for the current one)",
                    extra={"error": str(error)},
                )
            else:
                log.info("demo data ready", extra={"demo": summary})
                app.state.demo = summary
        # Before serving: the first bookings then read reference data from memory.
        cached = await asyncio.to_thread(bookings.reference.warm)
        log.info("reference data cached", extra={"aggregates": cached})
        app.state.bookings = bookings
        event_log = EventLog.of(bookings)
        app.state.replay = Replay(event_log)
        directory = AppointmentDirectory(event_log, runtime.database, directory_metrics)
        sweeper = HoldSweeper(
            bookings, runtime.database, directory_metrics, settings.hold_sweep_seconds
        )
        tasks.append(asyncio.create_task(directory.follow(), name="appointment-directory"))
        tasks.append(asyncio.create_task(sweeper.run(), name="hold-sweeper"))
        app.state.directory = directory
        if settings.relay_enabled:
            assert runtime.broker is not None  # booking's runtime is made with Kafka
            relay = Relay(
                event_log,
                runtime.broker,
                runtime.database.conninfo,
                KafkaAccess.of(settings),
                settings.kafka_partitions,
                relay_metrics,
                broker_keeps_data=settings.kafka_broker_keeps_data,
                replication_factor=settings.kafka_replication_factor,
                batch_size=settings.relay_batch_size,
                idle_seconds=settings.relay_idle_seconds,
                tracer=runtime.tracer_provider.get_tracer("clinic.booking.relay"),
            )
            relay.start()
            app.state.relay = relay

    async def stopping() -> None:
        app.state.directory = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        tasks.clear()
        relay = app.state.relay
        app.state.relay = None
        if relay is not None:
            await relay.stop()
        bookings = app.state.bookings
        app.state.bookings = None
        app.state.replay = None
        if bookings is not None:
            await asyncio.to_thread(bookings.close)

    async def event_store_ready() -> None:
        if app.state.bookings is None:
            raise RuntimeError("event store not open yet")

    runtime.started = started
    runtime.stopping.append(stopping)
    runtime.readiness.add("event_store", event_store_ready)
    return app
