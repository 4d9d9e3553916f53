"""The second rung: PostgreSQL and Apache Kafka (KRaft) in containers, where a Docker engine
answers."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from clinic.devstack.apache_kafka import KAFKA_VERSION
from clinic.devstack.components import (
    DATABASE_NAME,
    DATABASE_USER,
    Component,
    Source,
)

KAFKA_IMAGE = f"apache/kafka:{KAFKA_VERSION}"  # the same version as the local rung
POSTGRES_IMAGE = "postgres:16-alpine"


def docker_engine_answers() -> bool:
    """True when a Docker engine answers a ping within two seconds (a client alone is not
    enough: this machine kind has the docker CLI but no engine)."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no engine", which is an answer
        return False


def start_container_postgres() -> Component:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(
        POSTGRES_IMAGE,
        username=DATABASE_USER,
        password=DATABASE_USER,
        dbname=DATABASE_NAME,
        driver=None,
    )
    container.start()
    host, port = container.get_container_host_ip(), container.get_exposed_port(5432)
    return Component(
        name="postgres",
        source=Source.TESTCONTAINERS,
        address=f"postgresql://{DATABASE_USER}:{DATABASE_USER}@{host}:{port}/{DATABASE_NAME}",
        container_id=container.get_wrapped_container().id,
    )


def start_container_kafka() -> Component:
    from testcontainers.kafka import KafkaContainer

    container = KafkaContainer(KAFKA_IMAGE).with_kraft()
    container.start()
    return Component(
        name="kafka",
        source=Source.TESTCONTAINERS,
        address=container.get_bootstrap_server(),
        container_id=container.get_wrapped_container().id,
    )


def stop_container(container_id: str | None) -> None:
    if not container_id:
        return
    import docker

    client = docker.from_env(timeout=10)
    with contextlib.suppress(docker.errors.NotFound):
        client.containers.get(container_id).remove(force=True)
