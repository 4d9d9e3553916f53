"""Reference data that changes: locations, resources and appointment types are updated and
retired; a resource rotates between locations by weekday, with effective dates; types carry
their reminder plan, texts per language and cut-offs. Run in memory and on PostgreSQL."""

import datetime as dt
import uuid

import pytest
from scenario import BERLIN, MONDAY, PATIENT, Clinic, at

from clinic.booking.commands import (
    DefineAppointmentType,
    RegisterLocation,
    RegisterResource,
    Reschedule,
    RetireAppointmentType,
    RetireLocation,
    RetireResource,
    SetWeeklyHours,
    UpdateAppointmentType,
    UpdateLocation,
    UpdateResource,
)
from clinic.booking.domain import errors
from clinic.booking.domain.values import (
    Category,
    PatientText,
    Reminder,
    Requirement,
    Step,
    WeeklyHours,
)

TUESDAY = MONDAY + dt.timedelta(days=1)


def hours(location: uuid.UUID, weekday: int, **dates: dt.date) -> WeeklyHours:
    return WeeklyHours(location, weekday, dt.time(8), dt.time(17), **dates)


def test_a_location_is_renamed_but_keeps_its_time_zone_and_a_retired_one_takes_no_bookings(
    clinic: Clinic,
) -> None:
    renamed = clinic.do(
        UpdateLocation, location_id=clinic.location, location_name="Mitte Campus"
    ).body
    assert (renamed["name"], renamed["time_zone"], renamed["address"]) == (
        "Mitte Campus",
        BERLIN,
        {"city": "Berlin"},
    )
    booked = clinic.book("consult", at(MONDAY, 9))
    with pytest.raises(errors.StaffOnlyError):
        clinic.do(RetireLocation, target_id=clinic.location, context=PATIENT)
    retired = clinic.do(RetireLocation, target_id=clinic.location, reason="moved").body
    assert retired["retired"] is True
    with pytest.raises(errors.RetiredError):
        clinic.book("consult", at(MONDAY, 11))
    with pytest.raises(errors.RetiredError):
        clinic.do(UpdateLocation, location_id=clinic.location, location_name="Again")
    with pytest.raises(errors.RetiredError):
        clinic.do(RetireLocation, target_id=clinic.location)
    with pytest.raises(errors.RetiredError):
        clinic.do(
            RegisterResource,
            category=Category.ROOM,
            resource_name="Room 9",
            kind="exam-room",
            location_ids=(clinic.location,),
        )
    # What was booked there stays booked.
    assert (
        clinic.app.queries.get_appointment(clinic.org, uuid.UUID(booked["id"]))["status"]
        == "booked"
    )


def test_a_retired_resource_leaves_every_pool_and_its_bookings_stay(clinic: Clinic) -> None:
    first = clinic.book("consult", at(MONDAY, 9))
    leaving = uuid.UUID(first["participants"][0]["resource_id"])
    clinic.do(RetireResource, target_id=leaving, reason="left the practice")
    for hour in (10, 11, 12):
        booked = clinic.book("consult", at(MONDAY, hour))
        assert booked["participants"][0]["resource_id"] != str(leaving)
    with pytest.raises(errors.TimeUnavailableError):  # the other doctor is busy at 10
        clinic.book("consult", at(MONDAY, 10))
    with pytest.raises(errors.RetiredError):
        clinic.do(SetWeeklyHours, resource_id=leaving, hours=())
    assert clinic.app.queries.get_resource(clinic.org, leaving)["retired"] is True
    assert (
        clinic.app.queries.get_appointment(clinic.org, uuid.UUID(first["id"]))["status"] == "booked"
    )


