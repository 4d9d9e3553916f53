"""Schedule events, on ``booking.schedules.v1``, keyed by the schedule (one per resource)."""

from __future__ import annotations

import datetime as dt
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from clinic.events.payload import EventPayload
from clinic.events.topics import Topic
from clinic.events.types import UtcDateTime


class WeeklyHoursSpec(BaseModel):
    """Local wall-clock hours at a location on a weekday (0 = Monday)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    location_id: UUID
    weekday: int
    start: dt.time
    end: dt.time
    effective_from: dt.date | None = None
    effective_until: dt.date | None = None


class _ScheduleEvent(EventPayload):
    topic: ClassVar[Topic] = Topic.SCHEDULES

    resource_id: UUID


class WeeklyHoursSet(_ScheduleEvent):
    """The resource's weekly hours, replacing the previous set."""

    event_type: ClassVar[str] = "Schedule.WeeklyHoursSet"
    hours: tuple[WeeklyHoursSpec, ...]


class ScheduleExceptionAdded(_ScheduleEvent):
    """Leave, a holiday or blocked time (removes working time), or extra hours (adds)."""

    event_type: ClassVar[str] = "Schedule.ExceptionAdded"
    exception_id: UUID
    kind: str
    start: UtcDateTime
    end: UtcDateTime
    location_id: UUID | None = None


class ScheduleExceptionRemoved(_ScheduleEvent):
    event_type: ClassVar[str] = "Schedule.ExceptionRemoved"
    exception_id: UUID
