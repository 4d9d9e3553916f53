"""Appointments: hold or book time, confirm a hold, reschedule, cancel, the patient's
confirmation that they will come, and the steps of the visit (check-in, arrival,
completion, no-show)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from clinic.booking import views
from clinic.booking.commands import (
    AppointmentCommand,
    BookAppointment,
    CancelAppointment,
    ChangeStatus,
    ConfirmAppointment,
    ConfirmAttendance,
    EnterInError,
    ExpireHold,
    Reschedule,
)
from clinic.booking.decision import Attempt, Decision, UseCase
from clinic.booking.domain.acting import Acting
from clinic.booking.domain.appointment import Appointment
from clinic.booking.domain.errors import (
    BookingError,
    ConcurrencyExhaustedError,
    NotPatientBookableError,
    StaffOnlyError,
    TimeUnavailableError,
)
from clinic.booking.domain.planning import check_policy
from clinic.booking.domain.reference import AppointmentType, Patient
from clinic.booking.domain.values import Actor
from clinic.booking.use_cases import planning
from clinic.events.free_start import FreeStart


def check_overbooking(allow_overbooking: bool, acting: Acting) -> None:
    """Only the clinic overbooks (its staff, or staff working in the EMR), and only when it
    says so explicitly."""
    if allow_overbooking and acting.kind != Actor.CLINIC:
        raise StaffOnlyError(f"only clinic staff may overbook (the request acts as {acting.role})")


def reserve(command: BookAppointment, attempt: Attempt) -> Decision:
    """Hold or book: plan the visit on every resource it needs, all or nothing."""
    now = attempt.now
    org = command.organization_id
    ctx = planning.context(attempt, org, command.appointment_type_id, command.location_id)
    ctx.kind.check_active()
    ctx.location.check_active()
    attempt.reference.get(Patient, command.patient_id, org, "patient").check_active()
    acting = command.context.acting
    if acting.is_patient and not ctx.kind.patient_bookable:
        raise NotPatientBookableError(f"{ctx.kind.name} is booked by the clinic")
    check_overbooking(command.allow_overbooking, acting)
    check_policy(ctx.kind, command.start, now)
    minutes = command.hold_minutes or attempt.app.hold_minutes
    expires = now + dt.timedelta(minutes=minutes) if command.holds else None
    days: planning.Days = {}
    try:
        chosen = planning.plan(
            attempt,
            ctx,
            command.appointment_id,
            command.start,
            command.preferred,
            days,
            expires,
            command.allow_overbooking,
        )
    except TimeUnavailableError as error:
        if attempt.fresh:
            error.extensions["alternatives"] = _alternatives(attempt, ctx, command)
        raise
    details: dict[str, Any] = dict(
        organization_id=org,
        location_id=command.location_id,
        appointment_type_id=command.appointment_type_id,
        patient_id=command.patient_id,
        start=chosen.start,
        end=chosen.end,
        participants=chosen.participants,
        booked_by=command.booked_by,
        note=command.note,
    )
    if expires is not None:
        appointment = Appointment.hold(command.appointment_id, expires_at=expires, **details)
    else:
        appointment = Appointment.book(command.appointment_id, **details)
    touched = planning.apply_plan(attempt, chosen, org, days, command.allow_overbooking)
    attempt.app.stats.count("held" if command.holds else "booked")
    return Decision([appointment, *touched], views.appointment(appointment, now))


def _alternatives(
    attempt: Attempt, ctx: planning.Context, command: BookAppointment
) -> list[FreeStart]:
    return planning.alternatives(
        attempt, ctx, command.start, command.preferred, attempt.app.alternatives_wanted
    )


def reserve_exhausted(command: BookAppointment, attempt: Attempt) -> BookingError:
    ctx = planning.context(
        attempt, command.organization_id, command.appointment_type_id, command.location_id
    )
    return ConcurrencyExhaustedError(
        "the time kept changing under concurrent bookings",
        alternatives=_alternatives(attempt, ctx, command),
    )


def confirm(command: ConfirmAppointment, attempt: Attempt) -> Decision:
    """Turn a hold into a booking."""
    appointment = _appointment(command, attempt)
    appointment.confirm(attempt.now)
    days = [d for d in attempt.days_of(appointment).values() if d is not None]
    for day in days:
        day.confirm(appointment.id)
    attempt.app.stats.count("confirmed")
    return Decision([appointment, *days], views.appointment(appointment, attempt.now))


def reschedule(command: Reschedule, attempt: Attempt) -> Decision:
    """Move every claim of the appointment at once, or nothing."""
    now = attempt.now
    org = command.organization_id
    appointment = _appointment(command, attempt)
    ctx = planning.context(attempt, org, appointment.appointment_type_id, appointment.location_id)
    appointment.check_reschedule(command.actor, now, ctx.kind.reschedule_cutoff)
    check_overbooking(command.allow_overbooking, command.context.acting)
    check_policy(ctx.kind, command.start, now)
    days = attempt.days_of(appointment)
    try:
        chosen = planning.plan(
            attempt,
            ctx,
            appointment.id,
            command.start,
            command.preferred,
            days,
            appointment.hold_expires_at,
            command.allow_overbooking,
        )
    except TimeUnavailableError as error:
        if attempt.fresh:
            error.extensions["alternatives"] = planning.alternatives(
                attempt,
                ctx,
                command.start,
                command.preferred,
                attempt.app.alternatives_wanted,
                ignoring=appointment.id,
            )
        raise
    old = [d for d in days.values() if d is not None]
    for day in old:
        day.release(appointment.id, "rescheduled")
    touched = planning.apply_plan(attempt, chosen, org, days, command.allow_overbooking)
    appointment.reschedule(chosen.start, chosen.end, chosen.participants, now)
    unique = {d.id: d for d in [*old, *touched]}
    attempt.app.stats.count("rescheduled")
    return Decision([appointment, *unique.values()], views.appointment(appointment, now))


def cancel(command: CancelAppointment, attempt: Attempt) -> Decision:
    """Cancel by the patient (subject to the type's cut-off) or by the clinic."""
    org = command.organization_id
    appointment = _appointment(command, attempt)
    kind = attempt.reference.get(
        AppointmentType, appointment.appointment_type_id, org, "appointment type"
    )
    appointment.cancel(command.by, command.reason, attempt.now, kind.cancellation_cutoff)
    days = [d for d in attempt.days_of(appointment).values() if d is not None]
    for day in days:
        day.release(appointment.id, f"cancelled by {command.by}")
    attempt.app.stats.count("cancelled")
    return Decision([appointment, *days], views.appointment(appointment, attempt.now))


def enter_in_error(command: EnterInError, attempt: Attempt) -> Decision:
    """Strike out an appointment recorded by mistake and give its time back (the clinic's
    correction: never a patient's)."""
    command.context.acting.check_not_patient("strike out an appointment")
    appointment = _appointment(command, attempt)
    appointment.enter_in_error(command.reason, attempt.now)
    days = [d for d in attempt.days_of(appointment).values() if d is not None]
    for day in days:
        day.release(appointment.id, "entered in error")
    attempt.app.stats.count("entered_in_error")
    return Decision([appointment, *days], views.appointment(appointment, attempt.now))


def expire_hold(command: ExpireHold, attempt: Attempt) -> Decision:
    """The hold ran out: record it on the appointment, and take its claims off the days
    where a later booking has not already taken the time. Nothing to record (confirmed,
    cancelled, recorded already) is an answer too: the appointment as it is."""
    appointment = _appointment(command, attempt)
    if not appointment.expire_hold(attempt.now):
        return Decision([], views.appointment(appointment, attempt.now))
    days = [d for d in attempt.days_of(appointment).values() if d is not None]
    for day in days:
        day.lapse(appointment.id, attempt.now)
    attempt.app.stats.count("hold_expired")
    return Decision([appointment, *days], views.appointment(appointment, attempt.now))


def confirm_attendance(command: ConfirmAttendance, attempt: Attempt) -> Decision:
    """The patient confirmed they will come (patients may, and the clinic): recorded on the
    appointment, its time untouched. A confirmation already recorded is an answer too: the
    appointment as it is."""
    appointment = _appointment(command, attempt)
    if not appointment.confirm_attendance(command.by, attempt.now):
        return Decision([], views.appointment(appointment, attempt.now))
    attempt.app.stats.count("attendance_confirmed")
    return Decision([appointment], views.appointment(appointment, attempt.now))


def change_status(command: ChangeStatus, attempt: Attempt) -> Decision:
    """Check-in, arrival, completion, no-show: the appointment's method of that name."""
    if not command.patients_may:
        command.context.acting.check_not_patient(command.name.replace("_", " "))
    appointment = _appointment(command, attempt)
    getattr(appointment, command.name)(attempt.now)
    attempt.app.stats.count(command.name)
    return Decision([appointment], views.appointment(appointment, attempt.now))


def _appointment(command: AppointmentCommand, attempt: Attempt) -> Appointment:
    """The appointment the command acts on, refused if it is no longer at the version the
    command expects: after who may ask and whether it exists, before every rule about its
    state and time (a client that saw another version gets that answer, whatever those
    rules would say now, as HTTP evaluates a precondition just before the action).

    Why this is safe under concurrency: the check reads the appointment as this attempt
    loaded it, and every decision that changes the appointment saves its event at the
    version after that one, in the same transaction as the rest of the decision; a change
    recorded in between (by any replica) makes the save fail, and the loop decides again on
    a fresh read, where the check refuses. With an expected version the appointment is read
    fresh even on a first attempt, so that an answer that writes nothing to it (a repeated
    attendance confirmation) is also decided on its stored version, never on a cached copy."""
    appointment = attempt.load(
        Appointment,
        command.appointment_id,
        command.organization_id,
        "appointment",
        fresh=command.expected_version is not None,
    )
    appointment.check_version(command.expected_version)
    return appointment


RESERVE = UseCase(reserve, reserve_exhausted)
CONFIRM = UseCase(confirm)
RESCHEDULE = UseCase(reschedule)
CANCEL = UseCase(cancel)
CONFIRM_ATTENDANCE = UseCase(confirm_attendance)
CHANGE_STATUS = UseCase(change_status)
ENTER_IN_ERROR = UseCase(enter_in_error)
EXPIRE_HOLD = UseCase(expire_hold)
