"""Starting a local Kafka-protocol broker and waiting until it answers metadata requests
(both local rungs, Apache Kafka and Tansu, do this)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from clinic.devstack.components import InfrastructureError, port_open, stop_pid, tail


async def _kafka_metadata(bootstrap: str, timeout_ms: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


def kafka_answers(bootstrap: str, timeout_seconds: float = 3.0) -> bool:
    """True when ``bootstrap`` answers a metadata request within ``timeout_seconds``."""
    from aiokafka.errors import KafkaError

    async def probe() -> None:
        await asyncio.wait_for(
            _kafka_metadata(bootstrap, int(timeout_seconds * 1000)), timeout_seconds + 1
        )

    try:
        asyncio.run(probe())
    except (KafkaError, OSError, TimeoutError):
        return False
    return True


def launch_broker(
    command: list[str], log_file: Path, port: int, label: str, timeout: float
) -> subprocess.Popen[bytes]:
    """Start ``command`` in a session of its own, its output appended to ``log_file``, and
    wait until 127.0.0.1:``port`` answers metadata requests. A broker that exits, or does
    not answer within ``timeout`` seconds (then it is stopped), is named with its last log
    lines."""
    with open(log_file, "ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise InfrastructureError(
                    "kafka", f"{label} exited with {process.returncode}: {tail(log_file)}"
                )
            if port_open("127.0.0.1", port) and kafka_answers(f"127.0.0.1:{port}"):
                return process
            time.sleep(0.3)
    except BaseException:
        # Whatever stops the wait (even an error of the caller's own), the broker started
        # here is not left running unrecorded, holding its log directory's lock.
        stop_pid(process.pid)
        raise
    stop_pid(process.pid)
    raise InfrastructureError(
        "kafka", f"{label} did not answer within {timeout:.0f}s: {tail(log_file)}"
    )
