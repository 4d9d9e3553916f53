"""Genuine Apache Kafka, local: one node in KRaft mode (broker and controller combined).

The broker's jars come from Maven Central: ``pom.xml`` beside this file pins
``org.apache.kafka:kafka_2.13``, and :func:`fetch` runs ``mvn dependency:copy-dependencies``
on it into ``.local/apache-kafka/<version>/libs`` once (a finished copy is reused, by every
state directory and every later run). :func:`start_apache_kafka` formats the log dir on first
use, writes ``server.properties`` for free 127.0.0.1 ports, starts ``kafka.Kafka`` with the
machine's Java 17+ and a bounded heap, and waits until the broker answers metadata requests.
The log dir survives a stop, so a restarted broker has every topic and offset it had.

A single node wants its internal topics at replication factor 1, and no rebalance delay (a
consumer group starts consuming at once). Topics are never created automatically: every
service creates the topics it uses from ``clinic.events`` at start-up, with their partitions,
replication factor and retention.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

from clinic.devstack.components import (
    Component,
    InfrastructureError,
    Source,
    free_port,
    pid_alive,
    port_open,
    stop_pid,
)
from clinic.devstack.kafka_probe import launch_broker

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.4.0"
POM = Path(__file__).with_name("pom.xml")
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
MINIMUM_JAVA = 17
# The broker's heap is bounded: resident memory stays well under 700 MB on a developer's
# machine (measured by `make bench`).
JVM_OPTIONS = [
    "-Xms256m",
    "-Xmx512m",
    "-XX:MaxMetaspaceSize=128m",
    "-XX:ReservedCodeCacheSize=64m",
    "-XX:MaxDirectMemorySize=128m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
]
START_TIMEOUT_SECONDS = 120.0
FETCH_TIMEOUT_SECONDS = 600.0


def default_cache_dir() -> Path:
    """``<repository>/.local/apache-kafka`` (or ``CLINIC_KAFKA_CACHE_DIR``)."""
    configured = os.environ.get("CLINIC_KAFKA_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[6] / ".local" / "apache-kafka"


def java_executable() -> Path | None:
    """``$JAVA_HOME/bin/java`` when set, else ``java`` on the PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return Path(home) / "bin" / "java"
    found = shutil.which("java")
    return Path(found) if found else None


def java_major_version(java: Path) -> int | None:
    """17 for ``openjdk version "17.0.15"``; None when it cannot be read."""
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_java_version(result.stderr + result.stdout)


def parse_java_version(text: str) -> int | None:
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and earlier call themselves 1.x.
    return int(match.group(2) or 0) if major == 1 else major


def unavailable_reason(cache_dir: Path | None = None) -> str | None:
    """Why this rung cannot run here (no Java 17+, or neither Maven nor a fetched copy);
    None when it can."""
    java = java_executable()
    if java is None:
        return "no Java runtime found (install OpenJDK 17 or later, or set JAVA_HOME)"
    major = java_major_version(java)
    if major is None or major < MINIMUM_JAVA:
        return f"{java} is Java {major or 'of an unknown version'}; Apache Kafka needs 17+"
    if not _fetched(libs_dir(cache_dir)) and shutil.which("mvn") is None:
        return "Maven (mvn) is not installed and Apache Kafka has not been fetched before"
    return None


def libs_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_dir()) / KAFKA_VERSION / "libs"


def _fetched(libs: Path) -> bool:
    return (libs / ".complete").exists()


