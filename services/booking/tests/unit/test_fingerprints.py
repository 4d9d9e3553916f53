"""A request retried across an upgrade still gets its first answer: commands and value
objects that gained fields digest as they did before, while the new fields hold their
defaults. The digests below were computed by the release before those fields existed."""

import datetime as dt
import uuid

from scenario import FRONT_DESK

from clinic.booking.commands import (
    BookAppointment,
    DefineAppointmentType,
    JoinWaitlist,
    RegisterPatient,
)
from clinic.booking.domain.values import Category, Contact, Requirement, Step

ORG = uuid.UUID(int=1)


def test_a_patient_registered_before_patients_grew_digests_as_it_did() -> None:
    command = RegisterPatient(
        organization_id=ORG,
        request_id="r",
        given_name="Ada",
        family_name="L",
        birth_date=dt.date(1990, 1, 2),
        contacts=(Contact("email", "a@example.org"),),
        preferred_channel="sms",
        language="de",
    )
    assert command.fingerprint() == (
        "6f09ef35a49d347e069ea1d62080ba99d454f068dc88b31053f81f2a216dd98b"
    )
    with_use = RegisterPatient(
        **{**command.__dict__, "contacts": (Contact("email", "a@example.org", "home"),)}
    )
    assert with_use.fingerprint() != command.fingerprint()


def test_a_type_defined_before_types_grew_digests_as_it_did() -> None:
    physician = Requirement("physician", Category.PROVIDER)
    command = DefineAppointmentType(
        organization_id=ORG,
        request_id="r",
        type_name="T",
        steps=(Step("s", 0, 20, (physician,)),),
        cancellation_cutoff_minutes=60,
    )
    assert command.fingerprint() == (
        "b6a413a1e2cff0d544e322680877d777c2a6b168a958068492ddc3d94ac0d9fd"
    )


def test_a_booking_by_staff_digests_as_one_that_said_it_was_the_clinics() -> None:
    command = BookAppointment(
        organization_id=ORG,
        request_id="r",
        appointment_type_id=ORG,
        location_id=ORG,
        patient_id=ORG,
        start=dt.datetime(2027, 1, 4, 9, tzinfo=dt.UTC),
        appointment_id=ORG,
        context=FRONT_DESK,
    )
    assert command.fingerprint() == (
        "1e3b9be761febed44260e69de4e53512f2a7faac073e8dde2e391c52bfeedee5"
    )


def test_a_waitlist_entry_joined_before_priorities_and_weekdays_digests_as_it_did() -> None:
    command = JoinWaitlist(
        organization_id=ORG,
        request_id="r",
        patient_id=uuid.UUID(int=2),
        appointment_type_id=uuid.UUID(int=3),
        location_ids=(uuid.UUID(int=4),),
        earliest=dt.date(2027, 1, 4),
        latest=dt.date(2027, 1, 29),
        times_of_day=("morning",),
        note="n",
    )
    before = "7ae0e713fba139fb7ea74cf897062fcb6874c24ac076c18c39a1398770b4af18"
    assert command.fingerprint() == before
    at_defaults = JoinWaitlist(**{**command.__dict__, "priority": 5, "weekdays": ()})
    assert at_defaults.fingerprint() == before
    ranked = JoinWaitlist(**{**command.__dict__, "priority": 2})
    on_mondays = JoinWaitlist(**{**command.__dict__, "weekdays": (1,)})
    assert len({before, ranked.fingerprint(), on_mondays.fingerprint()}) == 3
    # The same days in another order ask for the same thing.
    assert (
        JoinWaitlist(**{**command.__dict__, "weekdays": (5, 1)}).fingerprint()
        == JoinWaitlist(**{**command.__dict__, "weekdays": (1, 5)}).fingerprint()
    )
