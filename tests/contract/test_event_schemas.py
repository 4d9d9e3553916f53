"""Every event's schema is committed, and no change breaks the committed version."""

import json
from pathlib import Path

import pytest

from clinic.events.schema import breaking_changes, event_schemas

SCHEMAS = Path(__file__).parent / "schemas"
CURRENT = event_schemas()
COMMITTED = {p.stem: json.loads(p.read_text()) for p in sorted(SCHEMAS.glob("*.json"))}


@pytest.mark.parametrize("name", sorted(COMMITTED))
def test_no_committed_event_schema_is_broken_by_the_code(name: str) -> None:
    assert name in CURRENT, (
        f"{name} was published and is gone: a removed event type is a breaking change; "
        "keep it, or publish a new version beside it"
    )
    assert breaking_changes(COMMITTED[name], CURRENT[name]) == []


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_every_event_schema_is_committed_as_it_is_in_the_code(name: str) -> None:
    assert name in COMMITTED, f"{name} has no snapshot: run `make contract-snapshot` and commit"
    assert COMMITTED[name] == json.loads(json.dumps(CURRENT[name])), (
        f"{name} changed compatibly: run `make contract-snapshot` and commit the snapshot"
    )
