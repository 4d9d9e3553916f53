"""Every Kafka client of a service logs in the same way: plain locally, TLS and the
service's own SASL user on a secured cluster (whose ACLs name each service)."""

from __future__ import annotations

import ssl
from typing import ClassVar

import pytest
from faststream.security import SASLScram512
from pydantic import ValidationError

from clinic.platform.kafka import KafkaAccess
from clinic.platform.settings import ServiceSettings


class ProbeSettings(ServiceSettings):
    service_name: ClassVar[str] = "probe"


def test_locally_a_client_connects_in_plaintext_with_nothing_else() -> None:
    access = KafkaAccess.of(ProbeSettings(kafka_bootstrap_servers="127.0.0.1:9092"))
    assert access.options() == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert access.security() is None


def test_on_a_secured_cluster_every_client_uses_tls_and_the_services_own_login() -> None:
    settings = ProbeSettings(
        kafka_bootstrap_servers="kafka-bootstrap:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="notification",
        kafka_sasl_password="s3cret",  # type: ignore[arg-type]
    )
    access = KafkaAccess.of(settings)
    options = access.options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "notification",
        "s3cret",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    security = access.security()
    assert isinstance(security, SASLScram512)
    assert security.use_ssl
    assert "s3cret" not in repr(access)


def test_tls_without_a_login_and_a_login_without_tls_are_both_possible() -> None:
    tls_only = KafkaAccess("kafka:9093", "SSL").options()
    assert tls_only["security_protocol"] == "SSL"
    assert "sasl_mechanism" not in tls_only
    plain_login = KafkaAccess("kafka:9092", "SASL_PLAINTEXT", "PLAIN", "u", "p").options()
    assert "ssl_context" not in plain_login
    assert plain_login["sasl_mechanism"] == "PLAIN"


@pytest.mark.parametrize(
    "settings",
    [
        {"kafka_security_protocol": "SASL_SSL"},
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "booking"},
    ],
)
def test_a_login_without_a_user_is_refused_where_a_service_uses_kafka(
    settings: dict[str, str],
) -> None:
    given = ProbeSettings(**settings)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a Kafka user"):
        KafkaAccess.of(given)  # what create_runtime(kafka=True) does first


@pytest.mark.parametrize(
    "settings", [{"kafka_security_protocol": "TLS"}, {"kafka_sasl_mechanism": "MD5"}]
)
def test_a_protocol_or_mechanism_kafka_does_not_have_is_refused_with_the_settings(
    settings: dict[str, str],
) -> None:
    with pytest.raises(ValidationError):
        ProbeSettings(**settings)  # type: ignore[arg-type]
