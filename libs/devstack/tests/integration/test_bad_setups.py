"""Bad set-ups of the local Kafka get clear words and no hang: no Java, a port already taken,
an unwritable log dir (an address that answers nothing: tests/e2e/test_stack.py)."""

import socket
import time
from pathlib import Path

import pytest

from clinic.devstack.apache_kafka import start_apache_kafka, unavailable_reason
from clinic.devstack.components import InfrastructureError, free_port
from clinic.devstack.infra import start_local_kafka, stop_local_kafka


def without_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH on which no java is found (python and mvn-less, as on a bare machine)."""
    bare = tmp_path / "bin"
    bare.mkdir()
    monkeypatch.setenv("PATH", str(bare))
    monkeypatch.delenv("JAVA_HOME", raising=False)


def test_without_java_apache_kafka_says_so_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_java(monkeypatch, tmp_path)
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match="no Java runtime found"):
        start_apache_kafka(tmp_path / "state")
    assert time.monotonic() - started < 5
    assert "install OpenJDK 17" in (unavailable_reason() or "")


def test_without_java_the_ladder_falls_back_to_tansu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_java(monkeypatch, tmp_path)
    broker = start_local_kafka(tmp_path / "state")
    try:
        assert broker.flavor.startswith("tansu")
        assert not broker.keeps_data
        assert not broker.supports_idempotence
    finally:
        stop_local_kafka(broker)


def test_a_port_already_taken_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InfrastructureError, match=f"port 127.0.0.1:{port} is already in use"):
            start_apache_kafka(tmp_path, port=port)


def test_an_unwritable_log_dir_is_named(tmp_path: Path) -> None:
    # A file where the state directory should be: nothing can be made under it, even by root.
    blocked = tmp_path / "state"
    blocked.write_text("not a directory")
    with pytest.raises(InfrastructureError, match=r"log dir .*state/kafka is not writable"):
        start_apache_kafka(blocked, port=free_port())
