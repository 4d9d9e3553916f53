"""``Appointment``: one visit's lifecycle. Statuses map one-to-one to FHIR Appointment.status."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import event

from clinic.booking.domain.acting import BookingAggregate
from clinic.booking.domain.errors import (
    BookingError,
    HoldExpiredError,
    InvalidTransitionError,
    TooLateToCancelError,
    TooLateToRescheduleError,
    VersionMismatchError,
)
from clinic.booking.domain.values import Actor, Participant, Status

# Which statuses each command may start from.
TRANSITIONS: dict[str, frozenset[Status]] = {
    "confirm": frozenset({Status.PENDING}),
    "reschedule": frozenset({Status.PENDING, Status.BOOKED}),
    "cancel": frozenset({Status.PENDING, Status.BOOKED}),
    "check_in": frozenset({Status.BOOKED}),
    "arrive": frozenset({Status.BOOKED, Status.CHECKED_IN}),
    "complete": frozenset({Status.CHECKED_IN, Status.ARRIVED}),
    "no_show": frozenset({Status.BOOKED}),
    "enter_in_error": frozenset({Status.PENDING, Status.BOOKED, Status.CHECKED_IN, Status.ARRIVED}),
}

CHECK_IN_OPENS = dt.timedelta(hours=4)


class Appointment(BookingAggregate):
    # When and by which side the patient confirmed they will come (FHIR: the patient
    # participant ``accepted``). Class-level defaults, not annotated (eventsourcing would
    # take an annotation for a creation argument): appointments recorded before attendance
    # could be confirmed read None.
    attendance_confirmed_at = cast("dt.datetime | None", None)
    attendance_confirmed_by = cast("Actor | None", None)

    class Held(BookingAggregate.Created):
        """Time held for a patient until ``hold_expires_at`` (FHIR ``pending``)."""

        organization_id: UUID
        location_id: UUID
        appointment_type_id: UUID
        patient_id: UUID
        start: dt.datetime
        end: dt.datetime
        participants: tuple[Participant, ...]
        booked_by: Actor
        status: Status
        hold_expires_at: dt.datetime | None
        note: str

    class Booked(Held):
        """Booked directly (FHIR ``booked``)."""

    def __init__(
        self,
        organization_id: UUID,
        location_id: UUID,
        appointment_type_id: UUID,
        patient_id: UUID,
        start: dt.datetime,
        end: dt.datetime,
        participants: tuple[Participant, ...],
        booked_by: Actor,
        status: Status,
        hold_expires_at: dt.datetime | None,
        note: str,
    ) -> None:
        self.organization_id = organization_id
        self.location_id = location_id
        self.appointment_type_id = appointment_type_id
        self.patient_id = patient_id
        self.start = start
        self.end = end
        self.participants = tuple(participants)
        self.booked_by = Actor(booked_by)
        self.status = Status(status)
        self.hold_expires_at = hold_expires_at
        self.note = note
        self.cancellation: dict[str, Any] | None = None
        self.history: list[tuple[Status, dt.datetime]] = []

    @classmethod
    def hold(cls, appointment_id: UUID, expires_at: dt.datetime, **details: Any) -> Appointment:
        return cls._create(
            cls.Held,
            id=appointment_id,
            status=Status.PENDING,
            hold_expires_at=expires_at,
            **details,
        )

    @classmethod
    def book(cls, appointment_id: UUID, **details: Any) -> Appointment:
        return cls._create(
            cls.Booked, id=appointment_id, status=Status.BOOKED, hold_expires_at=None, **details
        )

    # ---------------------------------------------------------------- guards

    def check_version(self, expected: int | None) -> None:
        """A command that names the version its client last read (HTTP ``If-Match``) is
        decided only on that version: any change since, by anyone, refuses it."""
        if expected is not None and expected != self.version:
            raise VersionMismatchError(
                f"the appointment is at version {self.version}, not {expected}: read it "
                "again and decide on what it is now",
                current_version=self.version,
                appointment_id=str(self.id),
            )

    def current_status(self, now: dt.datetime) -> Status:
        """A hold past its expiry counts as cancelled, without any timer having run."""
        if self.status == Status.PENDING and self.hold_expired(now):
            return Status.CANCELLED
        return self.status

    def hold_expired(self, now: dt.datetime) -> bool:
        return self.hold_expires_at is not None and self.hold_expires_at <= now

    def check_transition(self, command: str, now: dt.datetime) -> None:
        if self.status == Status.PENDING and self.hold_expired(now) and command != "enter_in_error":
            raise HoldExpiredError(
                f"the hold expired at {self.hold_expires_at}",
                appointment_id=str(self.id),
            )
        if self.status not in TRANSITIONS[command]:
            raise InvalidTransitionError(
                f"cannot {command.replace('_', ' ')} an appointment that is {self.status}",
                appointment_status=str(self.status),
                appointment_id=str(self.id),
            )

    def check_cancellation(self, by: Actor, now: dt.datetime, cutoff: dt.timedelta) -> None:
        self.check_transition("cancel", now)
        self._check_patient_cutoff(by, now, cutoff, TooLateToCancelError, "cancel")

    def check_reschedule(self, by: Actor, now: dt.datetime, cutoff: dt.timedelta) -> None:
        """Patients move a booked appointment only before the cut-off (moving it frees its
        time as a cancellation does); staff at any time."""
        self.check_transition("reschedule", now)
        self._check_patient_cutoff(by, now, cutoff, TooLateToRescheduleError, "move")

    def _check_patient_cutoff(
        self,
        by: Actor,
        now: dt.datetime,
        cutoff: dt.timedelta,
        refusal: type[BookingError],
        verb: str,
    ) -> None:
        if by == Actor.PATIENT and self.status == Status.BOOKED and now > self.start - cutoff:
            minutes = int(cutoff.total_seconds() // 60)
            raise refusal(
                f"patients may {verb} an appointment up to {minutes} minutes before the "
                "start; please call the clinic",
                cutoff_minutes=minutes,
            )

    def check_attendance_confirmation(self, now: dt.datetime) -> None:
        """Attendance is confirmed for a booked appointment that has not started yet."""
        status = self.current_status(now)
        if status != Status.BOOKED:
            raise InvalidTransitionError(
                f"attendance can be confirmed only for a booked appointment; this one is {status}",
                appointment_status=str(status),
                appointment_id=str(self.id),
            )
        if now >= self.start:
            raise InvalidTransitionError(
                "attendance can be confirmed only before the appointment starts",
                start=self.start.isoformat(),
                appointment_id=str(self.id),
            )

    # ---------------------------------------------------------------- commands

    def confirm(self, now: dt.datetime) -> None:
        self.check_transition("confirm", now)
        self._hold_confirmed(confirmed_at=now)

    @event("HoldConfirmed")
    def _hold_confirmed(self, confirmed_at: dt.datetime) -> None:
        self._move_to(Status.BOOKED, confirmed_at)
        self.hold_expires_at = None

    def reschedule(
        self,
        start: dt.datetime,
        end: dt.datetime,
        participants: tuple[Participant, ...],
        now: dt.datetime,
    ) -> None:
        self.check_transition("reschedule", now)
        self._rescheduled(
            start=start,
            end=end,
            participants=tuple(participants),
            previous_start=self.start,
            previous_end=self.end,
            rescheduled_at=now,
        )

    @event("Rescheduled")
    def _rescheduled(
        self,
        start: dt.datetime,
        end: dt.datetime,
        participants: tuple[Participant, ...],
        previous_start: dt.datetime,
        previous_end: dt.datetime,
        rescheduled_at: dt.datetime,
    ) -> None:
        self.start, self.end, self.participants = start, end, tuple(participants)

    def cancel(self, by: Actor, reason: str, now: dt.datetime, cutoff: dt.timedelta) -> None:
        self.check_cancellation(by, now, cutoff)
        self._cancelled(cancelled_by=by, reason=reason, cancelled_at=now)

    @event("Cancelled")
    def _cancelled(self, cancelled_by: Actor, reason: str, cancelled_at: dt.datetime) -> None:
        self._move_to(Status.CANCELLED, cancelled_at)
        self.cancellation = {"by": str(cancelled_by), "reason": reason, "at": cancelled_at}

    def expire_hold(self, now: dt.datetime) -> bool:
        """Record that the hold ran out (a fact of its own, so that waitlists, EMRs and
        calendars hear of it). Its time was already free to the next command from the
        expiry on. False when there is nothing to record: the hold was confirmed, cancelled,
        or already recorded as expired. Refused before the expiry."""
        if self.status != Status.PENDING or self.hold_expires_at is None:
            return False
        if not self.hold_expired(now):
            raise InvalidTransitionError(
                f"the hold expires at {self.hold_expires_at}, not before",
                appointment_id=str(self.id),
            )
        self._hold_expired(expired_at=self.hold_expires_at, recorded_at=now)
        return True

    @event("HoldExpired")
    def _hold_expired(self, expired_at: dt.datetime, recorded_at: dt.datetime) -> None:
        self._move_to(Status.CANCELLED, expired_at)
        self.cancellation = {"by": "system", "reason": "hold expired", "at": expired_at}

    def confirm_attendance(self, by: Actor, now: dt.datetime) -> bool:
        """The patient said they will come (FHIR: the patient participant ``accepted``; the
        status stays ``booked``). False when there is nothing to record: it was confirmed
        already and the appointment is still booked. Refused once it is no longer booked
        or has started."""
        if self.attendance_confirmed_at is not None and self.current_status(now) == Status.BOOKED:
            return False
        self.check_attendance_confirmation(now)
        self._attendance_confirmed(confirmed_by=by, confirmed_at=now)
        return True

    @event("AttendanceConfirmed")
    def _attendance_confirmed(self, confirmed_by: Actor, confirmed_at: dt.datetime) -> None:
        self.attendance_confirmed_at = confirmed_at
        self.attendance_confirmed_by = Actor(confirmed_by)

    def check_in(self, now: dt.datetime) -> None:
        self.check_transition("check_in", now)
        if now < self.start - CHECK_IN_OPENS or now > self.end:
            raise InvalidTransitionError(
                "check-in opens 4 hours before the start and closes at the end",
                start=self.start.isoformat(),
            )
        self._checked_in(checked_in_at=now)

    @event("CheckedIn")
    def _checked_in(self, checked_in_at: dt.datetime) -> None:
        self._move_to(Status.CHECKED_IN, checked_in_at)

    def arrive(self, now: dt.datetime) -> None:
        """The patient is here: straight from booked only in check-in's window (an
        appointment months ahead cannot be marked arrived, and then fulfilled)."""
        self.check_transition("arrive", now)
        if self.status == Status.BOOKED and (now < self.start - CHECK_IN_OPENS or now > self.end):
            raise InvalidTransitionError(
                "a patient arrives from 4 hours before the start to the end",
                start=self.start.isoformat(),
            )
        self._arrived(arrived_at=now)

    @event("Arrived")
    def _arrived(self, arrived_at: dt.datetime) -> None:
        self._move_to(Status.ARRIVED, arrived_at)

    def complete(self, now: dt.datetime) -> None:
        self.check_transition("complete", now)
        self._fulfilled(fulfilled_at=now)

    @event("Fulfilled")
    def _fulfilled(self, fulfilled_at: dt.datetime) -> None:
        self._move_to(Status.FULFILLED, fulfilled_at)

    def mark_no_show(self, now: dt.datetime) -> None:
        self.check_transition("no_show", now)
        if now < self.start:
            raise InvalidTransitionError(
                "a patient can only be marked as a no-show once the appointment has started",
                start=self.start.isoformat(),
            )
        self._marked_no_show(marked_at=now)

    @event("MarkedNoShow")
    def _marked_no_show(self, marked_at: dt.datetime) -> None:
        self._move_to(Status.NOSHOW, marked_at)

    def enter_in_error(self, reason: str, now: dt.datetime) -> None:
        """The appointment was recorded by mistake (a wrong patient, a duplicate): it never
        happened and holds no time any more (FHIR ``entered-in-error``)."""
        self.check_transition("enter_in_error", now)
        self._entered_in_error(reason=reason, entered_at=now)

    @event("EnteredInError")
    def _entered_in_error(self, reason: str, entered_at: dt.datetime) -> None:
        self._move_to(Status.ENTERED_IN_ERROR, entered_at)
        self.cancellation = {"by": "clinic", "reason": reason, "at": entered_at}

    def _move_to(self, status: Status, at: dt.datetime) -> None:
        self.history.append((self.status, at))
        self.status = status
