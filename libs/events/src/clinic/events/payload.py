"""The base of every typed event payload. The catalog of event types is ``catalog``."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from clinic.events.topics import Topic

_field_names: dict[type[EventPayload], frozenset[str]] = {}


class EventPayload(BaseModel):
    """A fact one service tells the others.

    Subclasses declare ``event_type`` (past tense, ``Appointment.Booked``), ``schema_version``
    and the ``topic`` they travel on, and are listed in ``catalog``. Payloads are
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
