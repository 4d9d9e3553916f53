"""Settings of the availability service, read from `AVAILABILITY_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clinic.platform.settings import ServiceSettings


class AvailabilitySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AVAILABILITY_", extra="ignore", frozen=True)

    service_name: ClassVar[str] = "availability"

    port: int = Field(8082, ge=1, le=65535, description="Port the HTTP server listens on.")
    consumer_group: str = Field(
        "availability",
        description="Kafka consumer group of the projection.",
        pattern=r"^[A-Za-z0-9._-]{1,200}$",
    )
    slot_step_minutes: int = Field(
        15, ge=5, le=120, description="Grid of offered start times, in local minutes."
    )
    refresh_interval_seconds: float = Field(
        0.02, gt=0, description="How often the in-memory index picks up projection changes."
    )
    booking_url: str = Field(
        "http://127.0.0.1:8081",
        description="Booking's internal API, for rebuilding from its event store "
        "(falls back to BOOKING_URL).",
        json_schema_extra={"shared_env": "BOOKING_URL"},
    )
    kpi_gauge_seconds: float = Field(
        60.0,
        gt=0,
        description="How often the KPI gauges on /metrics are computed again.",
    )
    kpi_gauge_days: int = Field(
        30, ge=1, le=366, description="The trailing days the KPI gauges on /metrics cover."
    )
