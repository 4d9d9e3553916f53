"""`make chaos`, short and seeded, inside `make test`: the platform as `make up` starts it
takes a racing load through the gateway while services are killed with SIGKILL and started
again, and nothing accepted is lost, changed behind the client's back, double-booked, or
missing or doubled on availability's calendars."""

from __future__ import annotations

from pathlib import Path

from clinic.devstack.chaos import chaos
from clinic.devstack.components import Infrastructure
from clinic.devstack.stack import Stack
from clinic.devstack.testing import stack_env


def test_a_short_seeded_chaos_run_loses_doubles_and_double_books_nothing(
    tmp_path: Path, infrastructure: Infrastructure
) -> None:
    stack = Stack(tmp_path / "chaos", stack_env(infrastructure))
    try:
        findings = chaos(stack, seed=3, seconds=10, clients=3, fault_every=4)
    finally:
        stack.down()
    assert findings.faults >= 1
    assert findings.accepted > 0
    assert not findings.failed, findings
