"""The base of every typed event payload, and the registry of event types."""

from __future__ import annotations

from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict

from clinic.events.topics import Topic

_registry: dict[tuple[str, int], type[EventPayload]] = {}
_field_names: dict[type[EventPayload], frozenset[str]] = {}

P = TypeVar("P", bound="type[EventPayload]")


class EventPayload(BaseModel):
    """A fact one service tells the others.

    Subclasses declare ``event_type`` (past tense, ``Appointment.Booked``), ``schema_version``
    and the ``topic`` they travel on, and are registered with :func:`registered`. Payloads are
    frozen and reject unknown fields when built by a producer; consumers read them with
    :meth:`Envelope.payload_as`, which ignores fields added by a newer producer.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    topic: ClassVar[Topic]

    @classmethod
    def read(cls, data: dict[str, Any]) -> Self:
        """Tolerant read: fields this reader does not know are ignored (forward compatible)."""
        names = _field_names.get(cls)
        if names is None:
            names = _field_names[cls] = frozenset(cls.__pydantic_fields__)
        if names.issuperset(data):
            return cls.model_validate(data)
        return cls.model_validate({k: v for k, v in data.items() if k in names})


def registered(cls: P) -> P:
    """Class decorator: make a payload type known to :class:`Envelope` by type and version."""
    key = (cls.event_type, cls.schema_version)
    existing = _registry.get(key)
    if existing is not None and existing is not cls:
        raise ValueError(f"event type {key} is registered twice: {existing} and {cls}")
    _registry[key] = cls
    return cls


def payload_types() -> dict[tuple[str, int], type[EventPayload]]:
    """Every registered payload type, keyed by (event_type, schema_version)."""
    _import_all_payload_modules()
    return dict(_registry)


def lookup(event_type: str, schema_version: int) -> type[EventPayload] | None:
    _import_all_payload_modules()
    return _registry.get((event_type, schema_version))


_imported = False


def _import_all_payload_modules() -> None:
    # Importing the modules runs their @registered decorators (once: lookups are hot).
    global _imported
    if _imported:
        return
    from clinic.events import (  # noqa: F401
        appointments,
        reference,
        resource_days,
        schedules,
        waitlist,
    )

    _imported = True
