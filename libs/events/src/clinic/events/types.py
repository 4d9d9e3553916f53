"""Field types shared by the envelope and payloads."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer, WithJsonSchema


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:  # what every "Z" parses to: nothing to convert
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a timezone-aware instant is required (ISO 8601 with Z or an offset)")
    return value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as every event carries instants."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcDateTime = Annotated[
    datetime,
    AfterValidator(_require_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""An instant: accepted with any offset, always stored and sent as UTC with ``Z``."""
