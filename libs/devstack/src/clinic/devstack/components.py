"""What the infrastructure ladder provides, and the process handling every rung shares."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

DATABASE_NAME = "clinic"
DATABASE_USER = "clinic"


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
    flavor: str = ""
    """What runs there, with its version, e.g. ``apache-kafka 4.4.0`` (empty when unknown)."""
    supports_idempotence: bool = True
    keeps_data: bool = True
    """False for a broker that comes back empty after a restart (Tansu)."""


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
            "KAFKA_BROKER_KEEPS_DATA": "true" if self.kafka.keeps_data else "false",
        }

    def describe(self) -> str:
        """One line naming each component, its rung and its version, for summaries."""
        return "; ".join(
            f"{c.name}: {c.flavor or 'unknown version'} ({c.source}, {c.address})"
            for c in (self.postgres, self.kafka)
        )


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
