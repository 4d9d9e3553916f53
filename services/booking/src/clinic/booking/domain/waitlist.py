"""A patient waiting for earlier time of one appointment type (FHIR status ``waitlist``)."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from eventsourcing.domain import event

from clinic.booking.domain.acting import BookingAggregate
from clinic.booking.domain.errors import InvalidTransitionError

DEFAULT_PRIORITY = 5
"""The priority of an entry nobody ranked, and of every entry recorded before priorities."""
PRIORITIES = range(1, 10)
"""1 is the most urgent, 9 the least."""
WEEKDAYS = range(1, 8)
"""ISO weekdays: 1 is Monday, 7 Sunday."""


class WaitlistEntry(BookingAggregate):
    @event("Joined")
    def __init__(
        self,
        organization_id: UUID,
        patient_id: UUID,
        appointment_type_id: UUID,
        location_ids: tuple[UUID, ...],
        earliest: dt.date,
        latest: dt.date,
        times_of_day: tuple[str, ...],
        provider_id: UUID | None,
        note: str,
        joined_at: dt.datetime,
        # Defaults: entries joined before priorities and weekdays existed load with them.
        priority: int = DEFAULT_PRIORITY,
        weekdays: tuple[int, ...] = (),
    ) -> None:
        self.organization_id = organization_id
        self.patient_id = patient_id
        self.appointment_type_id = appointment_type_id
        self.location_ids = tuple(location_ids)
        self.earliest = earliest
        self.latest = latest
        self.times_of_day = tuple(times_of_day)
        self.provider_id = provider_id
        self.note = note
        self.joined_at = joined_at
        self.priority = priority
        self.weekdays = tuple(weekdays)
        self.active = True
        self.left: dict[str, object] | None = None

    def leave(self, reason: str, now: dt.datetime) -> None:
        if not self.active:
            raise InvalidTransitionError("the patient already left the waitlist")
        self._left(reason=reason, left_at=now)

    @event("Left")
    def _left(self, reason: str, left_at: dt.datetime) -> None:
        self.active = False
        self.left = {"reason": reason, "at": left_at}
