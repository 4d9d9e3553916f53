"""Time claims on one resource's local day, on ``booking.resource-days.v1``."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from clinic.events.payload import EventPayload
from clinic.events.topics import Topic
from clinic.events.types import UtcDateTime


class _ResourceDayEvent(EventPayload):
    topic: ClassVar[Topic] = Topic.RESOURCE_DAYS

    resource_id: UUID
    local_date: dt.date
    appointment_id: UUID


class TimeClaimed(_ResourceDayEvent):
    """An appointment (held or booked) owns these minutes of the resource, buffers included."""

    event_type: ClassVar[str] = "ResourceDay.TimeClaimed"
    role: str = ""
    start: UtcDateTime
    end: UtcDateTime
    blocked_from: UtcDateTime = Field(description="start minus the buffer before")
    blocked_until: UtcDateTime = Field(description="end plus the buffer after")
    seats: int = Field(ge=1, default=1)
    session: str | None = Field(
        None, description="Group session key: claims sharing it share seats."
    )
    capacity: int = Field(ge=1, default=1)
    overbooked: bool = False
    hold_expires_at: UtcDateTime | None = Field(
        None, description="A hold stops owning the time at this instant, with no further event."
    )


class ClaimConfirmed(_ResourceDayEvent):
    """A held claim became a booking: it no longer expires."""

    event_type: ClassVar[str] = "ResourceDay.ClaimConfirmed"


class TimeReleased(_ResourceDayEvent):
    """The appointment no longer owns time on this resource's day."""

    event_type: ClassVar[str] = "ResourceDay.TimeReleased"
    reason: str
