"""Settings of the emr-bridge service, read from `EMR_BRIDGE_*` environment variables."""

from typing import ClassVar

from pydantic import Field, SecretStr
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
    hl7_send_enabled: bool = Field(True, description="Whether this instance sends SIU messages.")
    hl7_interval_seconds: float = Field(
        0.5, gt=0, le=60, description="How often an idle sender looks for SIU messages to send."
    )
    hl7_ack_timeout_seconds: float = Field(
        30, gt=0, le=600, description="How long a sent SIU message waits for its ACK."
    )
    hl7_backoff_seconds: float = Field(
        1, gt=0, description="Wait before resending a message that got no ACK; doubles per try."
    )
    hl7_backoff_cap_seconds: float = Field(
        300, gt=0, description="Longest wait between two tries of one SIU message."
    )
    hl7_error_retries: int = Field(
        5, ge=1, le=100, description="Tries of a message the EMR answers AE before it is parked."
    )
    mllp_host: str = Field(
        "127.0.0.1", min_length=1, description="Interface the MLLP listener (SRM, ADT) binds to."
    )
    mllp_port: int = Field(
        2575, ge=0, le=65535, description="Port of the MLLP listener; 0 turns it off."
    )
    # -- authentication of EMR clients (auth.py, credentials.py) and the admin API --------
    auth_required: bool = Field(
        True,
        description="Whether FHIR requests need an access token. false lets every request in "
        "as the all-scopes client local-dev: unsafe, for local development only.",
    )
    admin_token: SecretStr | None = Field(
        None,
        min_length=32,
        description="Bearer token of the admin API that registers EMR clients (at least 32 "
        "characters); unset, the admin API answers every request with 403.",
    )
    token_seconds: int = Field(
        300, ge=60, le=3600, description="How long an access token issued to an EMR lasts."
    )
    public_url: str = Field(
        "",
        pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$",
        description="The bridge's base URL as EMR clients reach it (e.g. "
        "https://emr.clinic.example): the token endpoint advertised and the audience client "
        "assertions must name; empty takes it from each request.",
    )
    jwks_cache_seconds: int = Field(
        300,
        ge=0,
        le=86400,
        description="How long keys fetched from a client's jwks_url are used before being "
        "fetched again (an unknown kid fetches them at once, at most every 10 seconds).",
    )