def fetch(cache_dir: Path | None = None) -> Path:
    """The broker's jars, fetched from Maven Central by the committed pom on first use.
    Two processes fetching at once wait for each other (a file lock); a half-fetched copy is
    never used (it is moved into place only when complete)."""
    libs = libs_dir(cache_dir)
    if _fetched(libs):
        return libs
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _fetched(libs):
            return libs
        if shutil.which("mvn") is None:
            raise InfrastructureError("kafka", "Maven (mvn) is needed to fetch Apache Kafka")
        staging = libs.parent / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        log.warning("fetching Apache Kafka %s from Maven Central", KAFKA_VERSION)
        command = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=FETCH_TIMEOUT_SECONDS,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise InfrastructureError(
                "kafka", f"fetching Apache Kafka with Maven took over {FETCH_TIMEOUT_SECONDS:.0f}s"
            ) from None
        jar = staging / f"kafka_2.13-{KAFKA_VERSION}.jar"
        if result.returncode != 0 or not jar.exists():
            raise InfrastructureError(
                "kafka",
                f"mvn could not fetch Apache Kafka {KAFKA_VERSION}: "
                f"{(result.stdout + result.stderr)[-800:]}",
            )
        (staging / ".complete").write_text(KAFKA_VERSION)
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
    return libs


def cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, never starting
    with ``-`` (as Kafka's own ids: a command line would read it as an option)."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def server_properties(data_dir: Path, port: int, controller_port: int, partitions: int) -> str:
    """The broker's configuration (pure, so it is unit-tested)."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # Static voters: the controller's address may change between starts (free ports).
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": str(partitions),
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _check_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise InfrastructureError(
            "kafka", f"the log dir {directory} is not writable: {error.strerror or error}"
        ) from None


def _ports(home: Path, port: int | None) -> tuple[int, int]:
    """The broker and controller ports: ``port`` when given (it must be free), else the ports
    of the previous start when both are still free (clients keep their address), else new."""
    remembered = home / "ports.json"
    if port is not None:
        if port_open("127.0.0.1", port):
            raise InfrastructureError(
                "kafka", f"port 127.0.0.1:{port} is already in use by another process"
            )
        return port, free_port()
    with contextlib.suppress(OSError, ValueError, KeyError):
        previous = json.loads(remembered.read_text())
        broker, controller = int(previous["broker"]), int(previous["controller"])
        if not port_open("127.0.0.1", broker) and not port_open("127.0.0.1", controller):
            return broker, controller
    return free_port(), free_port()


def start_apache_kafka(
    state_dir: Path,
    port: int | None = None,
    partitions: int = 3,
    cache_dir: Path | None = None,
) -> Component:
    """Start (or restart, on the same log dir) a local Apache Kafka under ``state_dir/kafka``."""
    reason = unavailable_reason(cache_dir)
    if reason:
        raise InfrastructureError("kafka", reason)
    java = java_executable()
    assert java is not None
    libs = fetch(cache_dir)
    home = state_dir / "kafka"
    _check_writable(home)
    data = home / "data"
    _check_writable(data)
    log_file = home / "kafka.log"
    port, controller_port = _ports(home, port)
    config = home / "server.properties"
    config.write_text(server_properties(data, port, controller_port, partitions))
    classpath = f"{libs}/*"
    if not (data / "meta.properties").exists():
        result = subprocess.run(
            [
                *(str(java), "-cp", classpath, "kafka.tools.StorageTool", "format"),
                *(f"--cluster-id={cluster_id()}", f"--config={config}", "--ignore-formatted"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise InfrastructureError(
                "kafka", f"formatting the log dir {data} failed: {result.stderr[-800:]}"
            )
    (home / "ports.json").write_text(json.dumps({"broker": port, "controller": controller_port}))
    command = [
        str(java),
        *JVM_OPTIONS,
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        *("-cp", classpath, "kafka.Kafka", str(config)),
    ]
    process = launch_broker(command, log_file, port, "Apache Kafka", START_TIMEOUT_SECONDS)
    return Component(
        name="kafka",
        source=Source.LOCAL,
        address=f"127.0.0.1:{port}",
        pid=process.pid,
        data_dir=str(data),
        bin_dir=str(libs),
        log_file=str(log_file),
        flavor=f"apache-kafka {KAFKA_VERSION} (KRaft, Java {java_major_version(java)})",
    )


def stop_apache_kafka(component: Component, timeout: float = 30.0) -> None:
    """A controlled shutdown (SIGTERM), SIGKILL after ``timeout``; the log dir stays."""
    stop_pid(component.pid, timeout=timeout)
    if pid_alive(component.pid):
        raise InfrastructureError("kafka", f"pid {component.pid} did not stop")
