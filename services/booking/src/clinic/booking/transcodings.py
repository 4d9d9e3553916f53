"""How booking's value objects are stored inside events (eventsourcing's JSON transcoder)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import types
import typing
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from clinic.booking.domain.reference import DirectoryEntry
from clinic.booking.domain.values import (
    Address,
    Claim,
    Contact,
    Identifier,
    Participant,
    PatientText,
    Reminder,
    Requirement,
    ScheduleException,
    Step,
    WeeklyHours,
)

VALUE_OBJECTS: tuple[type, ...] = (
    Address,
    Claim,
    Contact,
    DirectoryEntry,
    Identifier,
    Participant,
    PatientText,
    Reminder,
    Requirement,
    ScheduleException,
    Step,
    WeeklyHours,
)


class DateAsISO(Transcoding):
    type = dt.date
    name = "date_iso"

    def encode(self, obj: dt.date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> dt.date:
        return dt.date.fromisoformat(data)


class TimeAsISO(Transcoding):
    type = dt.time
    name = "time_iso"

    def encode(self, obj: dt.time) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> dt.time:
        return dt.time.fromisoformat(data)


class ValueObjectAsDict(Transcoding):
    """A frozen dataclass as a dict of its fields. JSON turns tuples into lists and enums
    into strings; decoding turns them back using the dataclass's type hints."""

    def __init__(self, cls: type) -> None:
        self.type = cls
        self.name = f"booking.{cls.__name__}"
        self.hints = typing.get_type_hints(cls)

    def encode(self, obj: Any) -> dict[str, Any]:
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**{k: _restore(self.hints.get(k), v) for k, v in data.items()})


def _restore(hint: Any, value: Any) -> Any:
    if value is None or hint is None:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _restore(options[0], value) if len(options) == 1 else value
    if origin is tuple and isinstance(value, list):
        args = typing.get_args(hint)
        inner = args[0] if args else None
        return tuple(_restore(inner, v) for v in value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum) and not isinstance(value, hint):
        return hint(value)
    return value


def register_transcodings(transcoder: JSONTranscoder) -> None:
    transcoder.register(DateAsISO())
    transcoder.register(TimeAsISO())
    for cls in VALUE_OBJECTS:
        transcoder.register(ValueObjectAsDict(cls))
