"""The shape of a free start, wherever one is offered: availability's slot search and booking's
alternatives on a 409 give the same JSON object, so a client (and the gateway) reads both the
same way and can book either as it is."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from typing_extensions import TypedDict

from clinic.events.types import format_utc


class FreeStart(TypedDict):
    start: str
    """The instant, RFC 3339 UTC with ``Z``."""
    end: str
    local_start: str
    """The same instant as wall-clock time at the location, with its offset."""
    local_end: str
    time_zone: str
    """The location's IANA zone."""
    location_id: str
    resources: dict[str, str]
    """Role -> the resource that would fill it (pass as ``preferred_resources`` to book it)."""
    seats_left: int | None
    """Seats still free for a group session; None for a one-patient visit."""


def free_start(
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    location_id: UUID,
    resources: dict[str, UUID],
    seats_left: int | None = None,
) -> FreeStart:
    return {
        "start": format_utc(start),
        "end": format_utc(end),
        "local_start": start.astimezone(tz).isoformat(),
        "local_end": end.astimezone(tz).isoformat(),
        "time_zone": tz.key,
        "location_id": str(location_id),
        "resources": {role: str(rid) for role, rid in resources.items()},
        "seats_left": seats_left,
    }
