"""The composition every service shares: one runtime (settings, telemetry, metrics,
database, broker) and one FastAPI app whose lifespan opens and closes it.

A service's ``create_app(settings)`` builds a :class:`Runtime`, adds its own routes,
migrations, subscribers and background tasks, and returns :func:`create_service_app`.
Nothing connects at import time; nothing connects before the lifespan starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from starlette.middleware import Middleware

from clinic.platform.consumer import (
    CONSUMER_DDL,
    ConsumerMetrics,
    IdempotentConsumer,
    subscribe_batches,
)
from clinic.platform.database import Database
from clinic.platform.health import Readiness, install_health
from clinic.platform.kafka import BrokerConnection, KafkaAccess, create_broker
from clinic.platform.lag import LagMetrics, LagMonitor
from clinic.platform.limits import BodySizeLimit
from clinic.platform.logs import configure_logging
from clinic.platform.metrics import create_registry, install_metrics
from clinic.platform.problem_handlers import install_problem_handlers
from clinic.platform.settings import ServiceSettings
from clinic.platform.telemetry import (
    FRAMEWORK_TELEMETRY_OFF,
    create_tracer_provider,
    install_global,
    instrument_http,
)

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
S = TypeVar("S", bound=ServiceSettings)


@dataclass
class Runtime:
    settings: ServiceSettings
    tracer_provider: TracerProvider
    registry: CollectorRegistry
    database: Database
    broker: KafkaBroker | None
    """None for a service that neither publishes nor consumes (the gateway)."""
    connection: BrokerConnection | None
    readiness: Readiness
    migrations: list[str] = field(default_factory=list)
    started: Hook | None = None
    stopping: list[Hook] = field(default_factory=list)
    migrated: asyncio.Event = field(default_factory=asyncio.Event)
    startup_error: str = "starting"
    failed: str | None = None
    """Why start-up failed (readiness reports it), or None."""
    consumer: IdempotentConsumer | None = None
    """The service's projection consumer (``subscribe_projection``), whose dead letters
    ``clinic.platform.dead_letters`` serves."""
    exit_on_failure: bool = False
    """Stop the process when start-up fails (a served process: its supervisor sees it exit
    with the reason in the log), instead of staying up unready."""


def create_runtime(
    settings: ServiceSettings, topics: list[str] | None = None, *, kafka: bool = True
) -> Runtime:
    """Everything a service needs, built but not connected. ``topics`` (those the service
    publishes or subscribes to) are created on connect if the broker lacks them. A service
    without ``kafka`` (the gateway) gets no broker, no topic creation and no Kafka check in
    its readiness: Kafka being down does not make it unready. (The gateway still reads one
    topic for its live updates, with its own group-less consumer: ``clinic.gateway.live``.)"""
    tracer_provider = create_tracer_provider(
        settings.service_name, settings.otel_exporter_otlp_endpoint
    )
    registry = create_registry()
    database = Database(
        settings.database_url,
        settings.schema_name,
        settings.service_name,
        settings.database_pool_size,
    )
    broker = create_broker(settings, tracer_provider, registry) if kafka else None
    connection = (
        BrokerConnection(
            broker,
            list(topics or []),
            settings.kafka_partitions,
            KafkaAccess.of(settings),
            replication_factor=settings.kafka_replication_factor,
        )
        if broker is not None
        else None
    )
    runtime = Runtime(
        settings=settings,
        tracer_provider=tracer_provider,
        registry=registry,
        database=database,
        broker=broker,
        connection=connection,
        readiness=Readiness(settings.readiness_timeout_seconds),
        migrations=list(CONSUMER_DDL),
    )
    runtime.readiness.add("startup", lambda: _not_failed(runtime))
    runtime.readiness.add("database", database.check)
    runtime.readiness.add("schema", lambda: _migrated(runtime))
    if connection is not None:
        runtime.readiness.add("broker", connection.check)
    return runtime


async def _not_failed(runtime: Runtime) -> None:
    if runtime.failed is not None:
        raise RuntimeError(runtime.failed)


def _watch_start(runtime: Runtime, task: asyncio.Task[None]) -> None:
    """A start-up that fails (a start hook raising) is said, not swallowed: readiness reports
    it, the log has the traceback, and a served process stops."""
    if task.cancelled() or task.exception() is None:
        return
    error = task.exception()
    runtime.failed = f"start-up failed: {type(error).__name__}: {error}"
    log.error(runtime.failed, exc_info=error, extra={"alert": "startup-failed"})
    if runtime.exit_on_failure:
        os.kill(os.getpid(), signal.SIGTERM)


async def _migrated(runtime: Runtime) -> None:
    if not runtime.migrated.is_set():
        raise RuntimeError(f"migrations not applied yet: {runtime.startup_error}")


async def _start(runtime: Runtime) -> None:
    """Migrate (retrying while the database is unreachable), then connect to Kafka, then run
    the service's own start hook (consumers, relays)."""
    delay = 1.0
    while True:
        try:
            await runtime.database.migrate(runtime.migrations)
        except psycopg.OperationalError as error:
            runtime.startup_error = (
                str(error).strip().splitlines()[0] if str(error).strip() else "?"
            )
            log.warning("database not reachable, retrying", extra={"error": runtime.startup_error})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 15.0)
        else:
            break
    runtime.migrated.set()
    runtime.startup_error = ""
    if runtime.connection is not None:
        runtime.connection.start()
        await runtime.connection.connected.wait()
    if runtime.started is not None:
        await runtime.started()
    settle_heap()


