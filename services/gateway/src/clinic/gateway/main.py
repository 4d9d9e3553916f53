"""Composition root of the gateway service."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from fastapi import FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

import clinic.gateway
from clinic.gateway import audit, idempotency, web
from clinic.gateway.api import (
    appointments,
    audit_events,
    calendars,
    index,
    kpis,
    links,
    live,
    patients,
    reference,
    search,
    waitlist,
)
from clinic.gateway.api.answers import refused
from clinic.gateway.api.names import ResourceNames
from clinic.gateway.api.openapi import document_security
from clinic.gateway.auth import TokenVerifier
from clinic.gateway.guard import Guard
from clinic.gateway.housekeeping import KeyExpiry
from clinic.gateway.live import KafkaReader, LiveHub, LiveMetrics, Place, location_and_patient
from clinic.gateway.metrics import GatewayMetrics
from clinic.gateway.rate_limits import RateLimits
from clinic.gateway.settings import GatewaySettings
from clinic.gateway.upstream import Services
from clinic.gateway.writes import Writes
from clinic.platform.kafka import KafkaAccess
from clinic.platform.problems import Problem
from clinic.platform.service import create_runtime, create_service_app

EXPOSED = [
    "ETag",
    "Location",
    "Idempotency-Replayed",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
]
LIVE_ACTOR = {"X-Actor-Id": "gateway-live", "X-Actor-Role": "system", "X-Actor-Channel": "api"}
"""Who asks booking where an appointment is, for the live streams."""
ALLOWED = ["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-Correlation-Id"]


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    runtime = create_runtime(settings, kafka=False)  # it reaches the services over HTTP only
    runtime.migrations += idempotency.DDL + audit.DDL
    metrics = GatewayMetrics(runtime.registry)
    services = Services.from_settings(settings, metrics)
    identity = httpx.AsyncClient(timeout=httpx.Timeout(5.0))
    verifier = TokenVerifier(settings, identity)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    app = create_service_app(
        runtime,
        title="Clinic scheduling API",
        description=clinic.gateway.__doc__ or "",
        guards=[
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=ALLOWED,
                expose_headers=EXPOSED,
                max_age=600,
            ),
            Middleware(
                Guard,
                verifier=verifier,
                metrics=metrics,
                rate_limits=RateLimits(
                    settings.rate_limit_client, settings.rate_limit_organization
                ),
            ),
        ],
    )
    app.add_exception_handler(Problem, refused)  # type: ignore[arg-type]
    document_security(app)
    app.state.settings = settings
    app.state.services = services
    app.state.metrics = metrics
    app.state.resource_names = ResourceNames()
    for module in (
        index,
        search,
        appointments,
        patients,
        calendars,
        waitlist,
        reference,
        kpis,
        audit_events,
        live,
        links,
        web,
    ):
        app.include_router(module.router)
    expiry = KeyExpiry(runtime.database)
    app.state.writes = writes = Writes(
        runtime.database, dt.timedelta(hours=settings.idempotency_ttl_hours)
    )

    reader = None
    app.state.live = None
    if settings.live_enabled:

        async def locate(org: uuid.UUID, appointment: uuid.UUID) -> Place | None:
            """Where an appointment is, asked of booking (for a fact that does not say)."""
            try:
                reply = await services.booking.call(
                    "GET", f"/organizations/{org}/appointments/{appointment}", headers=LIVE_ACTOR
                )
            except Problem:
                return None
            return location_and_patient(reply.json()) if reply.ok else None

        app.state.live = hub = LiveHub(locate, LiveMetrics(runtime.registry))
        reader = KafkaReader(KafkaAccess.of(settings), hub)

    async def started() -> None:
        expiry.start()
        if reader is not None:
            reader.start()

    async def closed() -> None:
        await services.close()
        await identity.aclose()

    runtime.started = started
    runtime.stopping += [closed, expiry.stop, writes.drain]
    if reader is not None:
        runtime.stopping.append(reader.stop)
    return app
