"""Composition root of the emr-bridge service."""

from __future__ import annotations

from fastapi import Depends, FastAPI

import clinic.emr_bridge
from clinic.emr_bridge.api import admin_clients, audit_events, fhir, hl7_admin, operations, patients
from clinic.emr_bridge.api import auth as auth_api
from clinic.emr_bridge.api.outcomes import OutcomeErrors, RefuseControlCharacters
from clinic.emr_bridge.clinics import Availability, Booking
from clinic.emr_bridge.consumer import TOPICS, ProjectionWriter
from clinic.emr_bridge.credentials import Authentication
from clinic.emr_bridge.inbound import Inbound, InboundMetrics
from clinic.emr_bridge.operations import Operations
from clinic.emr_bridge.schema import MIGRATIONS
from clinic.emr_bridge.sender import Policy, Sender, SenderMetrics
from clinic.emr_bridge.settings import EmrBridgeSettings
from clinic.platform import dead_letters
from clinic.platform.service import create_runtime, create_service_app, subscribe_projection


def create_app(settings: EmrBridgeSettings | None = None) -> FastAPI:
    settings = settings or EmrBridgeSettings()
    runtime = create_runtime(settings, topics=TOPICS)
    runtime.migrations += MIGRATIONS
    app = create_service_app(
        runtime, title="clinic emr-bridge", description=clinic.emr_bridge.__doc__ or ""
    )
    app.state.settings = settings
    app.state.auth = Authentication.on(runtime.database, settings)
    # Before the reads, whose /{kind}/{id} would take Appointment/$find, AuditEvent and
    # .well-known/smart-configuration:
    app.include_router(auth_api.router)
    app.include_router(dead_letters.router)
    app.include_router(audit_events.router)
    app.include_router(operations.router)
    app.include_router(patients.router)
    app.include_router(fhir.router)
    admin = [Depends(admin_clients.admin)]
    app.include_router(admin_clients.router)
    app.include_router(hl7_admin.router, dependencies=admin)
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
    app.add_middleware(RefuseControlCharacters)
    app.add_middleware(OutcomeErrors)  # outermost: rewrites the other's problems too
    writer = ProjectionWriter(runtime.registry)
    lag = subscribe_projection(
        runtime,
        TOPICS,
        settings.consumer_group,
        writer.write_one,
        writer.write_many,
        after_commit=sender.wake,
    )

    async def started() -> None:
        lag.start()
        if settings.hl7_send_enabled:
            sender.start(settings.hl7_interval_seconds)
        if settings.mllp_port:
            await inbound.start(settings.mllp_host, settings.mllp_port)

    runtime.started = started
    runtime.stopping += [inbound.stop, sender.stop, booking.close, availability.close]
    return app
