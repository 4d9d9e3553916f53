"""Settings of the notification service, read from `NOTIFICATION_*` environment variables."""

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
