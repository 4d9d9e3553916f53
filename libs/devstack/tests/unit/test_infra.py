import hashlib
import socket
from pathlib import Path

import pytest

from clinic.devstack.apache_kafka import cluster_id, parse_java_version, server_properties
from clinic.devstack.components import (
    Component,
    Infrastructure,
    InfrastructureError,
    Source,
    free_port,
    port_open,
)
from clinic.devstack.infra import LocalKafka, choose_local_kafka, choose_source
from clinic.devstack.tansu import TANSU_SHA256, tansu_binary


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


def test_the_environment_for_services_declares_tansus_gaps_only_for_tansu() -> None:
    pg = Component("postgres", Source.LOCAL, "postgresql://clinic@127.0.0.1:5/clinic")
    tansu = Component(
        "kafka", Source.LOCAL, "127.0.0.1:9", supports_idempotence=False, keeps_data=False
    )
    kafka = Component("kafka", Source.LOCAL, "127.0.0.1:9092", flavor="apache-kafka 4.4.0")
    assert Infrastructure(pg, tansu).environment()["KAFKA_ENABLE_IDEMPOTENCE"] == "false"
    assert Infrastructure(pg, tansu).environment()["KAFKA_BROKER_KEEPS_DATA"] == "false"
    assert Infrastructure(pg, kafka).environment() == {
        "DATABASE_URL": "postgresql://clinic@127.0.0.1:5/clinic",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "KAFKA_ENABLE_IDEMPOTENCE": "true",
        "KAFKA_BROKER_KEEPS_DATA": "true",
    }
    assert "apache-kafka 4.4.0 (local, 127.0.0.1:9092)" in Infrastructure(pg, kafka).describe()


def test_apache_kafka_is_the_local_broker_wherever_it_can_run() -> None:
    assert choose_local_kafka(None, None) == LocalKafka.APACHE
    assert choose_local_kafka("", None) == LocalKafka.APACHE


def test_tansu_is_the_local_broker_only_where_apache_kafka_cannot_run() -> None:
    assert choose_local_kafka(None, "no Java runtime found") == LocalKafka.TANSU
    assert choose_local_kafka("tansu", None) == LocalKafka.TANSU


def test_forcing_apache_kafka_without_java_names_the_reason() -> None:
    with pytest.raises(InfrastructureError, match="no Java runtime found"):
        choose_local_kafka("apache-kafka", "no Java runtime found")
    with pytest.raises(InfrastructureError, match="expected 'apache-kafka' or 'tansu'"):
        choose_local_kafka("redpanda", None)


@pytest.mark.parametrize(
    ("banner", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_381"', 8),
        ("no banner at all", None),
    ],
)
def test_the_java_version_is_read_from_its_banner(banner: str, major: int | None) -> None:
    assert parse_java_version(banner) == major


def test_the_local_broker_is_one_kraft_node_that_creates_no_topic_on_its_own() -> None:
    lines = server_properties(Path("/data/kafka"), 19092, 19093, 3).splitlines()
    config = dict(line.split("=", 1) for line in lines)
    assert config["process.roles"] == "broker,controller"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert config["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert config["log.dirs"] == "/data/kafka"
    assert config["auto.create.topics.enable"] == "false"
    assert config["offsets.topic.replication.factor"] == "1"
    assert config["transaction.state.log.replication.factor"] == "1"
    assert config["group.initial.rebalance.delay.ms"] == "0"


def test_a_free_port_is_on_loopback_and_closed() -> None:
    port = free_port()
    assert not port_open("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert port_open("127.0.0.1", port)


def test_a_cluster_id_is_22_url_safe_characters_never_read_as_a_command_line_option() -> None:
    ids = [cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert all(
        set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for i in ids
    )
