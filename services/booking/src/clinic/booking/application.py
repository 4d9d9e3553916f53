"""``Bookings``: the booking application, composed of its parts.

- ``commands``: what can be asked, as data;
- ``use_cases``: how each command is decided, by subject;
- ``decision``: the loop that decides a command on current data, saves what it changed with
  its answer in one transaction, retries on a concurrent change and replays a repeated
  request;
- ``queries`` and ``views``: what is read back.

This class holds what they share (the event store, the aggregate and reference caches, the
day locks, the clock, the counters) and routes each command to its use case:
``bookings.handle(BookAppointment(...))``. Aggregates never leave the service.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import JSONTranscoder

from clinic.booking import commands
from clinic.booking.aggregate_cache import AggregateCache, KeyedLocks
from clinic.booking.commands import Command
from clinic.booking.decision import DecisionLoop, Outcome, UseCase
from clinic.booking.domain.acting import stamp
from clinic.booking.domain.resource_day import ResourceDay
from clinic.booking.event_store import BookingRecorder
from clinic.booking.queries import Queries
from clinic.booking.reference_cache import ReferenceCache, guarded_topics
from clinic.booking.transcodings import register_transcodings
from clinic.booking.use_cases import appointments, patients, reference_data, waitlist

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


USE_CASES: dict[type[Command], UseCase[Any]] = {
    commands.RegisterOrganization: reference_data.REGISTER_ORGANIZATION,
    commands.RegisterLocation: reference_data.REGISTER_LOCATION,
    commands.RegisterResource: reference_data.REGISTER_RESOURCE,
    commands.SetOverbookingAllowance: reference_data.SET_OVERBOOKING_ALLOWANCE,
    commands.DefineAppointmentType: reference_data.DEFINE_APPOINTMENT_TYPE,
    commands.RegisterPatient: patients.REGISTER_PATIENT,
    commands.UpdatePatientDetails: patients.UPDATE_PATIENT_DETAILS,
    commands.SetPatientPreferences: patients.SET_PATIENT_PREFERENCES,
    commands.RecordPatientIdentifier: patients.RECORD_PATIENT_IDENTIFIER,
    commands.MergePatients: patients.MERGE_PATIENTS,
    commands.SetWeeklyHours: reference_data.SET_WEEKLY_HOURS,
    commands.AddScheduleException: reference_data.ADD_SCHEDULE_EXCEPTION,
    commands.RemoveScheduleException: reference_data.REMOVE_SCHEDULE_EXCEPTION,
    commands.UpdateLocation: reference_data.UPDATE_LOCATION,
    commands.UpdateResource: reference_data.UPDATE_RESOURCE,
    commands.UpdateAppointmentType: reference_data.UPDATE_APPOINTMENT_TYPE,
    commands.RetireLocation: reference_data.RETIRE,
    commands.RetireResource: reference_data.RETIRE,
    commands.RetireAppointmentType: reference_data.RETIRE,
    commands.BookAppointment: appointments.RESERVE,
    commands.HoldAppointment: appointments.RESERVE,
    commands.ConfirmAppointment: appointments.CONFIRM,
    commands.Reschedule: appointments.RESCHEDULE,
    commands.CancelAppointment: appointments.CANCEL,
    commands.ConfirmAttendance: appointments.CONFIRM_ATTENDANCE,
    commands.CheckIn: appointments.CHANGE_STATUS,
    commands.Arrive: appointments.CHANGE_STATUS,
    commands.Complete: appointments.CHANGE_STATUS,
    commands.MarkNoShow: appointments.CHANGE_STATUS,
    commands.EnterInError: appointments.ENTER_IN_ERROR,
    commands.ExpireHold: appointments.EXPIRE_HOLD,
    commands.JoinWaitlist: waitlist.JOIN_WAITLIST,
    commands.LeaveWaitlist: waitlist.LEAVE_WAITLIST,
}


@dataclass
class CommandStats:
    """Counters the API exposes as metrics (recorded at the application boundary)."""

    conflicts: int = 0
    retries_exhausted: int = 0
    replays: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> None:
        with self.lock:
            self.decisions[name] = self.decisions.get(name, 0) + 1


class Bookings(Application[UUID]):
    """The booking application. ``name`` fixes the event table (``bookings_events``)."""

    name = "Bookings"
    # Commands read aggregates through ``self.aggregates`` (copy-on-write, optimistic or
    # fresh) and reference data through ``self.reference``; the repository itself keeps no
    # cache.
    cache_size: ClassVar[int] = 20000

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock = utc_now,
        max_attempts: int = 5,
        hold_minutes: float = 10,
        alternatives: int = 3,
    ) -> None:
        super().__init__(env)
        self.clock = clock
        self.hold_minutes = hold_minutes
        self.alternatives_wanted = alternatives
        self.stats = CommandStats()
        self.reference = ReferenceCache(self)
        self.aggregates = AggregateCache(self, self.cache_size)
        self.day_locks = KeyedLocks()
        # Where the event store can guard reference data, commands skip refreshing it.
        self.guarded = isinstance(self.recorder, BookingRecorder)
        if isinstance(self.recorder, BookingRecorder):
            self.recorder.guard(guarded_topics())
        self.decisions = DecisionLoop(self, max_attempts)
        self.queries = Queries(self)

    def handle(self, command: Command) -> Outcome:
        """Decide ``command`` and save what it changed, exactly once per request id."""
        return self.decisions.run(command, USE_CASES[type(command)])

    def save_decision(
        self, aggregates: list[Aggregate], decided_at: int, metadata: dict[str, str]
    ) -> None:
        """Record the aggregates' pending events in one transaction (what ``Application.save``
        does, without its general-purpose checks), each stamped with who asked and which
        request. ``decided_at``: the reference data position the decision read, which a
        guarding event store checks."""
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        stamp(events, metadata)
        self.events.put(events, decided_at=decided_at if self.guarded else None)

    def remember(self, aggregates: Iterable[Aggregate]) -> None:
        """Keep what the next decisions read: resource days, and aggregates loaded again (a
        new appointment is cached only when a later command loads it; most never come back
        soon, and caching each one would only churn memory)."""
        for aggregate in aggregates:
            if isinstance(aggregate, ResourceDay) or aggregate.version > 1:
                self.aggregates.remember(aggregate)

    def close(self) -> None:
        if isinstance(self.recorder, BookingRecorder):
            self.recorder.close_writer()
        super().close()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_transcodings(transcoder)
