"""Composition root of the emr-bridge service."""

from __future__ import annotations

from fastapi import FastAPI

import clinic.emr_bridge
from clinic.emr_bridge.api import fhir, hl7_admin, operations, patients
from clinic.emr_bridge.api.outcomes import OutcomeErrors
from clinic.emr_bridge.clinics import Availability, Booking
from clinic.emr_bridge.consumer import TOPICS, ProjectionWriter
from clinic.emr_bridge.inbound import DDL as INBOUND_DDL
from clinic.emr_bridge.inbound import Inbound, InboundMetrics
from clinic.emr_bridge.operations import PROPOSALS_DDL, Operations
from clinic.emr_bridge.outbox import DDL as OUTBOX_DDL
from clinic.emr_bridge.sender import Policy, Sender, SenderMetrics
from clinic.emr_bridge.settings import EmrBridgeSettings
from clinic.emr_bridge.store import DDL
from clinic.platform.consumer import ConsumerMetrics, IdempotentConsumer, subscribe_batches
from clinic.platform.lag import LagMetrics, LagMonitor
from clinic.platform.service import create_runtime, create_service_app


def create_app(settings: EmrBridgeSettings | None = None) -> FastAPI:
    settings = settings or EmrBridgeSettings()
    runtime = create_runtime(settings, topics=TOPICS)
    runtime.migrations += [*DDL, *PROPOSALS_DDL, *OUTBOX_DDL, *INBOUND_DDL]
    app = create_service_app(
        runtime, title="clinic emr-bridge", description=clinic.emr_bridge.__doc__ or ""
    )
    app.state.settings = settings
    app.include_router(operations.router)  # before the reads: /Appointment/$find is no id
    app.include_router(patients.router)
    app.include_router(fhir.router)
    app.include_router(hl7_admin.router)
    sender = Sender(
        runtime.database,
        SenderMetrics(runtime.registry),
        Policy(
            ack_timeout=settings.hl7_ack_timeout_seconds,
            backoff_base=settings.hl7_backoff_seconds,
            backoff_cap=settings.hl7_backoff_cap_seconds,
            error_retries=settings.hl7_error_retries,
        ),
    )
    app.state.sender = sender
    booking = Booking(settings.booking_url)
    availability = Availability(settings.availability_url)
    app.state.operations = Operations(runtime.database, booking, availability)
    inbound = Inbound(runtime.database, booking, InboundMetrics(runtime.registry))
    app.add_middleware(OutcomeErrors)
    writer = ProjectionWriter(runtime.registry)
    consumer = IdempotentConsumer(
        runtime.database,
        settings.consumer_group,
        writer.write_one,
        ConsumerMetrics(runtime.registry),
        batch_handler=writer.write_many,
        after_commit=sender.wake,
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
        if settings.hl7_send_enabled:
            sender.start(settings.hl7_interval_seconds)
        if settings.mllp_port:
            await inbound.start(settings.mllp_host, settings.mllp_port)

    runtime.started = started
    runtime.stopping += [lag.stop, inbound.stop, sender.stop, booking.close, availability.close]
    return app
