"""Settings of the notification service, read from `NOTIFICATION_*` environment variables."""

import datetime as dt
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clinic.platform.settings import ServiceSettings


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_", extra="ignore", frozen=True)

    service_name: ClassVar[str] = "notification"

    port: int = Field(8083, ge=1, le=65535, description="Port the HTTP server listens on.")
    consumer_group: str = Field(
        "notification",
        description="Kafka consumer group of the projection.",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
    )
    quiet_hours_start: dt.time = Field(
        dt.time(21), description="Local time (the patient's zone) from which no message goes out."
    )
    quiet_hours_end: dt.time = Field(
        dt.time(8), description="Local time at which messages held by quiet hours go out."
    )
    default_language: str = Field(
        "en",
        pattern=r"^[a-z]{2}$",
        description="Messages' language when the patient's has no templates (en, es, de).",
    )
