"""The decision loop: how one command becomes saved events, exactly once.

A use case is a function ``(command, attempt) -> Decision``: it reads what it needs through
the :class:`Attempt`, changes aggregates, and returns them with the view to answer.
:meth:`DecisionLoop.run` runs it:

1. The first attempt decides on what this process already holds (cached aggregates and
   reference data, no query). Each further attempt reads everything fresh.
2. The changed aggregates are saved with a ``HandledRequest`` (the request id and its answer)
   in ONE transaction. The save's version checks (and the event store's reference guard)
   refuse a decision taken on data that moved on; the loop then decides again, at most
   ``max_attempts`` fresh times, before the use case's ``exhausted`` error (a 409).
3. A refusal decided on cached copies is decided again on fresh ones: an answer, yes or no,
   is always decided on current data.
4. A repeated request id is recognised when deciding or saving fails (its own earlier
   effect is in the way, or its HandledRequest exists): the first answer is returned again,
   writing nothing; the same id with another request is refused.
5. Resource days an attempt reads for a decision are locked for it until its save is done
   (decisions of this process on one day take turns instead of colliding), with a bounded
   wait so two decisions can never wait on each other for long.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from clinic.booking.aggregate_cache import Reader
from clinic.booking.commands import Command
from clinic.booking.domain.appointment import Appointment
from clinic.booking.domain.errors import (
    BookingError,
    ConcurrencyExhaustedError,
    IdempotencyKeyReusedError,
)
from clinic.booking.domain.request import HandledRequest, handled_request_id
from clinic.booking.domain.resource_day import ResourceDay, resource_day_id

if TYPE_CHECKING:
    from clinic.booking.application import Bookings

log = logging.getLogger(__name__)

C = TypeVar("C", bound=Command)

DAY_WAIT_SECONDS = 0.5


@dataclass(frozen=True)
class Decision:
    """What a use case decided: the aggregates it changed and the view to answer with."""

    changed: list[Aggregate]
    view: dict[str, Any]


@dataclass(frozen=True)
class Outcome:
    """A command's answer: the view, whether the command created something, and whether
    it is the first answer given again to a repeated request."""

    body: dict[str, Any]
    created: bool
    replayed: bool = False


@dataclass(frozen=True)
class UseCase(Generic[C]):
    decide: Callable[[C, Attempt], Decision]
    exhausted: Callable[[C, Attempt], BookingError] | None = None
    """The error when concurrent changes never let it decide (default: slot-contended)."""


class Attempt(Reader):
    """One try at deciding a command: it reads as cached on a first attempt and fresh on the
    others, knows the time of the decision, and holds the resource days it reads."""

    def __init__(self, app: Bookings, fresh: bool) -> None:
        super().__init__(app.aggregates, fresh)
        self.app = app
        self.reference = app.reference
        self.now: dt.datetime = app.clock()
        self.held: list[UUID] = []

    def day(self, day_id: UUID) -> ResourceDay | None:
        """A resource day for a decision, held for this attempt unless another decision of
        this process keeps it longer than ``DAY_WAIT_SECONDS`` (then both stay correct: the
        save still checks every version)."""
        if day_id not in self.held and self.app.day_locks.acquire(day_id, timeout=DAY_WAIT_SECONDS):
            self.held.append(day_id)
        day: ResourceDay | None = self.maybe(day_id)
        return day

    def days_of(self, appointment: Appointment) -> dict[UUID, ResourceDay | None]:
        """Every resource day the appointment holds time on."""
        days: dict[UUID, ResourceDay | None] = {}
        for participant in appointment.participants:
            for local_date in participant.local_dates:
                day_id = resource_day_id(participant.resource_id, local_date)
                days[day_id] = self.day(day_id)
        return days

    def release(self) -> None:
        self.app.day_locks.release(self.held)
        self.held = []


class DecisionLoop:
    def __init__(self, app: Bookings, max_attempts: int) -> None:
        self.app = app
        self.max_attempts = max_attempts

    def run(self, command: C, use_case: UseCase[C]) -> Outcome:
        app = self.app
        fingerprint = command.fingerprint()
        record_id = handled_request_id(command.organization_id, command.request_id)
        fresh, attempts = False, 0
        while attempts < self.max_attempts:
            if fresh or not app.guarded:
                app.reference.refresh()
            position = app.reference.position
            attempt = Attempt(app, fresh)
            try:
                # The happy path does not look the request id up (see step 4).
                try:
                    decision = use_case.decide(command, attempt)
                except BookingError:
                    if not fresh:
                        fresh = True  # the refusal may come from stale copies
                        continue
                    previous = self._previous(record_id, command, fingerprint)
                    if previous is not None:
                        return previous
                    raise
                record = HandledRequest(
                    organization_id=command.organization_id,
                    request_id=command.request_id,
                    fingerprint=fingerprint,
                    # Kept on the record for replays, as the answer's HTTP status class.
                    status=201 if command.creates else 200,
                    answer=decision.view,
                )
                try:
                    app.save_decision(
                        [*decision.changed, record], position, self._metadata(command, record_id)
                    )
                except IntegrityError:
                    previous = self._previous(record_id, command, fingerprint)
                    if previous is not None:
                        return previous
                    if fresh:
                        app.stats.conflicts += 1
                        attempts += 1
                        log.info("version conflict, deciding again", extra={"attempt": attempts})
                    fresh = True
                    continue
                app.remember(decision.changed)
                return Outcome(decision.view, command.creates)
            finally:
                attempt.release()
        app.stats.retries_exhausted += 1
        if use_case.exhausted is not None:
            app.reference.refresh()
            raise use_case.exhausted(command, Attempt(app, fresh=True))
        raise ConcurrencyExhaustedError(
            f"gave up after {self.max_attempts} concurrent changes; try again"
        )

    @staticmethod
    def _metadata(command: Command, record_id: UUID) -> dict[str, str]:
        """Who asked and which request: the request (its handled-request id) causes the
        events, and correlates them unless the caller named a correlation of its own."""
        metadata = command.context.metadata()
        metadata.setdefault("causation_id", str(record_id))
        metadata.setdefault("correlation_id", metadata["causation_id"])
        return metadata

    def _previous(self, record_id: UUID, command: Command, fingerprint: str) -> Outcome | None:
        try:
            previous = self.app.aggregates.get(record_id, fresh=True)
        except AggregateNotFoundError:
            return None
        if not isinstance(previous, HandledRequest):
            return None
        if previous.fingerprint != fingerprint:
            raise IdempotencyKeyReusedError(
                f"request id {command.request_id!r} was used for a different request",
                request_id=command.request_id,
            )
        self.app.stats.replays += 1
        return Outcome(previous.answer, previous.status == 201, replayed=True)
