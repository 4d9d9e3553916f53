import hashlib
import socket

from clinic.platform.infra import (
    TANSU_SHA256,
    Component,
    Infrastructure,
    Source,
    choose_source,
    free_port,
    port_open,
    tansu_binary,
)


def test_an_address_in_the_environment_is_used_as_it_is() -> None:
    def docker() -> bool:
        raise AssertionError("docker must not even be asked")

    assert choose_source("kafka:9092", docker) is Source.ENVIRONMENT


def test_testcontainers_are_used_only_where_a_docker_engine_answers() -> None:
    assert choose_source(None, lambda: True) is Source.TESTCONTAINERS
    assert choose_source("", lambda: False) is Source.LOCAL


def test_the_local_broker_binary_is_the_pinned_one() -> None:
    binary = tansu_binary()
    assert hashlib.sha256(binary.read_bytes()).hexdigest() == TANSU_SHA256


def test_the_environment_for_services_turns_idempotence_off_only_for_a_broker_without_it() -> None:
    pg = Component("postgres", Source.LOCAL, "postgresql://clinic@127.0.0.1:5/clinic")
    tansu = Component("kafka", Source.LOCAL, "127.0.0.1:9", supports_idempotence=False)
    kafka = Component("kafka", Source.ENVIRONMENT, "kafka:9092")
    assert Infrastructure(pg, tansu).environment()["KAFKA_ENABLE_IDEMPOTENCE"] == "false"
    assert Infrastructure(pg, kafka).environment() == {
        "DATABASE_URL": "postgresql://clinic@127.0.0.1:5/clinic",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "KAFKA_ENABLE_IDEMPOTENCE": "true",
    }


def test_a_free_port_is_on_loopback_and_closed() -> None:
    port = free_port()
    assert not port_open("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert port_open("127.0.0.1", port)
