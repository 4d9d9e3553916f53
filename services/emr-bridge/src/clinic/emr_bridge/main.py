"""Composition root of the emr-bridge service."""

from fastapi import FastAPI

import clinic.emr_bridge
from clinic.emr_bridge.settings import EmrBridgeSettings
from clinic.platform.service import create_runtime, create_service_app


def create_app(settings: EmrBridgeSettings | None = None) -> FastAPI:
    settings = settings or EmrBridgeSettings()
    runtime = create_runtime(settings)
    return create_service_app(
        runtime,
        title="clinic emr-bridge",
        description=clinic.emr_bridge.__doc__ or "",
    )
