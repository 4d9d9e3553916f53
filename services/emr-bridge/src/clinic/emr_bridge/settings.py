"""Settings of the emr-bridge service, read from `EMR_BRIDGE_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clinic.platform.settings import ServiceSettings


class EmrBridgeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMR_BRIDGE_", extra="ignore", frozen=True)

    service_name: ClassVar[str] = "emr-bridge"

    port: int = Field(8084, ge=1, le=65535, description="Port the HTTP server listens on.")
    consumer_group: str = Field(
        "emr-bridge",
        description="Kafka consumer group of the projection.",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
    )
    booking_url: str = Field(
        "http://127.0.0.1:8081",
        pattern=r"^https?://[^\s]+$",
        description="Booking's API, which decides every operation an EMR asks for (falls back "
        "to BOOKING_URL).",
        json_schema_extra={"shared_env": "BOOKING_URL"},
    )
    availability_url: str = Field(
        "http://127.0.0.1:8082",
        pattern=r"^https?://[^\s]+$",
        description="Availability's API, which answers $find (falls back to AVAILABILITY_URL).",
        json_schema_extra={"shared_env": "AVAILABILITY_URL"},
    )
