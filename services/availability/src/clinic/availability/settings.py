"""Settings of the availability service, read from `AVAILABILITY_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clinic.platform.settings import ServiceSettings


class AvailabilitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AVAILABILITY_", extra="ignore", frozen=True)

    service_name: ClassVar[str] = "availability"

    port: int = Field(8082, ge=1, le=65535, description="Port the HTTP server listens on.")