def test_a_resource_rotates_between_locations_by_weekday_from_an_effective_date(
    clinic: Clinic,
) -> None:
    """Dr. 0 works Mondays at Mitte and Tuesdays at Nord; from the second week, Mondays at
    Nord too."""
    nord = uuid.UUID(clinic.do(RegisterLocation, location_name="Nord", time_zone=BERLIN).body["id"])
    doctor = clinic.providers[0]
    moved = clinic.do(UpdateResource, resource_id=doctor, location_ids=(clinic.location, nord)).body
    assert moved["location_ids"] == [str(clinic.location), str(nord)]
    next_week = MONDAY + dt.timedelta(days=7)
    clinic.do(
        SetWeeklyHours,
        resource_id=doctor,
        hours=(
            hours(clinic.location, 0, effective_until=next_week - dt.timedelta(days=1)),
            hours(nord, 0, effective_from=next_week),
            hours(nord, 1),
        ),
    )
    named = clinic.types["named"]  # Dr. 0 by name
    at_mitte = {"location_id": clinic.location}
    at_nord = {"location_id": nord}
    assert clinic.book("named", at(MONDAY, 9), **at_mitte)["status"] == "booked"
    with pytest.raises(errors.OutsideWorkingHoursError):
        clinic.book("named", at(MONDAY, 10), **at_nord)
    assert clinic.book("named", at(TUESDAY, 9), **at_nord)["status"] == "booked"
    with pytest.raises(errors.OutsideWorkingHoursError):
        clinic.book("named", at(TUESDAY, 10), **at_mitte)
    assert clinic.book("named", at(next_week, 9), **at_nord)["status"] == "booked"
    with pytest.raises(errors.OutsideWorkingHoursError):
        clinic.book("named", at(next_week, 10), **at_mitte)
    assert named  # the type did not change; only where its doctor works did


def test_a_type_carries_its_reminder_plan_texts_and_cut_offs_and_changes_for_new_bookings(
    clinic: Clinic,
) -> None:
    physician = Requirement("physician", Category.PROVIDER, specialty="dermatology")
    kind = clinic.do(
        DefineAppointmentType,
        type_name="Skin check",
        steps=(Step("check", 0, 20, (physician,)),),
        cancellation_cutoff_minutes=24 * 60,
        reschedule_cutoff_minutes=2 * 60,
        reminder_plan=(Reminder(2 * 24 * 60), Reminder(120, "sms")),
        patient_facing={
            "de": PatientText("Hautcheck", "Kontrolle der Haut", "Bitte ohne Make-up"),
            "en": PatientText("Skin check", "A look at your skin"),
        },
    ).body
    assert kind["reschedule_cutoff_minutes"] == 120
    assert kind["reminder_plan"] == [
        {"before_minutes": 2880, "channel": None},
        {"before_minutes": 120, "channel": "sms"},
    ]
    assert kind["patient_facing"]["de"]["preparation"] == "Bitte ohne Make-up"
    type_id = uuid.UUID(kind["id"])
    clinic.types["skin"] = type_id

    # Patients move up to two hours before, though they cancel only a day before.
    clinic.clock.now = at(MONDAY, 7)
    booked = clinic.book("skin", at(MONDAY, 12))
    moved = clinic.do(
        Reschedule,
        appointment_id=uuid.UUID(booked["id"]),
        start=at(MONDAY, 14),
        context=PATIENT,
    ).body
    assert moved["start"] == "2026-03-02T13:00:00Z"
    clinic.clock.now = at(MONDAY, 12, 30)
    with pytest.raises(errors.TooLateToRescheduleError):
        clinic.do(
            Reschedule,
            appointment_id=uuid.UUID(booked["id"]),
            start=at(MONDAY, 15),
            context=PATIENT,
        )

    updated = clinic.do(
        UpdateAppointmentType,
        appointment_type_id=type_id,
        changes={"name": "Skin screening", "reschedule_cutoff_minutes": None},
    ).body
    assert (updated["name"], updated["reschedule_cutoff_minutes"]) == ("Skin screening", 1440)
    assert updated["reminder_plan"] == kind["reminder_plan"]
    with pytest.raises(errors.InvalidRequestError):
        clinic.do(UpdateAppointmentType, appointment_type_id=type_id, changes={"colour": "x"})
    clinic.do(RetireAppointmentType, target_id=type_id)
    with pytest.raises(errors.RetiredError):
        clinic.book("skin", at(TUESDAY, 9))
    assert (
        clinic.app.queries.get_appointment(clinic.org, uuid.UUID(booked["id"]))["status"]
        == "booked"
    )
