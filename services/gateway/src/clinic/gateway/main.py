"""Composition root of the gateway service."""

from fastapi import FastAPI

import clinic.gateway
from clinic.gateway.settings import GatewaySettings
from clinic.platform.service import create_runtime, create_service_app


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    runtime = create_runtime(settings)
    return create_service_app(
        runtime,
        title="clinic gateway",
        description=clinic.gateway.__doc__ or "",
    )
