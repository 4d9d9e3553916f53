"""The infrastructure ladder (DESIGN section 6): where PostgreSQL and Kafka come from.

For each of the two, in this order:
1. an address given in the environment (``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``) is used
   as it is, once it answered (a bounded check, so a wrong address is named, not waited on);
2. else, where a Docker engine answers, testcontainers starts PostgreSQL and Apache Kafka
   (KRaft);
3. else the project starts its own on 127.0.0.1 on free ports, under the state directory:
   - a private PostgreSQL cluster from Debian's server binaries (installed with apt-get when
     missing; ``postgres``);
   - genuine Apache Kafka in KRaft mode, fetched from Maven Central by a committed pom and run
     with the machine's Java 17+ (``apache_kafka``), where Java and Maven (or an already
     fetched copy) exist;
4. and only on a machine without them, Tansu, a memory-only Kafka-wire broker (``tansu``),
   whose gaps are declared to the services through ``KAFKA_ENABLE_IDEMPOTENCE=false`` and
   ``KAFKA_BROKER_KEEPS_DATA=false``. ``CLINIC_LOCAL_KAFKA=apache-kafka|tansu`` picks one of
   the local rungs by hand.

``make up`` and the pytest fixtures both call :class:`Ladder`; what it started is written to
``<state dir>/infra.json`` so a second ``up`` reuses it and ``down`` stops it by pid. ``down``
keeps the data (PostgreSQL's cluster, Kafka's log dir) for the next ``up``; ``down --purge``
deletes it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from clinic.devstack.apache_kafka import start_apache_kafka, stop_apache_kafka, unavailable_reason
from clinic.devstack.components import (
    Component,
    Infrastructure,
    InfrastructureError,
    Source,
    pid_alive,
    stop_pid,
)
from clinic.devstack.containers import (
    docker_engine_answers,
    start_container_kafka,
    start_container_postgres,
    stop_container,
)
from clinic.devstack.kafka_probe import kafka_answers
from clinic.devstack.postgres import postgres_answers, start_local_postgres, stop_local_postgres
from clinic.devstack.tansu import start_tansu

log = logging.getLogger(__name__)

ENVIRONMENT_CHECK_SECONDS = 10.0


class LocalKafka:
    APACHE = "apache-kafka"
    TANSU = "tansu"


def choose_local_kafka(forced: str | None, apache_unavailable: str | None) -> str:
    """Which local broker runs (pure, so it is unit-tested): Apache Kafka wherever it can,
    Tansu only where it cannot, unless ``CLINIC_LOCAL_KAFKA`` forces one."""
    if forced:
        if forced not in (LocalKafka.APACHE, LocalKafka.TANSU):
            raise InfrastructureError(
                "kafka", f"CLINIC_LOCAL_KAFKA={forced!r}: expected 'apache-kafka' or 'tansu'"
            )
        if forced == LocalKafka.APACHE and apache_unavailable:
            raise InfrastructureError("kafka", apache_unavailable)
        return forced
    return LocalKafka.TANSU if apache_unavailable else LocalKafka.APACHE


def choose_source(configured: str | None, docker_answers: Callable[[], bool]) -> Source:
    """The rung of the ladder for one component (pure, so it is unit-tested)."""
    if configured:
        return Source.ENVIRONMENT
    if docker_answers():
        return Source.TESTCONTAINERS
    return Source.LOCAL


def start_local_kafka(
    state_dir: Path, port: int | None = None, env: Mapping[str, str] | None = None
) -> Component:
    """The local rung: Apache Kafka where Java 17+ and Maven (or a fetched copy) exist, else
    Tansu; under ``state_dir/kafka``, on ``port`` or a free one."""
    env = os.environ if env is None else env
    reason = unavailable_reason()
    chosen = choose_local_kafka(env.get("CLINIC_LOCAL_KAFKA"), reason)
    if chosen == LocalKafka.TANSU:
        log.warning("local Kafka: Tansu (%s)", reason or "CLINIC_LOCAL_KAFKA=tansu")
        return start_tansu(state_dir, port)
    return start_apache_kafka(state_dir, port)


def stop_local_kafka(component: Component) -> None:
    """Stop a local broker by pid (Apache Kafka with a controlled shutdown); data stays."""
    if component.keeps_data:
        stop_apache_kafka(component)
    else:
        stop_pid(component.pid)


def resident_megabytes(pid: int | None) -> float | None:
    """Resident memory of a process and its children (PostgreSQL's backends), in MB."""
    import psutil

    if not pid_alive(pid):
        return None
    try:
        process = psutil.Process(pid)
        tree = [process, *process.children(recursive=True)]
        return sum(p.memory_info().rss for p in tree) / 1e6
    except psutil.Error:
        return None


# --------------------------------------------------------------------------- the ladder


class Ladder:
    """Provides PostgreSQL and Kafka for one state directory, reusing what is still running."""

    def __init__(self, state_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.state_file = self.state_dir / "infra.json"
        self.env = os.environ if env is None else env
        # Containers must outlive this process (make up returns); down removes them.
        os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

    def _load(self) -> dict[str, Component]:
        if not self.state_file.exists():
            return {}
        raw = json.loads(self.state_file.read_text())
        return {name: Component(**{**c, "source": Source(c["source"])}) for name, c in raw.items()}

    def _save(self, components: dict[str, Component]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(
            json.dumps({n: asdict(c) for n, c in components.items()}, indent=2)
        )

    def _still_running(self, component: Component) -> bool:
        if component.source == Source.ENVIRONMENT:
            return False  # re-read the environment every time
        if component.source == Source.LOCAL and not pid_alive(component.pid):
            return False
        if component.name == "postgres":
            return postgres_answers(component.address)
        return kafka_answers(component.address)

    def up(self) -> Infrastructure:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        components = self._load()
        for name, provide in (("postgres", self._postgres), ("kafka", self._kafka)):
            existing = components.get(name)
            if existing is not None and self._still_running(existing):
                continue
            if existing is not None:
                self._stop(existing)
            components[name] = provide()
            self._save(components)
        return Infrastructure(postgres=components["postgres"], kafka=components["kafka"])

    def _postgres(self) -> Component:
        configured = self.env.get("DATABASE_URL")
        source = choose_source(configured, docker_engine_answers)
        if source == Source.ENVIRONMENT:
            assert configured is not None
            if not postgres_answers(configured, timeout=ENVIRONMENT_CHECK_SECONDS):
                raise InfrastructureError(
                    "postgres",
                    f"DATABASE_URL={configured} does not answer "
                    f"(waited up to {ENVIRONMENT_CHECK_SECONDS:.0f}s)",
                )
            return Component(name="postgres", source=source, address=configured)
        if source == Source.TESTCONTAINERS:
            return start_container_postgres()
        return start_local_postgres(self.state_dir)

    def _kafka(self) -> Component:
        configured = self.env.get("KAFKA_BOOTSTRAP_SERVERS")
        source = choose_source(configured, docker_engine_answers)
        if source == Source.ENVIRONMENT:
            assert configured is not None
            if not kafka_answers(configured, timeout_seconds=ENVIRONMENT_CHECK_SECONDS):
                raise InfrastructureError(
                    "kafka",
                    f"KAFKA_BOOTSTRAP_SERVERS={configured} answers no metadata request "
                    f"(waited up to {ENVIRONMENT_CHECK_SECONDS:.0f}s)",
                )
            return Component(
                name="kafka",
                source=source,
                address=configured,
                supports_idempotence=self._flag("KAFKA_ENABLE_IDEMPOTENCE"),
                keeps_data=self._flag("KAFKA_BROKER_KEEPS_DATA"),
            )
        if source == Source.TESTCONTAINERS:
            return start_container_kafka()
        return start_local_kafka(self.state_dir, env=self.env)

    def _flag(self, name: str) -> bool:
        return self.env.get(name, "true").lower() != "false"

    def _stop(self, component: Component) -> None:
        if component.source == Source.TESTCONTAINERS:
            stop_container(component.container_id)
        elif component.source == Source.LOCAL:
            if component.name == "postgres":
                stop_local_postgres(component)
            else:
                stop_local_kafka(component)

    def kill(self, name: str) -> Component:
        """SIGKILL a component this state directory started on this machine (``make chaos``:
        a crash, not a shutdown); the next :meth:`up` starts it again on its data and port."""
        component = self._load().get(name)
        if component is None or component.source != Source.LOCAL or not component.pid:
            raise InfrastructureError(name, "only a local component started here can be killed")
        with contextlib.suppress(ProcessLookupError):
            os.kill(component.pid, signal.SIGKILL)
        return component

    def status(self) -> list[str]:
        """One line per component: what runs, where, and its resident memory."""
        lines = []
        for name, component in self._load().items():
            what = f"{name}: {component.flavor or component.source} at {component.address}"
            if component.source == Source.LOCAL:
                rss = resident_megabytes(component.pid)
                what += f", pid {component.pid}, " + (
                    f"resident memory {rss:.0f} MB" if rss is not None else "not running"
                )
            lines.append(what)
        return lines

    def down(self, purge: bool = False) -> list[str]:
        """Stop everything this state directory started; returns what was stopped. ``purge``
        also deletes their data: the PostgreSQL cluster and Kafka's log dir (test runs leave
        nothing behind)."""
        stopped = []
        components = self._load()
        for name in ("kafka", "postgres"):
            component = components.pop(name, None)
            if component is not None and component.source != Source.ENVIRONMENT:
                self._stop(component)
                stopped.append(
                    f"{name} ({component.flavor or component.source}, {component.address})"
                )
                if purge and component.data_dir and component.source == Source.LOCAL:
                    home = Path(component.data_dir).parent
                    shutil.rmtree(home, ignore_errors=True)
                    link = self.state_dir / "postgres"
                    if link.is_symlink():
                        link.unlink()
            self._save(components)
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinic.devstack.infra", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "env", "status"])
    parser.add_argument("--purge", action="store_true", help="down: delete the local cluster")
    parser.add_argument("--state-dir", type=Path, default=Path(".local/infra"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    ladder = Ladder(args.state_dir)
    try:
        if args.command == "down":
            for line in ladder.down(purge=args.purge):
                print(f"stopped {line}")
            return 0
        if args.command == "status":
            for line in ladder.status():
                print(line)
            return 0
        infra = ladder.up()
    except InfrastructureError as error:
        print(f"FAILED {error.component}: {error.reason}", file=sys.stderr)
        return 1
    print(f"# {infra.describe()}")
    for key, value in infra.environment().items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
