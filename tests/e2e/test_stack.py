"""`make up` and `make down` as a newcomer runs them: every service ready, then nothing left."""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clinic.platform.infra import Infrastructure, free_port, pid_alive, port_open
from clinic.platform.stack import SERVICES, Stack, StackError


def stack_env(infrastructure: Infrastructure, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PORT", "_URL"))}
    env.update(infrastructure.environment())
    env.update({f"{s.env_prefix}PORT": str(free_port()) for s in SERVICES})
    env.update(extra)
    return env


@pytest.fixture
def stack(tmp_path: Path, infrastructure: Infrastructure) -> Iterator[Stack]:
    stack = Stack(tmp_path / "up", stack_env(infrastructure))
    yield stack
    stack.down()


def test_up_makes_every_service_ready_and_down_leaves_no_process_or_port(stack: Stack) -> None:
    _, services = stack.up(timeout=90)
    for service in services.values():
        response = httpx.get(f"{service.url}/readyz", timeout=5)
        assert response.status_code == 200, (service.name, response.text)

    # A second `up` finds the running platform and starts nothing new.
    _, again = stack.up(timeout=30)
    assert {n: s.pid for n, s in again.items()} == {n: s.pid for n, s in services.items()}

    stack.down()
    for service in services.values():
        assert not pid_alive(service.pid), service.name
        assert not port_open("127.0.0.1", service.port), service.name
    assert not (stack.state_dir / "services.json").exists()


def test_up_names_the_component_that_cannot_become_ready(
    tmp_path: Path, infrastructure: Infrastructure
) -> None:
    dead_database = f"postgresql://clinic@127.0.0.1:{free_port()}/clinic"
    stack = Stack(tmp_path / "bad", stack_env(infrastructure, DATABASE_URL=dead_database))
    try:
        # Long enough for five services to start on a slow 2-CPU machine (about 8 s on one)
        # and answer /readyz with their own reason, rather than not answering yet.
        with pytest.raises(StackError) as failure:
            stack.up(timeout=30)
        assert set(failure.value.failures) == {s.name for s in SERVICES}
        reasons = failure.value.failures
        assert all("database" in reason for reason in reasons.values()), reasons
    finally:
        stack.down()
