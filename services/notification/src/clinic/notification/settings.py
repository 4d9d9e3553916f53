"""Settings of the notification service, read from `NOTIFICATION_*` environment variables."""

import datetime as dt
from typing import ClassVar, Literal

from pydantic import Field, SecretStr
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
    booking_url: str = Field(
        "http://127.0.0.1:8081",
        pattern=r"^https?://[^\s]+$",
        description="Booking's API, which runs what patients ask for through links and "
        "replies (falls back to BOOKING_URL).",
        json_schema_extra={"shared_env": "BOOKING_URL"},
    )
    availability_url: str = Field(
        "http://127.0.0.1:8082",
        pattern=r"^https?://[^\s]+$",
        description="Availability's API, for the free times a move offers (falls back to "
        "AVAILABILITY_URL).",
        json_schema_extra={"shared_env": "AVAILABILITY_URL"},
    )
    public_url: str = Field(
        "http://127.0.0.1:8083",
        pattern=r"^https?://[^\s]+$",
        description="Where patients reach this service: the base of action links and of the "
        "SMS provider's status and reply webhooks.",
    )
    links_url: str = Field(
        "",
        pattern=r"^(https?://[^\s]+)?$",
        description="Where a message's action links open (confirm, cancel, move, accept an "
        "offer): `<links_url>/links/<token>`; the web app's `<gateway>/app` lands them in the "
        "patient's pages (empty: this service's own pages at NOTIFICATION_PUBLIC_URL).",
    )
    link_secret: SecretStr = Field(
        SecretStr("local-development-link-secret"),
        min_length=16,
        description="Key that signs action links (at least 16 bytes; set your own: links "
        "signed with the default can be forged by anyone who read this table).",
    )
    dispatch_enabled: bool = Field(True, description="Whether this instance sends messages.")
    dispatch_interval_seconds: float = Field(
        0.5, gt=0, le=60, description="How often an idle dispatcher looks for due messages."
    )
    dispatch_batch_size: int = Field(
        100, ge=1, le=10_000, description="Messages one dispatch round claims at most."
    )
    dispatch_lease_seconds: float = Field(
        300, ge=5, description="How long a claim stays with an instance that stops answering."
    )
    dispatch_max_attempts: int = Field(
        8, ge=1, le=100, description="Attempts before a temporary failure becomes permanent."
    )
    dispatch_backoff_seconds: float = Field(
        30, gt=0, description="Wait before the first retry; doubles per attempt, jittered."
    )
    dispatch_backoff_cap_seconds: float = Field(
        3600, gt=0, description="Longest wait between two attempts."
    )
    send_rate_per_minute: int = Field(
        600, ge=1, description="Messages each organisation may send per minute (all instances)."
    )
    offers_enabled: bool = Field(
        True, description="Whether this instance offers freed time to the waitlist."
    )
    offer_hold_minutes: int = Field(
        60, ge=1, le=120, description="How long freed time is held for the patient offered it."
    )
    offer_notice_minutes: int = Field(
        120, ge=0, description="Freed time starting sooner than this is not offered."
    )
    smtp_host: str = Field("127.0.0.1", min_length=1, description="SMTP server for email.")
    smtp_port: int = Field(2525, ge=1, le=65535, description="SMTP server's port.")
    smtp_username: str | None = Field(None, description="SMTP user, when it asks for one.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password.")
    smtp_starttls: Literal["auto", "required", "off"] = Field(
        "auto", description="STARTTLS: when the server offers it, required, or never."
    )
    smtp_implicit_tls: bool = Field(False, description="TLS from the first byte (port 465).")
    smtp_timeout_seconds: float = Field(30, gt=0, description="SMTP connect and reply timeout.")
    smtp_connections: int = Field(
        4, ge=1, le=100, description="SMTP connections kept open and used at once."
    )
    email_from: str = Field(
        "noreply@clinic.localhost",
        pattern=r"^[^@\s]+@[^@\s]+$",
        description="Address emails come from (the organisation's name is shown with it).",
    )
    email_unsubscribe_mailto: str | None = Field(
        None, description="Mailbox for List-Unsubscribe by email, besides the one-click link."
    )
    sms_base_url: str = Field(
        "http://127.0.0.1:8025",
        pattern=r"^https?://[^\s]+$",
        description="Base URL of the Twilio-style SMS API (https://api.twilio.com in production).",
    )
    sms_account_sid: str = Field("AClocal", min_length=1, description="SMS API account sid.")
    sms_auth_token: SecretStr = Field(
        SecretStr("local-sms-token"),
        description="SMS API auth token; also checks the provider's webhook signatures.",
    )
    sms_from: str = Field(
        "+15550100000", min_length=1, description="Number (or service) SMS are sent from."
    )
    sms_connections: int = Field(
        8, ge=1, le=100, description="HTTP connections to the SMS API used at once."
    )
