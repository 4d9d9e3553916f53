"""Waitlist events, on ``booking.waitlist.v1``. Carry patient_id only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import Field

from clinic.events.payload import EventPayload
from clinic.events.topics import Topic
from clinic.events.types import UtcDateTime


class _WaitlistEvent(EventPayload):
    topic: ClassVar[Topic] = Topic.WAITLIST

    entry_id: UUID


class WaitlistJoined(_WaitlistEvent):
    """A patient waits for earlier time of an appointment type at some locations."""

    event_type: ClassVar[str] = "Waitlist.Joined"
    patient_id: UUID
    appointment_type_id: UUID
    location_ids: tuple[UUID, ...]
    earliest: dt.date
    latest: dt.date
    times_of_day: tuple[str, ...] = ()
    provider_id: UUID | None = None
    joined_at: UtcDateTime
    priority: int = Field(
        5,
        ge=1,
        le=9,
        description="1 (most urgent) to 9 (least): who is offered freed time first. Set by the "
        "clinic; 5 when nobody ranked the entry (and on entries joined before priorities).",
    )
    weekdays: tuple[Annotated[int, Field(ge=1, le=7)], ...] = Field(
        (),
        max_length=7,
        description="The ISO weekdays the patient can come (1 = Monday .. 7 = Sunday), each "
        "once, in order; empty: any day.",
    )


class WaitlistLeft(_WaitlistEvent):
    event_type: ClassVar[str] = "Waitlist.Left"
    reason: str
    left_at: UtcDateTime
