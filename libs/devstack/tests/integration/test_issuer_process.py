"""The local issuer as `make up` runs it: its own process on 127.0.0.1, recorded with the
services, stopped by pid by `make down` (no PostgreSQL or Kafka needed)."""

import time
from pathlib import Path

import httpx

from clinic.devstack.components import free_port, pid_alive, port_open
from clinic.devstack.stack import Stack, readiness


def test_the_issuer_runs_as_its_own_process_until_down_stops_it(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "up", env={"PATH": "/usr/bin:/bin"})
    issuer = stack._spawn_issuer(free_port())
    stack._save({"issuer": issuer})
    try:
        deadline = time.monotonic() + 30
        while not readiness(issuer.url)[0]:
            assert pid_alive(issuer.pid), Path(issuer.log_file).read_text()
            assert time.monotonic() < deadline, "the issuer never answered /readyz"
            time.sleep(0.2)

        metadata = httpx.get(f"{issuer.url}/.well-known/openid-configuration", timeout=5).json()
        assert metadata["issuer"] == issuer.url
        token = httpx.post(
            f"{issuer.url}/token",
            data={"role": "ops", "org": "92937ae7-73e7-4932-9f34-09ffb41f75a9"},
            timeout=5,
        )
        assert token.json()["token_type"] == "Bearer"
        assert list((stack.state_dir / "issuer" / "keys").glob("signing-*.pem"))
    finally:
        stopped = stack.down()

    assert any(line.startswith("issuer") for line in stopped)
    assert not pid_alive(issuer.pid)
    assert not port_open("127.0.0.1", issuer.port)
