"""One settings base for every service (pydantic-settings, an env prefix per service).

Every field carries a description and a default; ``settings_reference`` turns them into the
README's table. A few settings are shared across services (``DATABASE_URL``,
``KAFKA_BOOTSTRAP_SERVERS``, ...): a service reads its prefixed variable first and falls back
to the shared one, so one variable points the whole platform at existing infrastructure.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def shared(name: str) -> dict[str, Any]:
    """Mark a field as falling back to the unprefixed environment variable ``name``."""
    return {"shared_env": name}


class _SharedEnvironment(PydanticBaseSettingsSource):
    """Lowest-priority source: unprefixed platform-wide variables such as ``DATABASE_URL``."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        name = extra.get("shared_env")
        if isinstance(name, str) and name in os.environ:
            return os.environ[name], name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[field_name] = value
        return values


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``env_prefix`` and ``service_name``."""

    model_config = SettingsConfigDict(env_prefix="CLINIC_", extra="ignore", frozen=True)

    service_name: ClassVar[str] = "clinic"

    host: str = Field("127.0.0.1", description="Interface the HTTP server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port the HTTP server listens on.")
    workers: int = Field(
        1, ge=1, le=64, description="HTTP worker processes (each with its own pools)."
    )
    database_url: str = Field(
        "postgresql://clinic@127.0.0.1:5432/clinic",
        description="PostgreSQL URL of the service's database (falls back to DATABASE_URL).",
        json_schema_extra=shared("DATABASE_URL"),
    )
    database_schema: str = Field(
        "",
        description="Schema holding the service's tables; empty means the service's name.",
        pattern=r"^[a-z_][a-z0-9_]*$|^$",
    )
    database_pool_size: int = Field(10, ge=1, description="Connections kept in the pool.")
    kafka_bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        description="Kafka bootstrap servers, comma-separated (falls back to "
        "KAFKA_BOOTSTRAP_SERVERS).",
        json_schema_extra=shared("KAFKA_BOOTSTRAP_SERVERS"),
    )
    kafka_enable_idempotence: bool = Field(
        True,
        description="Idempotent producer with acks=all (off only for the local Tansu broker, "
        "which lacks it). "
        "Falls back to KAFKA_ENABLE_IDEMPOTENCE.",
        json_schema_extra=shared("KAFKA_ENABLE_IDEMPOTENCE"),
    )
    kafka_partitions: int = Field(
        3,
        ge=1,
        description="Partitions for topics the service creates (falls back to KAFKA_PARTITIONS).",
        json_schema_extra=shared("KAFKA_PARTITIONS"),
    )
    kafka_replication_factor: int = Field(
        1,
        ge=1,
        description="Replication factor of topics the service creates: 1 for the local "
        "single-node broker, 3 in production (falls back to KAFKA_REPLICATION_FACTOR).",
        json_schema_extra=shared("KAFKA_REPLICATION_FACTOR"),
    )
    kafka_broker_keeps_data: bool = Field(
        True,
        description="Whether the broker keeps topics across restarts. Only the local Tansu "
        "broker does not; then booking's relay watches for lost topics and republishes "
        "(falls back to KAFKA_BROKER_KEEPS_DATA).",
        json_schema_extra=shared("KAFKA_BROKER_KEEPS_DATA"),
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How the service talks to Kafka: PLAINTEXT locally; SASL_SSL (TLS and a "
        "login) on a cluster whose ACLs name each service (falls back to "
        "KAFKA_SECURITY_PROTOCOL).",
        json_schema_extra=shared("KAFKA_SECURITY_PROTOCOL"),
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512",
        description="The SASL login mechanism (falls back to KAFKA_SASL_MECHANISM).",
        json_schema_extra=shared("KAFKA_SASL_MECHANISM"),
    )
    kafka_sasl_username: str = Field(
        "",
        description="The service's Kafka user, for SASL_* (falls back to KAFKA_SASL_USERNAME).",
        json_schema_extra=shared("KAFKA_SASL_USERNAME"),
    )
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""),
        description="Its password (falls back to KAFKA_SASL_PASSWORD).",
        json_schema_extra=shared("KAFKA_SASL_PASSWORD"),
    )
    kafka_ssl_cafile: str = Field(
        "",
        description="PEM file of the CA the broker's TLS certificate is checked against, for "
        "SSL and SASL_SSL; empty: the system's CAs (falls back to KAFKA_SSL_CAFILE).",
        json_schema_extra=shared("KAFKA_SSL_CAFILE"),
    )
    consumer_lag_interval_seconds: float = Field(
        5.0,
        gt=0,
        description="How often consumer lag (messages and seconds per partition) is measured "
        "from the broker for /metrics.",
    )
    log_level: str = Field(
        "INFO",
        description="Log level (falls back to LOG_LEVEL).",
        json_schema_extra=shared("LOG_LEVEL"),
    )
    otel_exporter_otlp_endpoint: str = Field(
        "",
        description="OTLP/HTTP endpoint for traces, e.g. http://otel-collector:4318; empty keeps "
        "traces in-process (falls back to OTEL_EXPORTER_OTLP_ENDPOINT).",
        json_schema_extra=shared("OTEL_EXPORTER_OTLP_ENDPOINT"),
    )
    max_body_bytes: int = Field(
        65536, ge=1024, description="Largest request body accepted; larger ones get 413."
    )
    readiness_timeout_seconds: float = Field(
        2.0, gt=0, description="How long /readyz waits for each dependency check."
    )
    operations_token: SecretStr = Field(
        SecretStr(""),
        description="Bearer token the /operations routes (dead letters, projection rebuild) "
        "require; empty turns them off (403). Falls back to OPERATIONS_TOKEN.",
        json_schema_extra=shared("OPERATIONS_TOKEN"),
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return value

    @property
    def schema_name(self) -> str:
        return self.database_schema or self.service_name.replace("-", "_")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SharedEnvironment(settings_cls))


def settings_reference(settings_cls: type[ServiceSettings]) -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every field, for docs."""
    prefix = settings_cls.model_config.get("env_prefix", "")
    rows = []
    for name, field in settings_cls.model_fields.items():
        env = f"{prefix}{name}".upper()
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "shared_env" in extra:
            env = f"{env} / {extra['shared_env']}"
        rows.append((env, repr(field.default), field.description or ""))
    return rows
