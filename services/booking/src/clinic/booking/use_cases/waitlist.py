"""The waitlist: patients waiting for earlier time."""

from __future__ import annotations

from clinic.booking import views
from clinic.booking.commands import JoinWaitlist, LeaveWaitlist
from clinic.booking.decision import Attempt, Decision, UseCase
from clinic.booking.domain.reference import AppointmentType, Location, Patient, Resource
from clinic.booking.domain.waitlist import DEFAULT_PRIORITY, WaitlistEntry


def join_waitlist(command: JoinWaitlist, attempt: Attempt) -> Decision:
    if command.priority != DEFAULT_PRIORITY:
        command.context.acting.check_not_patient("rank their own waitlist entry")
    org = command.organization_id
    attempt.load(Patient, command.patient_id, org, "patient").check_active()
    attempt.load(AppointmentType, command.appointment_type_id, org, "appointment type")
    for location_id in command.location_ids:
        attempt.load(Location, location_id, org, "location")
    if command.provider_id is not None:
        attempt.load(Resource, command.provider_id, org, "resource")
    entry = WaitlistEntry(
        organization_id=org,
        patient_id=command.patient_id,
        appointment_type_id=command.appointment_type_id,
        location_ids=tuple(command.location_ids),
        earliest=command.earliest,
        latest=command.latest,
        times_of_day=tuple(command.times_of_day),
        provider_id=command.provider_id,
        note=command.note,
        joined_at=attempt.now,
        priority=command.priority,
        weekdays=command.weekdays,
    )
    return Decision([entry], views.waitlist_entry(entry))


def leave_waitlist(command: LeaveWaitlist, attempt: Attempt) -> Decision:
    entry = attempt.load(WaitlistEntry, command.entry_id, command.organization_id, "waitlist entry")
    entry.leave(command.reason, attempt.now)
    return Decision([entry], views.waitlist_entry(entry))


JOIN_WAITLIST = UseCase(join_waitlist)
LEAVE_WAITLIST = UseCase(leave_waitlist)
