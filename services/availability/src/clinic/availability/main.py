"""Composition root of the availability service."""

from fastapi import FastAPI

import clinic.availability
from clinic.availability.settings import AvailabilitySettings
from clinic.platform.service import create_runtime, create_service_app


def create_app(settings: AvailabilitySettings | None = None) -> FastAPI:
    settings = settings or AvailabilitySettings()
    runtime = create_runtime(settings)
    return create_service_app(
        runtime,
        title="clinic availability",
        description=clinic.availability.__doc__ or "",
    )
