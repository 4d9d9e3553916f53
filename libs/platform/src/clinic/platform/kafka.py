"""Kafka wiring: the FastStream broker factory, a supervised connection, topic creation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from clinic.events import topic_config
from clinic.platform.settings import ServiceSettings
from clinic.platform.telemetry import kafka_middleware

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KafkaAccess:
    """How a service reaches Kafka: the bootstrap servers and, on a secured cluster, TLS and
    the service's own login (SASL), so that the cluster's ACLs can name each service. Every
    Kafka client a service makes (the broker, admin clients, the lag monitor, readers) is
    made with these."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: str = field(default="", repr=False)
    cafile: str = ""

    @classmethod
    def of(cls, settings: ServiceSettings) -> KafkaAccess:
        """A service's access; a SASL protocol without a user and password is refused here,
        when a service that uses Kafka is made (one that does not, like the gateway, never
        asks)."""
        if settings.kafka_security_protocol.startswith("SASL") and not (
            settings.kafka_sasl_username and settings.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs a Kafka "
                "user: set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return cls(
            settings.kafka_bootstrap_servers,
            settings.kafka_security_protocol,
            settings.kafka_sasl_mechanism,
            settings.kafka_sasl_username,
            settings.kafka_sasl_password.get_secret_value(),
            settings.kafka_ssl_cafile,
        )

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context: ssl.SSLContext = create_ssl_context(cafile=self.cafile or None)
        return context

    def options(self) -> dict[str, Any]:
        """Keyword arguments for an aiokafka client (consumer, producer, admin)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
        }
        if self.tls:
            options["ssl_context"] = self._ssl_context()
        if self.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password
        return options

    def security(self) -> BaseSecurity | None:
        """The same for FastStream's broker."""
        context, tls = self._ssl_context(), self.tls
        if not self.security_protocol.startswith("SASL"):
            return BaseSecurity(ssl_context=context, use_ssl=True) if tls else None
        login = {
            "PLAIN": SASLPlaintext,
            "SCRAM-SHA-256": SASLScram256,
            "SCRAM-SHA-512": SASLScram512,
        }[self.sasl_mechanism]
        return login(self.username, self.password, ssl_context=context, use_ssl=tls)


def create_broker(
    settings: ServiceSettings, tracer_provider: TracerProvider, registry: CollectorRegistry
) -> KafkaBroker:
    """A broker with what real Kafka wants (``acks=all``, idempotence where supported) and
    the telemetry and Prometheus middlewares. Nothing connects until it is started."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=KafkaAccess.of(settings).security(),
        client_id=settings.service_name,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        request_timeout_ms=10_000,
        middlewares=(
            kafka_middleware(tracer_provider),
            KafkaPrometheusMiddleware(registry=registry, app_name=settings.service_name),
        ),
        logger=logging.getLogger(f"clinic.{settings.service_name}.kafka"),
    )


async def ensure_topics(
    kafka: KafkaAccess, topics: list[str], partitions: int, replication_factor: int = 1
) -> list[str]:
    """Create the topics that do not exist yet, explicitly (brokers here never create topics
    on first use), with their partitions, replication factor and the configuration
    ``clinic.events`` gives them (event topics keep everything). Returns those it created;
    several services creating the same topic at once is fine."""
    admin = AIOKafkaAdminClient(**kafka.options(), request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        for topic in missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        NewTopic(
                            topic,
                            num_partitions=partitions,
                            replication_factor=replication_factor,
                            topic_configs=topic_config(topic, replication_factor),
                        )
                    ]
                )
        if missing:
            log.info("topics created", extra={"topics": missing, "partitions": partitions})
        return missing
    finally:
        await admin.close()


class BrokerConnection:
    """Starts the broker in the background and keeps trying until it connects, so the service
    comes up (and ``/readyz`` explains) while Kafka is unreachable."""

    def __init__(
        self,
        broker: KafkaBroker,
        topics: list[str],
        partitions: int,
        kafka: KafkaAccess,
        retry_seconds: float = 2.0,
        replication_factor: int = 1,
    ) -> None:
        self.broker = broker
        self.topics = topics
        self.partitions = partitions
        self.replication_factor = replication_factor
        self.kafka = kafka
        self.bootstrap_servers = kafka.bootstrap_servers
        self.retry_seconds = retry_seconds
        self.connected = asyncio.Event()
        self.last_error = "not connected yet (the service connects after its database migrations)"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="broker-connect")

    async def _connect(self) -> None:
        delay = self.retry_seconds
        while True:
            try:
                if self.topics:
                    await ensure_topics(
                        self.kafka,
                        self.topics,
                        self.partitions,
                        self.replication_factor,
                    )
                await self.broker.start()
            except (KafkaError, OSError) as error:
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("kafka not reachable, retrying", extra={"error": self.last_error})
                with contextlib.suppress(KafkaError, OSError):
                    await self.broker.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            else:
                self.last_error = ""
                self.connected.set()
                log.info("kafka connected", extra={"bootstrap": self.bootstrap_servers})
                return

    async def check(self) -> None:
        if not self.connected.is_set():
            raise ConnectionError(f"{self.bootstrap_servers}: {self.last_error}")
        if not await self.broker.ping(timeout=2.0):
            raise ConnectionError(f"{self.bootstrap_servers}: broker does not answer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.broker.stop()
