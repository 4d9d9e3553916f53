"""Settings of the gateway service, read from `GATEWAY_*` environment variables."""

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from clinic.platform.settings import ServiceSettings

_URL = r"^https?://[^\s]+$"


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)

    service_name: ClassVar[str] = "gateway"

    port: int = Field(8080, ge=1, le=65535, description="Port the HTTP server listens on.")
    booking_url: str = Field(
        "http://127.0.0.1:8081",
        pattern=_URL,
        description="Booking's internal API (falls back to BOOKING_URL).",
        json_schema_extra={"shared_env": "BOOKING_URL"},
    )
    availability_url: str = Field(
        "http://127.0.0.1:8082",
        pattern=_URL,
        description="Availability's internal API (falls back to AVAILABILITY_URL).",
        json_schema_extra={"shared_env": "AVAILABILITY_URL"},
    )
    notification_url: str = Field(
        "http://127.0.0.1:8083",
        pattern=_URL,
        description="Notification's internal API (falls back to NOTIFICATION_URL).",
        json_schema_extra={"shared_env": "NOTIFICATION_URL"},
    )
    jwt_issuer: str = Field(
        "http://127.0.0.1:8079",
        min_length=1,
        description="The `iss` every access token must carry: the identity provider's issuer.",
    )
    jwt_audience: str = Field(
        "clinic-gateway",
        min_length=1,
        description="The `aud` every access token must name (the API's identifier at the "
        "identity provider).",
    )
    jwks_url: str = Field(
        "http://127.0.0.1:8079/.well-known/jwks.json",
        pattern=_URL,
        description="Where the identity provider publishes its signing keys (JWKS).",
    )
    jwt_algorithms: str = Field(
        "RS256,ES256",
        pattern=r"^(RS|PS|ES)(256|384|512)(,(RS|PS|ES)(256|384|512))*$",
        description="Signature algorithms accepted, comma-separated (asymmetric only).",
    )
    jwt_claim_prefix: str = Field(
        "",
        max_length=200,
        description="Prefix of the platform's own claims (`org`, `role`, `locations`, "
        "`patient_id`), for identity providers that namespace custom claims, e.g. "
        "`https://clinic.example/`.",
    )
    jwt_leeway_seconds: int = Field(
        30, ge=0, le=300, description="Clock skew allowed on `exp`, `nbf` and `iat`."
    )
    jwks_cache_seconds: float = Field(
        300, gt=0, description="How long fetched signing keys are used before fetching again."
    )
    jwks_min_refresh_seconds: float = Field(
        10,
        ge=0,
        description="Least time between two fetches caused by tokens naming an unknown key "
        "(a rotated key is found at once; random key ids cannot make the gateway hammer the "
        "identity provider).",
    )
    idempotency_ttl_hours: int = Field(
        24,
        ge=1,
        le=24 * 30,
        description="How long an Idempotency-Key is remembered: a repeat within it gets the "
        "first answer; after it, the key is forgotten.",
    )
    rate_limit_client: str = Field(
        "1200/minute",
        description="Requests one client (token subject) may make (`limits` notation, e.g. "
        "`20/second;1200/minute`).",
    )
    rate_limit_organization: str = Field(
        "12000/minute",
        description="Requests all clients of one organisation may make together.",
    )
    cors_origins: str = Field(
        "",
        description="Origins allowed to call the API from a browser, comma-separated "
        "(empty: none; the web pages served by the gateway need none).",
    )
    web_dir: str = Field(
        "",
        description="The built web app (`web/dist`), served at `/app/` (empty: not served; "
        "`make up` sets it).",
    )
    web_client_id: str = Field(
        "clinic-web",
        min_length=1,
        max_length=200,
        description="The OAuth2 client id the web app signs in with (authorization code "
        "with PKCE; register it at the identity provider as a public client).",
    )
    web_issuer: str = Field(
        "",
        description="Where the web app signs in: an OpenID Connect issuer with discovery "
        "(empty: `GATEWAY_JWT_ISSUER`).",
    )
    web_scope: str = Field(
        "openid", max_length=500, description="The scope the web app asks for at sign-in."
    )
    live_enabled: bool = Field(
        True,
        description="Serve live updates (`GET /v1/live`), read from Kafka's "
        "`booking.appointments.v1` (no consumer group, nothing committed).",
    )
    live_heartbeat_seconds: float = Field(
        15, gt=0, le=300, description="A comment on each quiet live stream this often."
    )
    live_max_streams: int = Field(
        2000, ge=1, le=100_000, description="Live streams one replica serves at once (503 over it)."
    )
    live_max_streams_per_user: int = Field(
        10,
        ge=1,
        le=1000,
        description="Live streams one user (token subject) may hold open on a replica at once "
        "(429 over it): a page left open in many tabs, or a client reconnecting without "
        "closing, cannot take every stream.",
    )
    upstream_timeout_seconds: float = Field(
        10, gt=0, le=120, description="Longest wait for a service's answer."
    )
    upstream_connect_timeout_seconds: float = Field(
        2, gt=0, le=60, description="Longest wait to connect to a service."
    )
    upstream_retries: int = Field(
        2,
        ge=0,
        le=5,
        description="Retries of a safe or idempotent call a service could not take "
        "(connection refused, 502, 503, 504).",
    )
    upstream_pool_size: int = Field(
        100, ge=1, le=1000, description="Keep-alive connections kept per service."
    )
    retry_after_seconds: int = Field(
        5, ge=1, le=600, description="`Retry-After` of a 503 answered while a service is down."
    )
