"""Pytest fixtures shared by every package's tests (loaded by the root conftest.py).

Integration tests ask for ``infrastructure``: the first one starts PostgreSQL and Kafka
through the same ladder ``make up`` uses (state under ``.local/test``), and the session stops
them at the end, whatever the outcome. Each test then works in a schema of its own, so tests
never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from clinic.platform.infra import Infrastructure, Ladder, Source
from clinic.platform.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)

REPO_ROOT = Path(__file__).resolve().parents[5]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder: ``integration/`` and ``e2e/`` need the real infrastructure,
    ``tests/contract`` checks contracts."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts or "e2e" in parts:
            item.add_marker(pytest.mark.integration)
        if "contract" in parts:
            item.add_marker(pytest.mark.contract)


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    state = Path(os.environ.get("CLINIC_TEST_STATE_DIR", REPO_ROOT / ".local" / "test"))
    ladder = Ladder(state / "infra")
    infra = ladder.up()
    try:
        yield infra
    finally:
        if infra.postgres.source != Source.ENVIRONMENT or infra.kafka.source != Source.ENVIRONMENT:
            ladder.down(purge=True)


@pytest.fixture
def schema_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings_for(infrastructure: Infrastructure, schema_name: str) -> Callable[..., Any]:
    """Build a service's settings pointed at the test infrastructure, in a fresh schema."""

    def build(settings_cls: type[S], **overrides: Any) -> S:
        values: dict[str, Any] = {
            "database_url": infrastructure.database_url,
            "database_schema": schema_name,
            "kafka_bootstrap_servers": infrastructure.kafka_bootstrap_servers,
            "kafka_enable_idempotence": infrastructure.kafka.supports_idempotence,
            "kafka_partitions": 3,
        }
        values.update(overrides)
        return settings_cls(**values)

    return build
