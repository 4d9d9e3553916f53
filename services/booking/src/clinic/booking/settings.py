"""Settings of the booking service, read from `BOOKING_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clinic.platform.settings import ServiceSettings


class BookingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="BOOKING_", extra="ignore", frozen=True)

    service_name: ClassVar[str] = "booking"

    port: int = Field(8081, ge=1, le=65535, description="Port the HTTP server listens on.")
    hold_minutes: float = Field(
        10,
        gt=0,
        le=120,
        description="How long a hold blocks its time unless confirmed or the request says.",
    )
    hold_sweep_seconds: float = Field(
        5.0,
        gt=0,
        le=300,
        description="How often each replica looks for holds past their expiry to record "
        "Appointment.HoldExpired: the longest delay after the expiry, plus the directory's "
        "lag (usually milliseconds).",
    )
    max_attempts: int = Field(
        5, ge=1, le=50, description="Decisions tried when concurrent writers race for the same day."
    )
    alternatives: int = Field(
        3, ge=0, le=20, description="Alternative start times offered with a 409."
    )
    event_store_pool_size: int = Field(
        20, ge=1, description="Connections the event store keeps (plus as many on overflow)."
    )
    relay_enabled: bool = Field(
        True, description="Run the outbox relay (one replica leads; the others stand by)."
    )
    relay_batch_size: int = Field(
        500, ge=1, le=10_000, description="Events the relay publishes per acknowledged batch."
    )
    relay_idle_seconds: float = Field(
        0.5, gt=0, description="Longest wait for new events when no NOTIFY arrives."
    )
    load_demo_data: bool = Field(
        False, description="Load the demo hospital group at start-up when it is missing."
    )
