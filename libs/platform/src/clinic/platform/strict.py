"""Strict request models: one place that says what every service accepts at its boundary.

- ``StrictModel``: unknown fields are refused; models are frozen.
- No coercion: a flag is a JSON ``true``/``false`` (``Flag``), a number is a JSON integer
  (``Count``), never ``"yes"``, ``"5"`` or ``5.0``.
- Text (``Name``, ``Short``, ``Line``, ``Text``) carries no control characters (``Text``
  allows line breaks and tabs) and no lone surrogates, and is bounded: what one service
  accepts, every service downstream can store (PostgreSQL refuses NUL).
- Times within the calendar this platform serves (``EARLIEST`` to ``LATEST``): dates as
  ``YYYY-MM-DD`` (``Day``), instants as RFC 3339 with an offset (``Instant``), wall-clock
  times as ``YYYY-MM-DDTHH:MM[:SS]`` without one (``WallClock``); a date is never read as
  midnight, a number is never read as a time.

Query and path parameters use the same types.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
)

EARLIEST = dt.date(1900, 1, 1)
LATEST = dt.date(2199, 12, 31)
"""The calendar the platform serves: dates and instants outside it are refused (a birth date
in 1900, an appointment in 2199, and nothing a datetime library cannot add a day to)."""

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
_OFFSET = re.compile(r"(Z|z|[+-]\d{2}:?\d{2})$")
_LINE_BREAKS = {"\n", "\r", "\t"}


class StrictModel(BaseModel):
    """Base of every request body: unknown fields are refused, nothing is coerced (with the
    field types below), and the model is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_text(value: str, line_breaks: bool) -> str:
    for character in value:
        category = unicodedata.category(character)
        if category == "Cc" and not (line_breaks and character in _LINE_BREAKS):
            raise ValueError(f"control character U+{ord(character):04X} is not allowed")
        if category == "Cs":
            raise ValueError(f"lone surrogate U+{ord(character):04X} is not allowed")
    return value


def _single_line(value: str) -> str:
    return _check_text(value, line_breaks=False)


def _multi_line(value: str) -> str:
    return _check_text(value, line_breaks=True)


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_single_line)]
"""A name: 1 to 200 characters on one line."""

Short = Annotated[str, Field(min_length=1, max_length=80), AfterValidator(_single_line)]
"""A code, role or kind: 1 to 80 characters on one line."""


Text = Annotated[str, AfterValidator(_multi_line)]
"""Free text that may have line breaks and tabs (notes, reasons, preparation); give its
bounds with ``Field(max_length=...)``."""

Line = Annotated[str, AfterValidator(_single_line)]
"""One line of text (an address line, a contact); give its bounds with ``Field``."""

Flag = StrictBool
"""``true`` or ``false``, nothing else."""

Count = StrictInt
"""A JSON integer (never a string or a float); give its bounds with ``Field(ge=, le=)``."""


def _within(day: dt.date) -> None:
    if not EARLIEST <= day <= LATEST:
        raise ValueError(
            f"{day.isoformat()} is outside {EARLIEST.isoformat()} to {LATEST.isoformat()}"
        )


def _day_text(value: Any) -> Any:
    if isinstance(value, str) and not _DAY.match(value):
        raise ValueError("a date is written YYYY-MM-DD")
    if not isinstance(value, str | dt.date) or isinstance(value, dt.datetime):
        raise ValueError("a date is written YYYY-MM-DD")
    return value


def _day_range(value: dt.date) -> dt.date:
    _within(value)
    return value


Day = Annotated[
    dt.date,
    BeforeValidator(_day_text),
    AfterValidator(_day_range),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "description": f"YYYY-MM-DD, from {EARLIEST.isoformat()} to {LATEST.isoformat()}",
        }
    ),
]
"""A calendar date within the platform's calendar."""


def _date_time_text(value: Any) -> Any:
    if isinstance(value, str) and not _DATE_TIME.match(value):
        raise ValueError("a time is written YYYY-MM-DDTHH:MM[:SS]")
    if not isinstance(value, str | dt.datetime):
        raise ValueError("a time is written YYYY-MM-DDTHH:MM[:SS]")
    return value


def _instant(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("an instant needs its offset, e.g. 2026-03-02T09:30:00+01:00 or Z")
    # The local date first: year 1 or 9999 with an offset has no UTC date Python can hold.
    _within(value.date())
    _within(value.astimezone(dt.UTC).date())
    return value


def _wall_clock(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        raise ValueError("a wall-clock time has no offset; give an instant instead")
    _within(value.date())
    return value


def _wall_clock_text(value: Any) -> Any:
    value = _date_time_text(value)
    if isinstance(value, str) and _OFFSET.search(value):
        raise ValueError("a wall-clock time has no offset; give an instant instead")
    return value


Instant = Annotated[
    dt.datetime,
    BeforeValidator(_date_time_text),
    AfterValidator(_instant),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with an offset (Z or +01:00), within the platform's "
            f"calendar ({EARLIEST.isoformat()} to {LATEST.isoformat()})",
        }
    ),
]
"""An instant with its offset."""

WallClock = Annotated[
    dt.datetime,
    BeforeValidator(_wall_clock_text),
    AfterValidator(_wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$",
            "description": "Wall-clock time at the location, YYYY-MM-DDTHH:MM[:SS], no offset",
        }
    ),
]
"""A local wall-clock time, read in a location's time zone by the service."""


def _time_text(value: Any) -> Any:
    if not isinstance(value, str | dt.time) or (
        isinstance(value, str) and not re.match(r"^\d{2}:\d{2}(:\d{2})?$", value)
    ):
        raise ValueError("a time of day is written HH:MM")
    return value


TimeOfDay = Annotated[
    dt.time,
    BeforeValidator(_time_text),
    WithJsonSchema({"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2})?$"}),
]
"""A wall-clock time of day, HH:MM."""
