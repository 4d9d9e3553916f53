"""Optimistic concurrency for one appointment, without I/O: the If-Match header read as the
version a client last saw, the appointment's guard on it, and the commands that carry it
(which still digest as before, so a request retried across the upgrade gets its first
answer)."""

import datetime as dt
import uuid
from typing import Any

import pytest
from scenario import FRONT_DESK

from clinic.booking.api.deps import InvalidIfMatchError, entity_tag, expected_version
from clinic.booking.commands import (
    CancelAppointment,
    CheckIn,
    Command,
    ConfirmAppointment,
    ConfirmAttendance,
    EnterInError,
    ExpireHold,
    Reschedule,
)
from clinic.booking.domain.appointment import Appointment
from clinic.booking.domain.errors import InvalidRequestError, VersionMismatchError
from clinic.booking.domain.values import Actor

ORG = uuid.UUID(int=1)
APPOINTMENT = uuid.UUID(int=2)
START = dt.datetime(2027, 1, 4, 9, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("header", "version"),
    [
        (None, None),
        ("*", None),
        ('"7"', 7),
        ('W/"7"', 7),
        ('"1"', 1),
        (' "12" ', 12),
        ('"9223372036854775807"', 9223372036854775807),
    ],
)
def test_if_match_names_a_version_or_any(header: str | None, version: int | None) -> None:
    assert expected_version(header) == version


@pytest.mark.parametrize(
    "header",
    [
        "",
        "7",
        '"0"',
        '"-1"',
        '"07"',
        '"7.0"',
        '"abc"',
        '""',
        'w/"7"',
        'W/ "7"',
        'W/"7',
        '"7", "8"',
        '*, "7"',
        '"12345678901234567890"',
    ],
)
def test_anything_but_one_entity_tag_holding_a_version_or_a_star_is_malformed(
    header: str,
) -> None:
    with pytest.raises(InvalidIfMatchError) as refused:
        expected_version(header)
    assert (refused.value.status, refused.value.slug) == (400, "invalid-if-match")


def test_a_version_is_sent_back_as_a_strong_entity_tag_that_if_match_reads() -> None:
    assert entity_tag(7) == '"7"'
    assert expected_version(entity_tag(7)) == 7


def appointment() -> Appointment:
    return Appointment.book(
        APPOINTMENT,
        organization_id=ORG,
        location_id=ORG,
        appointment_type_id=ORG,
        patient_id=ORG,
        start=START,
        end=START + dt.timedelta(minutes=20),
        participants=(),
        booked_by=Actor.CLINIC,
        note="",
    )


def test_an_appointment_accepts_its_own_version_or_none() -> None:
    booked = appointment()
    booked.check_version(None)
    booked.check_version(1)
    booked.cancel(Actor.CLINIC, "ill", START - dt.timedelta(days=1), dt.timedelta(0))
    booked.check_version(2)


def test_an_appointment_refuses_a_version_it_no_longer_has_and_names_its_own() -> None:
    booked = appointment()
    booked.cancel(Actor.CLINIC, "ill", START - dt.timedelta(days=1), dt.timedelta(0))
    for stale in (1, 3):
        with pytest.raises(VersionMismatchError) as refused:
            booked.check_version(stale)
        error = refused.value
        assert (error.status, error.slug) == (412, "version-mismatch")
        assert error.extensions["current_version"] == 2
        assert error.extensions["appointment_id"] == str(APPOINTMENT)


def commands_on_one_appointment(expected: int | None) -> list[Command]:
    common: dict[str, Any] = dict(
        organization_id=ORG, request_id="r", appointment_id=APPOINTMENT, context=FRONT_DESK
    )
    return [
        CancelAppointment(**common, reason="ill", expected_version=expected),
        Reschedule(**common, start=START, expected_version=expected),
        ConfirmAppointment(**common, expected_version=expected),
        CheckIn(**common, expected_version=expected),
        ConfirmAttendance(**common, expected_version=expected),
        EnterInError(**common, reason="dup", expected_version=expected),
    ]


def test_commands_on_an_appointment_digest_as_before_whatever_version_they_expect() -> None:
    # Computed by the release before commands carried an expected version.
    before = [
        "7872155b9c2556fe45dc38d76a94568652692a352fc1ed9c0e2da331f3ce1d45",
        "178e4b36dc6e5940c5521baf7b47ca951d82a67e748002ef699695736239e875",
        "a0a9a1ae69cd6049282d8b1f0c0e5f428d98bcc637e3059a54035269e60648a7",
        "814f8f0740c7f20200b5615c4bf32561254869e3cd79269abd0c6e2339455050",
        "31665a83fc78346037f1f2d09c18f19aae409d9f68beb3dbfb15af2711e4ae57",
        "a49b93cee5fb8c9fbbca76f94c4d07491f96e15195c65929d9f0eedd5939a55f",
    ]
    for expected in (None, 1, 7):
        assert [c.fingerprint() for c in commands_on_one_appointment(expected)] == before
    assert ExpireHold.of(ORG, APPOINTMENT).fingerprint() == (
        "e7dbca6167e930b25dcffeaf333418a743c09f008d56f3880c0f9704008624ae"
    )


@pytest.mark.parametrize("expected", [0, -3])
def test_a_command_cannot_expect_a_version_an_appointment_never_has(expected: int) -> None:
    with pytest.raises(InvalidRequestError):
        commands_on_one_appointment(expected)
