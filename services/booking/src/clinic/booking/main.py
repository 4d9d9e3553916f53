"""Composition root of the booking service."""

from fastapi import FastAPI

import clinic.booking
from clinic.booking.settings import BookingSettings
from clinic.platform.service import create_runtime, create_service_app


def create_app(settings: BookingSettings | None = None) -> FastAPI:
    settings = settings or BookingSettings()
    runtime = create_runtime(settings)
    return create_service_app(
        runtime,
        title="clinic booking",
        description=clinic.booking.__doc__ or "",
    )
