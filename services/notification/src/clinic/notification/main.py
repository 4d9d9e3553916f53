"""Composition root of the notification service."""

from fastapi import FastAPI

import clinic.notification
from clinic.notification.settings import NotificationSettings
from clinic.platform.service import create_runtime, create_service_app


def create_app(settings: NotificationSettings | None = None) -> FastAPI:
    settings = settings or NotificationSettings()
    runtime = create_runtime(settings)
    return create_service_app(
        runtime,
        title="clinic notification",
        description=clinic.notification.__doc__ or "",
    )
