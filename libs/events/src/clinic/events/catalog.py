"""The catalog of event types: every payload model of every payload module, by
(event type, schema version). :class:`Envelope` looks payloads up here; the contract tests
and schema snapshots list them from here. A new payload module is added to ``MODULES``."""

from __future__ import annotations

from types import ModuleType

from clinic.events import (
    appointments,
    patients,
    reference,
    resource_days,
    schedules,
    waitlist,
)
from clinic.events.payload import EventPayload

MODULES: tuple[ModuleType, ...] = (
    appointments,
    patients,
    reference,
    resource_days,
    schedules,
    waitlist,
)


def _collect() -> dict[tuple[str, int], type[EventPayload]]:
    found: dict[tuple[str, int], type[EventPayload]] = {}
    for module in MODULES:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, EventPayload)
                and value.__module__ == module.__name__
                and "event_type" in vars(value)
            ):
                key = (value.event_type, value.schema_version)
                if key in found and found[key] is not value:
                    raise ValueError(f"event type {key} is declared twice: {found[key]}, {value}")
                found[key] = value
    return found


_CATALOG = _collect()


def payload_types() -> dict[tuple[str, int], type[EventPayload]]:
    """Every payload type, keyed by (event_type, schema_version)."""
    return dict(_CATALOG)


def lookup(event_type: str, schema_version: int) -> type[EventPayload] | None:
    return _CATALOG.get((event_type, schema_version))
