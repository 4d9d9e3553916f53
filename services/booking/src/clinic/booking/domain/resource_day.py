"""``ResourceDay``: the contention unit. Who holds which minutes of one resource on one day.

Its id is derived from the resource id and the local date, so a command loads it without a
lookup; optimistic concurrency on its version makes two racing claims on the same day fail
as a whole for one of them, which then re-decides.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from clinic.booking.domain.acting import BookingAggregate
from clinic.booking.domain.errors import (
    NotFoundError,
    OverbookingNotAllowedError,
    SessionFullError,
    SlotTakenError,
)
from clinic.booking.domain.values import Claim, Interval

RESOURCE_DAY_NAMESPACE = uuid5(NAMESPACE_URL, "https://clinic.example/booking/resource-day")


@functools.lru_cache(maxsize=65536)
def resource_day_id(resource_id: UUID, local_date: dt.date) -> UUID:
    return uuid5(RESOURCE_DAY_NAMESPACE, f"{resource_id}/{local_date.isoformat()}")


def check_claim(
    claims: Iterable[Claim],
    new: Claim,
    now: dt.datetime,
    overbooking_allowance: int,
    allow_overbooking: bool,
) -> bool:
    """Whether ``new`` may join ``claims`` (the live claims of other appointments). Returns
    True when it fits only as an overbooking; raises the rule it breaks otherwise.

    Rules: claims conflict when their blocked intervals (buffers included) overlap, unless
    both belong to the same group session, which holds up to its capacity in seats. A
    provider may take up to ``overbooking_allowance`` conflicting claims, and only when the
    caller explicitly asks for overbooking.
    """
    # The busiest loop of a booking: the cheap time comparison (the blocked intervals,
    # half-open, overlap) comes first.
    lo, hi = new.blocked_from, new.blocked_until
    conflicting: list[Claim] = []
    session_seats = 0
    for claim in claims:
        if claim.blocked_from >= hi or lo >= claim.blocked_until:
            continue
        if claim.appointment_id == new.appointment_id or not claim.live(now):
            continue
        if new.session is not None and claim.session == new.session:
            session_seats += claim.seats
            continue
        conflicting.append(claim)
    if new.session is not None and session_seats + new.seats > new.capacity:
        raise SessionFullError(
            f"all {new.capacity} seats of this session are taken", capacity=new.capacity
        )
    if not conflicting:
        return False
    if not allow_overbooking:
        raise SlotTakenError(
            f"{new.start.isoformat()} to {new.end.isoformat()} overlaps "
            f"{len(conflicting)} existing appointment(s)",
            taken_by=[str(c.appointment_id) for c in conflicting],
        )
    if len(conflicting) > overbooking_allowance:
        raise OverbookingNotAllowedError(
            f"overbooking allowance is {overbooking_allowance}; this time already has "
            f"{len(conflicting)} overlapping appointment(s)",
            allowance=overbooking_allowance,
        )
    return True


class ResourceDay(BookingAggregate):
    @staticmethod
    def create_id(resource_id: UUID, local_date: dt.date) -> UUID:
        return resource_day_id(resource_id, local_date)

    @event("Opened")
    def __init__(self, resource_id: UUID, local_date: dt.date, organization_id: UUID) -> None:
        self.resource_id = resource_id
        self.local_date = local_date
        self.organization_id = organization_id
        self.claims: dict[tuple[UUID, str], Claim] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> ResourceDay:
        """Claims are immutable: a copy needs its own dict of them, not copies of each. This
        keeps the repository's copy-on-read cache cheap for the busiest aggregate."""
        copied = object.__new__(type(self))
        copied.__dict__.update(self.__dict__)
        copied.claims = dict(self.claims)
        copied.__dict__["_pending_events"] = list(self.__dict__.get("_pending_events", ()))
        return copied

    def live_claims(self, now: dt.datetime) -> list[Claim]:
        return [c for c in self.claims.values() if c.live(now)]

    def claim(
        self,
        claim: Claim,
        now: dt.datetime,
        overbooking_allowance: int = 0,
        allow_overbooking: bool = False,
    ) -> None:
        """Take time for an appointment. Expired holds in the way are released first, as
        events of their own, so the history says why the time became free."""
        overbooked = check_claim(
            self.claims.values(), claim, now, overbooking_allowance, allow_overbooking
        )
        lo, hi = claim.blocked_from, claim.blocked_until
        lapsed = {
            other.appointment_id
            for other in self.claims.values()
            if not other.live(now)
            and other.blocked_from < hi
            and lo < other.blocked_until
            and other.appointment_id != claim.appointment_id
        }
        for appointment_id in sorted(lapsed):
            self._hold_lapsed(appointment_id=appointment_id, lapsed_at=now)
        if overbooked and not claim.overbooked:
            claim = Claim(**{**claim.__dict__, "overbooked": True})
        self._time_claimed(claim=claim)

    def lapse(self, appointment_id: UUID, now: dt.datetime) -> None:
        """An expired hold's claims leave the day (if a later claim has not taken them yet)."""
        if self.claims_of(appointment_id):
            self._hold_lapsed(appointment_id=appointment_id, lapsed_at=now)

    @event("HoldLapsed")
    def _hold_lapsed(self, appointment_id: UUID, lapsed_at: dt.datetime) -> None:
        self._drop(appointment_id)

    @event("TimeClaimed")
    def _time_claimed(self, claim: Claim) -> None:
        self.claims[(claim.appointment_id, claim.role)] = claim

    def claims_of(self, appointment_id: UUID) -> list[Claim]:
        return [c for c in self.claims.values() if c.appointment_id == appointment_id]

    def confirm(self, appointment_id: UUID) -> None:
        """A confirmed hold keeps its time without expiry."""
        if not self.claims_of(appointment_id):
            raise NotFoundError("claim", appointment_id)
        self._claim_confirmed(appointment_id=appointment_id)

    @event("ClaimConfirmed")
    def _claim_confirmed(self, appointment_id: UUID) -> None:
        for key, claim in list(self.claims.items()):
            if claim.appointment_id == appointment_id:
                self.claims[key] = Claim(**{**claim.__dict__, "hold_expires_at": None})

    def release(self, appointment_id: UUID, reason: str) -> None:
        if self.claims_of(appointment_id):
            self._time_released(appointment_id=appointment_id, reason=reason)

    @event("TimeReleased")
    def _time_released(self, appointment_id: UUID, reason: str) -> None:
        self._drop(appointment_id)

    def _drop(self, appointment_id: UUID) -> None:
        for key in [k for k, c in self.claims.items() if c.appointment_id == appointment_id]:
            del self.claims[key]

    def free_of(self, interval: Interval, now: dt.datetime, ignoring: UUID | None = None) -> bool:
        return not any(
            c.blocked.overlaps(interval)
            for c in self.live_claims(now)
            if c.appointment_id != ignoring
        )
