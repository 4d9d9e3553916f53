"""A command on one appointment may name the version its client last read (HTTP ``If-Match``):
it is applied only while the appointment is still at that version, and otherwise refused
with ``version-mismatch`` (412), writing nothing. On the in-memory event store and on
PostgreSQL."""

import uuid
from typing import Any

import pytest
from scenario import MONDAY, PATIENT, Clinic, at

from clinic.booking.commands import (
    Arrive,
    CancelAppointment,
    CheckIn,
    Command,
    Complete,
    ConfirmAppointment,
    ConfirmAttendance,
    EnterInError,
    ExpireHold,
    MarkNoShow,
    Reschedule,
)
from clinic.booking.domain import errors

COMMANDS: list[tuple[type[Command], dict[str, Any]]] = [
    (ConfirmAppointment, {}),
    (Reschedule, {"start": at(MONDAY, 11), "preferred": {}}),
    (CancelAppointment, {"reason": "ill"}),
    (EnterInError, {"reason": "wrong patient"}),
    (CheckIn, {}),
    (Arrive, {}),
    (Complete, {}),
    (MarkNoShow, {}),
    (ConfirmAttendance, {}),
    (ExpireHold, {}),
]


def test_a_command_expecting_the_current_version_is_applied(clinic: Clinic) -> None:
    booked = clinic.book("named", at(MONDAY, 9))
    appointment = uuid.UUID(booked["id"])
    assert booked["version"] == 1

    moved = clinic.do(
        Reschedule, appointment_id=appointment, start=at(MONDAY, 10), expected_version=1
    ).body
    cancelled = clinic.do(
        CancelAppointment, appointment_id=appointment, reason="ill", expected_version=2
    ).body

    assert (moved["start"], moved["version"]) == ("2026-03-02T09:00:00Z", 2)
    assert (cancelled["status"], cancelled["version"]) == ("cancelled", 3)


@pytest.mark.parametrize(("command", "fields"), COMMANDS, ids=[c.name for c, _ in COMMANDS])
def test_a_command_expecting_an_older_version_is_refused_before_any_rule_and_writes_nothing(
    clinic: Clinic, command: type[Command], fields: dict[str, Any]
) -> None:
    # 1. A hold, moved once: a pending appointment at version 2 (most of these commands
    #    would be refused for its status anyway; the precondition is decided first).
    held = clinic.hold("named", at(MONDAY, 9))
    appointment = uuid.UUID(held["id"])
    moved = clinic.reschedule(held, at(MONDAY, 10))
    assert moved["version"] == 2
    history = clinic.app.queries.appointment_history(clinic.org, appointment)
    written = clinic.app.recorder.max_notification_id()

    # 2. A client that read version 1 asks.
    with pytest.raises(errors.VersionMismatchError) as refused:
        clinic.do(command, appointment_id=appointment, expected_version=1, **fields)

    # 3. Refused with the version there is now; nothing written.
    assert (refused.value.status, refused.value.slug) == (412, "version-mismatch")
    assert refused.value.extensions["current_version"] == 2
    assert clinic.app.recorder.max_notification_id() == written
    assert clinic.app.queries.appointment_history(clinic.org, appointment) == history


def test_a_repeated_request_gets_its_first_answer_though_its_expected_version_has_moved_on(
    clinic: Clinic,
) -> None:
    appointment = uuid.UUID(clinic.book("named", at(MONDAY, 9))["id"])
    asked: dict[str, Any] = {
        "appointment_id": appointment,
        "reason": "ill",
        "request_id": "fhir-put-1",
    }
    first = clinic.do(CancelAppointment, expected_version=1, **asked)
    written = clinic.app.recorder.max_notification_id()

    again = clinic.do(CancelAppointment, expected_version=1, **asked)
    # The precondition is no part of what was asked: without it, the same answer.
    unconditional = clinic.do(CancelAppointment, **asked)

    assert first.body["version"] == 2
    assert (again.body, again.replayed) == (first.body, True)
    assert (unconditional.body, unconditional.replayed) == (first.body, True)
    assert clinic.app.recorder.max_notification_id() == written
    with pytest.raises(errors.IdempotencyKeyReusedError):
        clinic.do(CancelAppointment, expected_version=1, **{**asked, "reason": "other"})


def test_a_stale_version_is_refused_even_where_the_command_would_change_nothing(
    clinic: Clinic,
) -> None:
    clinic.clock.now = at(MONDAY, 7)
    visit = uuid.UUID(clinic.book("consult", at(MONDAY, 9))["id"])
    confirmed = clinic.do(
        ConfirmAttendance, appointment_id=visit, context=PATIENT, expected_version=1
    ).body
    assert confirmed["version"] == 2

    with pytest.raises(errors.VersionMismatchError):
        clinic.do(ConfirmAttendance, appointment_id=visit, context=PATIENT, expected_version=1)
    again = clinic.do(ConfirmAttendance, appointment_id=visit, context=PATIENT, expected_version=2)

    assert again.body == confirmed