def settle_heap() -> None:
    """Once start-up is done: collect, then freeze what survived (modules, pools, caches
    warmed at start) so the collector's full passes, which stop every thread, never scan
    it again. Without this, the first full pass under load stalls requests for tens of
    milliseconds."""
    gc.collect()
    gc.freeze()


def create_service_app(
    runtime: Runtime,
    *,
    title: str,
    description: str,
    guards: Sequence[Middleware] = (),
) -> FastAPI:
    """``guards``: the service's own middleware (authentication, rate limits), run inside
    the platform's tracing and request metrics (so refusals are traced and counted) and
    before the body size limit and the app (so a refusal reads no body)."""
    settings = runtime.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.service_name, settings.log_level)
        install_global(runtime.tracer_provider)
        await runtime.database.open()
        starting = asyncio.create_task(_start(runtime), name="service-start")
        starting.add_done_callback(lambda task: _watch_start(runtime, task))
        try:
            yield
        finally:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([starting])
            for hook in reversed(runtime.stopping):
                await hook()
            if runtime.connection is not None:
                await runtime.connection.stop()
            await runtime.database.close()
            runtime.tracer_provider.shutdown()

    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan,
        telemetry=FRAMEWORK_TELEMETRY_OFF,
    )
    app.state.runtime = runtime
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    for guard in reversed(guards):
        app.add_middleware(guard.cls, *guard.args, **guard.kwargs)
    install_metrics(app, runtime.registry, settings.service_name)
    install_health(app, runtime.readiness, settings.service_name)
    instrument_http(app, runtime.tracer_provider)
    return app


GRACEFUL_SHUTDOWN_SECONDS = 10
"""On SIGTERM, requests in flight get this long to finish; what is still open then (a live
stream, which never finishes by itself) is closed, and the service stops."""


def serve(create_app: Callable[[S], FastAPI], settings: S) -> None:
    """Run a service with uvicorn on its configured host and port. With several workers each
    process builds its own app (and pools) from the same environment."""
    import uvicorn

    if settings.workers > 1:
        uvicorn.run(
            f"{create_app.__module__}:{create_app.__name__}",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
        return
    app = create_app(settings)
    app.state.runtime.exit_on_failure = True
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


def subscribe_projection(
    runtime: Runtime,
    topics: list[str],
    group: str,
    write_one: Callable[[Any, Any], Awaitable[None]],
    write_many: Callable[[Any, list[Any]], Awaitable[None]],
    after_commit: Callable[[], None] | None = None,
) -> LagMonitor:
    """Feed a service's projection from ``topics`` as consumer group ``group`` (each event
    once, in batches, one transaction each) and measure the group's lag for /metrics. The
    monitor stops with the service; the service starts it in its start hook."""
    consumer = IdempotentConsumer(
        runtime.database,
        group,
        write_one,
        ConsumerMetrics(runtime.registry),
        batch_handler=write_many,
        after_commit=after_commit,
        tracer=runtime.tracer_provider.get_tracer("clinic.platform.consumer"),
    )
    runtime.consumer = consumer
    if runtime.broker is None:
        raise ValueError("a projection needs Kafka: create_runtime(..., kafka=True)")
    subscribe_batches(runtime.broker, consumer, topics, group)
    settings = runtime.settings
    lag = LagMonitor(
        KafkaAccess.of(settings),
        group,
        topics,
        LagMetrics(runtime.registry),
        settings.consumer_lag_interval_seconds,
    )
    lag.also.append(consumer.count_waiting)
    runtime.stopping.append(lag.stop)
    return lag
