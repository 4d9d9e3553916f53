"""Settings of the booking service, read from `BOOKING_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clinic.platform.settings import ServiceSettings


class BookingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BOOKING_", extra="ignore", frozen=True)

    service_name: ClassVar[str] = "booking"

    port: int = Field(8081, ge=1, le=65535, description="Port the HTTP server listens on.")
