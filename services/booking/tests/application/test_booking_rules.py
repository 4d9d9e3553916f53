"""Every rule the booking decision enforces, on the in-memory event store."""

import dataclasses
import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pytest
from scenario import MONDAY, PATIENT, Clinic, at, request_id

from clinic.booking.commands import (
    AddScheduleException,
    Arrive,
    BookAppointment,
    CancelAppointment,
    CheckIn,
    Complete,
    ConfirmAppointment,
    ConfirmAttendance,
    DefineAppointmentType,
    EnterInError,
    ExpireHold,
    MarkNoShow,
    RegisterLocation,
    RegisterOrganization,
    RegisterResource,
    Reschedule,
    SetOverbookingAllowance,
    SetWeeklyHours,
)
from clinic.booking.domain import errors
from clinic.booking.domain.acting import Acting, RequestContext, Role
from clinic.booking.domain.resource_day import resource_day_id
from clinic.booking.domain.values import (
    Category,
    ExceptionKind,
    Requirement,
    Step,
    WeeklyHours,
)

TUESDAY = MONDAY + dt.timedelta(days=1)


def claims_on(clinic: Clinic, resource: uuid.UUID, day: dt.date = MONDAY) -> list[dict]:
    return clinic.app.queries.resource_day(clinic.org, resource, day)["claims"]


def test_a_booking_inside_working_hours_claims_the_provider(clinic: Clinic) -> None:
    appointment = clinic.book("named", at(MONDAY, 9))
    assert appointment["status"] == "booked"
    [claim] = claims_on(clinic, clinic.providers[0])
    assert claim["appointment_id"] == appointment["id"]
    assert claim["local_start"] == "2026-03-02T09:00:00+01:00"


def test_a_named_provider_outside_working_hours_is_refused(clinic: Clinic) -> None:
    with pytest.raises(errors.OutsideWorkingHoursError):
        clinic.book("named", at(MONDAY, 16, 45))  # ends 17:05, after 17:00
    with pytest.raises(errors.OutsideWorkingHoursError):
        clinic.book("named", at(MONDAY + dt.timedelta(days=5), 10))  # Saturday


def test_the_same_instant_given_with_another_offset_is_the_same_time(clinic: Clinic) -> None:
    in_berlin = at(MONDAY, 9).astimezone(ZoneInfo("Europe/Berlin"))
    assert clinic.book("named", in_berlin)["start"] == "2026-03-02T08:00:00Z"
    with pytest.raises(errors.SlotTakenError):
        clinic.book("named", at(MONDAY, 9))  # the same instant, in UTC
    with pytest.raises(errors.InvalidRequestError, match="offset"):
        clinic.book("named", dt.datetime(2026, 3, 2, 11))  # a wall-clock time of nowhere


def test_working_hours_known_from_earlier_bookings_follow_leave_added_later(
    clinic: Clinic,
) -> None:
    clinic.book("named", at(MONDAY, 9))  # the day's working hours are now worked out
    clinic.schedule_exception(ExceptionKind.LEAVE, at(MONDAY, 10), at(MONDAY, 12), "training")
    with pytest.raises(errors.OutsideWorkingHoursError):
        clinic.book("named", at(MONDAY, 10, 30))
    assert clinic.book("named", at(MONDAY, 12))["status"] == "booked"


def test_leave_removes_working_time_and_extra_hours_add_it(clinic: Clinic) -> None:
    clinic.schedule_exception(ExceptionKind.LEAVE, at(MONDAY, 0), at(TUESDAY, 0), "conference")
    with pytest.raises(errors.OutsideWorkingHoursError):
        clinic.book("named", at(MONDAY, 10))
    saturday = MONDAY + dt.timedelta(days=5)
    clinic.schedule_exception(ExceptionKind.EXTRA, at(saturday, 9), at(saturday, 12), "flu")
    assert clinic.book("named", at(saturday, 10))["status"] == "booked"


def test_buffers_block_time_around_an_appointment(clinic: Clinic) -> None:
    clinic.book("named", at(MONDAY, 9))  # 09:00-09:20, buffer after 10 minutes
    with pytest.raises(errors.SlotTakenError):
        clinic.book("named", at(MONDAY, 9, 25))
    assert clinic.book("named", at(MONDAY, 9, 30))["status"] == "booked"


def test_a_pool_picks_a_free_member_then_refuses_with_alternatives(clinic: Clinic) -> None:
    first = clinic.book("consult", at(MONDAY, 10))
    second = clinic.book("consult", at(MONDAY, 10))
    chosen = {first["participants"][0]["resource_id"], second["participants"][0]["resource_id"]}
    assert chosen == {str(p) for p in clinic.providers}
    with pytest.raises(errors.NoResourceAvailableError) as refused:
        clinic.book("consult", at(MONDAY, 10))
    alternatives = refused.value.extensions["alternatives"]
    assert len(alternatives) == 3
    assert alternatives[0]["start"] == "2026-03-02T09:30:00Z"  # 10:30 Berlin
    assert refused.value.extensions["reasons"] == ["slot-taken"]


def test_a_booking_needing_provider_room_and_device_claims_all_or_nothing(clinic: Clinic) -> None:
    other = clinic.book("group", at(MONDAY, 11))  # takes the only exam room 11:00-12:00
    with pytest.raises(errors.SlotTakenError):
        clinic.book("scan", at(MONDAY, 11, 30))
    assert claims_on(clinic, clinic.providers[0]) == []
    assert claims_on(clinic, clinic.devices[0]) == []
    assert [c["appointment_id"] for c in claims_on(clinic, clinic.rooms[0])] == [other["id"]]
    scan = clinic.book("scan", at(MONDAY, 12))
    assert {p["role"] for p in scan["participants"]} == {"physician", "room", "scanner"}


def test_a_two_step_visit_claims_each_resource_for_its_own_step(clinic: Clinic) -> None:
    visit = clinic.book("two-step", at(MONDAY, 9))
    steps = {p["role"]: (p["start"], p["end"]) for p in visit["participants"]}
    assert steps["room"] == ("2026-03-02T08:00:00Z", "2026-03-02T08:15:00Z")
    assert steps["physician"] == ("2026-03-02T08:15:00Z", "2026-03-02T08:35:00Z")


def test_a_group_session_holds_its_seats_and_no_more(clinic: Clinic) -> None:
    for patient in clinic.patients:
        clinic.book("group", at(MONDAY, 14), patient_id=patient)
    assert len(claims_on(clinic, clinic.rooms[0])) == 3
    with pytest.raises(errors.SessionFullError):
        clinic.book("group", at(MONDAY, 14))
    with pytest.raises(errors.SlotTakenError):  # another type cannot share the room
        clinic.book("two-step", at(MONDAY, 14, 30))


def test_overbooking_needs_an_allowance_and_an_explicit_request(clinic: Clinic) -> None:
    provider = clinic.providers[0]
    clinic.book("named", at(MONDAY, 9))
    with pytest.raises(errors.SlotTakenError):
        clinic.book("named", at(MONDAY, 9))
    with pytest.raises(errors.OverbookingNotAllowedError):
        clinic.book("named", at(MONDAY, 9), allow_overbooking=True)
    clinic.do(SetOverbookingAllowance, resource_id=provider, allowance=1)
    clinic.book("named", at(MONDAY, 9), allow_overbooking=True)
    assert [c["overbooked"] for c in claims_on(clinic, provider)] == [False, True]
    with pytest.raises(errors.OverbookingNotAllowedError):
        clinic.book("named", at(MONDAY, 9), allow_overbooking=True)
    with pytest.raises(errors.StaffOnlyError, match="clinic staff"):
        clinic.book("named", at(MONDAY, 9), allow_overbooking=True, context=PATIENT)


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.FRONT_DESK, True),
        (Role.PROVIDER, True),
        (Role.EMR, True),
        (Role.PATIENT, False),
        (Role.SYSTEM, False),
        (Role.OPS, False),
    ],
)
def test_who_may_overbook_is_read_from_the_actor(clinic: Clinic, role: Role, allowed: bool) -> None:
    clinic.do(SetOverbookingAllowance, resource_id=clinic.providers[0], allowance=1)
    clinic.book("named", at(MONDAY, 9))
    context = RequestContext(Acting("someone", role, "test"))
    if allowed:
        booked = clinic.book("named", at(MONDAY, 9), allow_overbooking=True, context=context)
        assert booked["booked_by"] == "clinic"
    else:
        with pytest.raises(errors.StaffOnlyError):
            clinic.book("named", at(MONDAY, 9), allow_overbooking=True, context=context)
        assert len(claims_on(clinic, clinic.providers[0])) == 1


def test_an_appointment_records_the_side_of_the_actor_who_booked_it(clinic: Clinic) -> None:
    assert clinic.book("consult", at(MONDAY, 9), context=PATIENT)["booked_by"] == "patient"
    assert clinic.book("consult", at(MONDAY, 10))["booked_by"] == "clinic"
    system = RequestContext(Acting())
    assert clinic.book("consult", at(MONDAY, 11), context=system)["booked_by"] == "system"


def test_patients_check_themselves_in_but_only_the_clinic_records_the_rest(
    clinic: Clinic,
) -> None:
    clinic.clock.now = at(MONDAY, 8, 50)
    booked = clinic.book("consult", at(MONDAY, 9))
    appointment = uuid.UUID(booked["id"])
    for step in (Arrive, Complete, MarkNoShow):
        with pytest.raises(errors.StaffOnlyError):
            clinic.do(step, appointment_id=appointment, context=PATIENT)
    with pytest.raises(errors.StaffOnlyError):
        clinic.do(EnterInError, appointment_id=appointment, reason="x", context=PATIENT)
    assert clinic.do(CheckIn, appointment_id=appointment, context=PATIENT).body["status"] == (
        "checked-in"
    )


def test_minimum_notice_maximum_horizon_and_the_past_are_enforced(clinic: Clinic) -> None:
    clinic.clock.now = at(MONDAY, 7)
    with pytest.raises(errors.TooSoonError):
        clinic.book("policy", at(MONDAY, 10))
    with pytest.raises(errors.TooFarAheadError):
        clinic.book("policy", at(MONDAY + dt.timedelta(days=35), 10))
    with pytest.raises(errors.InvalidTimeError, match="past"):
        clinic.book("consult", at(MONDAY - dt.timedelta(days=7), 10))
    assert clinic.book("policy", at(TUESDAY, 10))["status"] == "booked"


def test_patients_cannot_book_a_clinic_only_type(clinic: Clinic) -> None:
    with pytest.raises(errors.NotPatientBookableError):
        clinic.book("policy", at(TUESDAY, 10), context=PATIENT)


def test_an_expired_hold_frees_its_time_for_the_next_command_without_any_timer(
    clinic: Clinic,
) -> None:
    hold = clinic.hold("named", at(MONDAY, 9))
    assert hold["status"] == "pending"
    with pytest.raises(errors.SlotTakenError):
        clinic.book("named", at(MONDAY, 9))
    clinic.clock.advance(minutes=11)
    taken = clinic.book("named", at(MONDAY, 9))
    assert taken["status"] == "booked"
    day = clinic.app.queries.resource_day(clinic.org, clinic.providers[0], MONDAY)
    assert [c["appointment_id"] for c in day["claims"]] == [taken["id"]]
    assert [e["event"] for e in day["history"]] == [
        "Opened",
        "TimeClaimed",
        "HoldLapsed",
        "TimeClaimed",
    ]
    expired = clinic.app.queries.get_appointment(clinic.org, uuid.UUID(hold["id"]))
    assert expired["status"] == "cancelled"
    assert expired["cancellation"]["reason"] == "hold expired"
    with pytest.raises(errors.HoldExpiredError):
        clinic.do(ConfirmAppointment, appointment_id=uuid.UUID(hold["id"]))


def test_an_expired_hold_is_recorded_once_and_its_claims_leave_the_day(clinic: Clinic) -> None:
    clinic.clock.now = at(MONDAY, 7)
    hold = uuid.UUID(clinic.hold("named", at(MONDAY, 9))["id"])
    expire = ExpireHold.of(clinic.org, hold)
    with pytest.raises(errors.InvalidTransitionError, match="expires at"):
        clinic.app.handle(expire)
    clinic.clock.advance(minutes=11)

    expired = clinic.app.handle(expire)

    assert expired.body["status"] == "cancelled"
    assert expired.body["cancellation"]["reason"] == "hold expired"
    assert claims_on(clinic, clinic.providers[0]) == []
    day = clinic.app.queries.resource_day(clinic.org, clinic.providers[0], MONDAY)
    assert [e["event"] for e in day["history"]][-1] == "HoldLapsed"
    history = clinic.app.queries.appointment_history(clinic.org, hold)["events"]
    assert [(e["event"], e["by"], e["actor"]["user_id"]) for e in history] == [
        ("Held", "clinic", "desk-7"),
        ("HoldExpired", "system", "hold-sweeper"),
    ]
    # Asked again (another replica, a retry): the same answer, nothing recorded twice.
    assert clinic.app.handle(expire).replayed
    again = clinic.app.handle(dataclasses.replace(expire, request_id="another"))
    assert not again.replayed
    assert again.body["status"] == "cancelled"
    assert len(clinic.app.queries.appointment_history(clinic.org, hold)["events"]) == 2


def test_expiring_a_hold_whose_time_was_taken_already_changes_only_the_appointment(
    clinic: Clinic,
) -> None:
    clinic.clock.now = at(MONDAY, 7)
    hold = uuid.UUID(clinic.hold("named", at(MONDAY, 9))["id"])
    confirmed = uuid.UUID(clinic.hold("named", at(MONDAY, 10))["id"])
    clinic.do(ConfirmAppointment, appointment_id=confirmed)
    clinic.clock.advance(minutes=11)
    taken = clinic.book("named", at(MONDAY, 9))
    before = clinic.app.queries.resource_day(clinic.org, clinic.providers[0], MONDAY)

    clinic.app.handle(ExpireHold.of(clinic.org, hold))
    kept = clinic.app.handle(ExpireHold.of(clinic.org, confirmed))

    after = clinic.app.queries.resource_day(clinic.org, clinic.providers[0], MONDAY)
    assert after["history"] == before["history"]
    assert {c["appointment_id"] for c in after["claims"]} == {taken["id"], str(confirmed)}
    assert kept.body["status"] == "booked"


def test_a_confirmed_hold_keeps_its_time_past_the_expiry(clinic: Clinic) -> None:
    hold = clinic.hold("named", at(MONDAY, 9))
    booked = clinic.do(ConfirmAppointment, appointment_id=uuid.UUID(hold["id"])).body
    assert (booked["status"], booked["hold_expires_at"]) == ("booked", None)
    clinic.clock.advance(minutes=30)
    with pytest.raises(errors.SlotTakenError):
        clinic.book("named", at(MONDAY, 9))


def test_cancelling_releases_time_and_patients_must_respect_the_cut_off(clinic: Clinic) -> None:
    clinic.clock.now = at(MONDAY, 7)
    surgery = uuid.UUID(clinic.book("policy", at(TUESDAY, 10))["id"])
    with pytest.raises(errors.TooLateToCancelError):
        clinic.do(CancelAppointment, appointment_id=surgery, context=PATIENT, reason="busy")
    cancelled = clinic.do(CancelAppointment, appointment_id=surgery, reason="surgeon ill").body
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellation"]["by"] == "clinic"
    assert claims_on(clinic, uuid.UUID(cancelled["participants"][0]["resource_id"]), TUESDAY) == []
    with pytest.raises(errors.InvalidTransitionError):
        clinic.do(CancelAppointment, appointment_id=surgery, reason="again")


def test_rescheduling_moves_every_claim_at_once(clinic: Clinic) -> None:
    scan = clinic.book("scan", at(MONDAY, 9))
    moved = clinic.reschedule(scan, at(TUESDAY, 13))
    assert moved["start"] == "2026-03-03T12:00:00Z"
    for resource in (clinic.providers[0], clinic.rooms[0], clinic.devices[0]):
        assert claims_on(clinic, resource, MONDAY) == []
        assert [c["appointment_id"] for c in claims_on(clinic, resource, TUESDAY)] == [scan["id"]]


def test_rescheduling_onto_overlapping_time_of_the_same_appointment_works(clinic: Clinic) -> None:
    visit = clinic.book("named", at(MONDAY, 9))
    moved = clinic.reschedule(visit, at(MONDAY, 9, 10))
    assert moved["start"] == "2026-03-02T08:10:00Z"
    assert len(claims_on(clinic, clinic.providers[0])) == 1


def test_status_changes_follow_the_fhir_lifecycle(clinic: Clinic) -> None:
    visit = uuid.UUID(clinic.book("named", at(MONDAY, 9))["id"])
    with pytest.raises(errors.InvalidTransitionError, match="check-in opens"):
        clinic.do(CheckIn, appointment_id=visit)
    with pytest.raises(errors.InvalidTransitionError):
        clinic.do(Complete, appointment_id=visit)
    with pytest.raises(errors.InvalidTransitionError, match="arrives from 4 hours"):
        clinic.do(Arrive, appointment_id=visit)  # not months, days or hours ahead
    clinic.clock.now = at(MONDAY, 8, 45)
    with pytest.raises(errors.InvalidTransitionError, match="no-show"):
        clinic.do(MarkNoShow, appointment_id=visit)
    assert clinic.do(CheckIn, appointment_id=visit).body["status"] == "checked-in"
    assert clinic.do(Arrive, appointment_id=visit).body["status"] == "arrived"
    assert clinic.do(Complete, appointment_id=visit).body["status"] == "fulfilled"
    other = uuid.UUID(clinic.book("named", at(MONDAY, 10))["id"])
    clinic.clock.now = at(MONDAY, 10, 15)
    assert clinic.do(MarkNoShow, appointment_id=other).body["status"] == "noshow"


def test_a_patient_confirms_attendance_before_the_start_and_the_status_stays_booked(
    clinic: Clinic,
) -> None:
    clinic.clock.now = at(MONDAY, 7)
    booked = clinic.book("consult", at(MONDAY, 9))
    assert (booked["attendance_confirmed_at"], booked["attendance_confirmed_by"]) == (None, None)

    confirmed = clinic.do(
        ConfirmAttendance, appointment_id=uuid.UUID(booked["id"]), context=PATIENT
    ).body

    assert confirmed["status"] == "booked"
    assert confirmed["attendance_confirmed_at"] == "2026-03-02T06:00:00Z"
    assert confirmed["attendance_confirmed_by"] == "patient"
    assert confirmed["version"] == booked["version"] + 1
    assert clinic.app.queries.get_appointment(clinic.org, uuid.UUID(booked["id"])) == confirmed
    doctor = uuid.UUID(booked["participants"][0]["resource_id"])
    [claim] = claims_on(clinic, doctor)  # its time untouched
    assert claim["appointment_id"] == booked["id"]


def test_confirming_attendance_twice_records_it_once_and_answers_with_the_appointment_as_it_is(
    clinic: Clinic,
) -> None:
    clinic.clock.now = at(MONDAY, 7)
    visit = uuid.UUID(clinic.book("consult", at(MONDAY, 9))["id"])
    first = clinic.do(ConfirmAttendance, appointment_id=visit, context=PATIENT).body
    recorded = len(list(clinic.app.events.get(visit)))

    clinic.clock.advance(minutes=30)
    again = clinic.do(ConfirmAttendance, appointment_id=visit, context=PATIENT)
    by_desk = clinic.do(ConfirmAttendance, appointment_id=visit)  # the patient phoned too

    assert again.body == first
    assert by_desk.body == first  # still the patient's, at the first time
    assert (again.replayed, by_desk.replayed) == (False, False)
    assert len(list(clinic.app.events.get(visit))) == recorded


def test_attendance_cannot_be_confirmed_once_the_appointment_has_started(clinic: Clinic) -> None:
    visit = uuid.UUID(clinic.book("consult", at(MONDAY, 9))["id"])
    clinic.clock.now = at(MONDAY, 9)
    with pytest.raises(errors.InvalidTransitionError, match="before the appointment starts"):
        clinic.do(ConfirmAttendance, appointment_id=visit, context=PATIENT)
    clinic.clock.now = at(MONDAY, 9, 10)
    clinic.do(CheckIn, appointment_id=visit)
    with pytest.raises(errors.InvalidTransitionError, match="checked-in"):
        clinic.do(ConfirmAttendance, appointment_id=visit)
    view = clinic.app.queries.get_appointment(clinic.org, visit)
    assert view["attendance_confirmed_at"] is None


def test_attendance_of_a_cancelled_appointment_or_a_hold_cannot_be_confirmed(
    clinic: Clinic,
) -> None:
    clinic.clock.now = at(MONDAY, 7)
    cancelled = uuid.UUID(clinic.book("consult", at(MONDAY, 9))["id"])
    clinic.do(CancelAppointment, appointment_id=cancelled, reason="ill")
    held = uuid.UUID(clinic.hold("consult", at(MONDAY, 10))["id"])
    for appointment, status in ((cancelled, "cancelled"), (held, "pending")):
        with pytest.raises(errors.InvalidTransitionError, match=status) as refused:
            clinic.do(ConfirmAttendance, appointment_id=appointment, context=PATIENT)
        assert refused.value.extensions["appointment_status"] == status
    clinic.clock.advance(minutes=11)  # the hold expired: it counts as cancelled
    with pytest.raises(errors.InvalidTransitionError, match="cancelled"):
        clinic.do(ConfirmAttendance, appointment_id=held, context=PATIENT)
    clinic.clock.now = at(MONDAY, 7)
    confirmed = uuid.UUID(clinic.book("consult", at(MONDAY, 11))["id"])
    clinic.do(ConfirmAttendance, appointment_id=confirmed, context=PATIENT)
    clinic.do(CancelAppointment, appointment_id=confirmed, reason="ill")
    with pytest.raises(errors.InvalidTransitionError, match="cancelled"):
        clinic.do(ConfirmAttendance, appointment_id=confirmed, context=PATIENT)


def test_staff_record_a_confirmation_the_patient_phoned_in_as_the_clinics(
    clinic: Clinic,
) -> None:
    clinic.clock.now = at(MONDAY, 7)
    phoned = uuid.UUID(clinic.book("consult", at(MONDAY, 9), context=PATIENT)["id"])
    replied = uuid.UUID(clinic.book("consult", at(MONDAY, 10))["id"])

    by_desk = clinic.do(ConfirmAttendance, appointment_id=phoned).body
    by_service = clinic.do(
        ConfirmAttendance, appointment_id=replied, context=RequestContext(Acting())
    ).body

    assert by_desk["attendance_confirmed_by"] == "clinic"
    assert by_service["attendance_confirmed_by"] == "system"
    history = clinic.app.queries.appointment_history(clinic.org, phoned)["events"]
    assert [(e["event"], e["status"], e["by"]) for e in history] == [
        ("Booked", "booked", "patient"),
        ("AttendanceConfirmed", "booked", "clinic"),
    ]


def test_repeating_a_request_id_returns_the_first_answer_and_writes_nothing(
    clinic: Clinic,
) -> None:
    app = clinic.app
    kwargs = {
        "appointment_type_id": clinic.types["named"],
        "location_id": clinic.location,
        "patient_id": clinic.patients[0],
        "start": at(MONDAY, 9),
        "preferred": {},
        "allow_overbooking": False,
        "note": "",
    }
    first = clinic.do(BookAppointment, request_id="client-42", **kwargs)
    events = app.recorder.max_notification_id()
    again = clinic.do(BookAppointment, request_id="client-42", **kwargs)
    assert (again.body, again.replayed) == (first.body, True)
    assert app.recorder.max_notification_id() == events
    with pytest.raises(errors.IdempotencyKeyReusedError):
        clinic.do(BookAppointment, request_id="client-42", **{**kwargs, "start": at(MONDAY, 10)})
    assert app.recorder.max_notification_id() == events


def test_another_organisations_ids_are_not_found(clinic: Clinic) -> None:
    app = clinic.app
    other = uuid.UUID(
        app.handle(
            RegisterOrganization(request_id=request_id(), organization_name="Other Group")
        ).body["id"]
    )
    with pytest.raises(errors.NotFoundError):
        clinic.do(
            BookAppointment, organization_id=other, **clinic.reservation("named", at(MONDAY, 9))
        )
    with pytest.raises(errors.NotFoundError):
        app.queries.get_patient(other, clinic.patients[0])
    with pytest.raises(errors.NotFoundError):
        app.queries.resource_day(other, clinic.providers[0], MONDAY)


def test_unknown_ids_are_not_found(clinic: Clinic) -> None:
    with pytest.raises(errors.NotFoundError):
        clinic.book("named", at(MONDAY, 9), patient_id=uuid.uuid4())
    with pytest.raises(errors.NotFoundError):
        clinic.app.queries.get_appointment(clinic.org, uuid.uuid4())


def test_the_resource_day_says_who_owns_a_minute_and_which_event_gave_it(clinic: Clinic) -> None:
    visit = clinic.book("named", at(MONDAY, 9))
    owner = clinic.app.queries.who_owns(clinic.org, clinic.providers[0], at(MONDAY, 9, 25))
    [claim] = owner["owners"]  # 09:25 is in the buffer after 09:00-09:20
    assert claim["appointment_id"] == visit["id"]
    assert claim["claimed_by_event"]["event"] == "TimeClaimed"
    assert claim["claimed_by_event"]["aggregate_id"] == str(
        resource_day_id(clinic.providers[0], MONDAY)
    )
    assert clinic.app.queries.who_owns(clinic.org, clinic.providers[0], at(MONDAY, 9, 30))["free"]


def test_time_blocked_at_one_location_leaves_the_resource_working_at_another(
    clinic: Clinic,
) -> None:
    # Dr. Two works Mondays at Mitte 08:00-12:00 and at Altona 13:00-17:00.
    altona = uuid.UUID(
        clinic.do(RegisterLocation, location_name="Altona", time_zone="Europe/Berlin").body["id"]
    )
    doctor = uuid.UUID(
        clinic.do(
            RegisterResource,
            category=Category.PROVIDER,
            resource_name="Dr. Two",
            kind="physician",
            location_ids=(clinic.location, altona),
        ).body["id"]
    )
    hours = (
        WeeklyHours(clinic.location, 0, dt.time(8), dt.time(12)),
        WeeklyHours(altona, 0, dt.time(13), dt.time(17)),
    )
    clinic.do(SetWeeklyHours, resource_id=doctor, hours=hours)
    visit = uuid.UUID(
        clinic.do(
            DefineAppointmentType,
            type_name="Visit with Dr. Two",
            steps=(Step("visit", 0, 30, (Requirement("physician", Category.PROVIDER, doctor),)),),
        ).body["id"]
    )
    # Mitte is closed all Monday (a blocked day at that location only).
    clinic.do(
        AddScheduleException,
        resource_id=doctor,
        kind=ExceptionKind.BLOCKED,
        start=at(MONDAY, 0),
        end=at(TUESDAY, 0),
        location_id=clinic.location,
        reason="Mitte closed",
    )

    def book(location: uuid.UUID, hour: int) -> dict:
        reservation = clinic.reservation("named", at(MONDAY, hour), appointment_type_id=visit)
        return clinic.do(BookAppointment, **{**reservation, "location_id": location}).body

    with pytest.raises(errors.OutsideWorkingHoursError):
        book(clinic.location, 9)
    assert book(altona, 14)["status"] == "booked"


def test_patients_reschedule_only_before_the_cut_off_and_staff_at_any_time(
    clinic: Clinic,
) -> None:
    # Monday 07:00 Berlin: Tuesday 10:00 is 27 hours away, inside the 48-hour cut-off.
    clinic.clock.now = at(MONDAY, 7)
    surgery = uuid.UUID(clinic.book("policy", at(TUESDAY, 10))["id"])
    later = at(TUESDAY + dt.timedelta(days=7), 10)
    with pytest.raises(errors.TooLateToRescheduleError):
        clinic.do(Reschedule, appointment_id=surgery, start=later, context=PATIENT)
    moved = clinic.do(
        Reschedule,
        appointment_id=surgery,
        start=later,
    )
    assert moved.body["start"] == "2026-03-10T09:00:00Z"
    # A week ahead, the patient may move it again.
    again = clinic.do(
        Reschedule,
        appointment_id=surgery,
        start=at(TUESDAY + dt.timedelta(days=8), 10),
        context=PATIENT,
    )
    assert again.body["start"] == "2026-03-11T09:00:00Z"


def test_an_appointment_entered_in_error_gives_its_time_back_and_cannot_change_again(
    clinic: Clinic,
) -> None:
    visit = uuid.UUID(clinic.book("named", at(MONDAY, 9))["id"])
    struck = clinic.do(EnterInError, appointment_id=visit, reason="wrong patient").body
    assert struck["status"] == "entered-in-error"
    assert claims_on(clinic, clinic.providers[0]) == []
    assert clinic.book("named", at(MONDAY, 9))["status"] == "booked"
    with pytest.raises(errors.InvalidTransitionError):
        clinic.do(EnterInError, appointment_id=visit, reason="again")
    with pytest.raises(errors.InvalidTransitionError):
        clinic.do(CheckIn, appointment_id=visit)


def test_an_appointments_history_tells_every_step_who_asked_and_what_it_was_after(
    clinic: Clinic,
) -> None:
    clinic.clock.now = at(MONDAY, 7)
    held = uuid.UUID(clinic.hold("named", at(TUESDAY, 9))["id"])
    clinic.do(ConfirmAppointment, appointment_id=held)
    clinic.do(Reschedule, appointment_id=held, start=at(TUESDAY, 11))
    clinic.do(CancelAppointment, appointment_id=held, context=PATIENT, reason="better time")

    history = clinic.app.queries.appointment_history(clinic.org, held)

    assert [(e["event"], e["status"], e["by"]) for e in history["events"]] == [
        ("Held", "pending", "clinic"),
        ("HoldConfirmed", "booked", "clinic"),
        ("Rescheduled", "booked", "clinic"),
        ("Cancelled", "cancelled", "patient"),
    ]
    assert [e["actor"]["user_id"] for e in history["events"]] == [
        "desk-7",
        "desk-7",
        "desk-7",
        "patient-42",
    ]
    assert history["events"][3]["actor"] == {
        "user_id": "patient-42",
        "role": "patient",
        "channel": "patient-portal",
    }
    assert history["events"][2]["start"] == "2026-03-03T10:00:00Z"
    assert history["events"][3]["reason"] == "better time"
    assert [e["version"] for e in history["events"]] == [1, 2, 3, 4]
    with pytest.raises(errors.NotFoundError):
        clinic.app.queries.appointment_history(uuid.uuid4(), held)  # another tenant


def test_every_event_of_a_decision_records_who_asked_and_which_request(
    clinic: Clinic,
) -> None:
    from clinic.booking.domain.request import handled_request_id

    context = RequestContext(
        acting=Acting("desk-7", Role.FRONT_DESK, "front-desk"),
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
    )
    booked = clinic.do(
        BookAppointment,
        request_id="r-1",
        context=context,
        **clinic.reservation("named", at(MONDAY, 9)),
    ).body
    stored = list(clinic.app.events.get(uuid.UUID(booked["id"])))
    day = list(clinic.app.events.get(resource_day_id(clinic.providers[0], MONDAY)))
    for event in [*stored, *day]:
        assert event.metadata["actor_id"] == "desk-7"
        assert event.metadata["actor_role"] == "front_desk"
        assert event.metadata["channel"] == "front-desk"
        assert event.metadata["traceparent"].startswith("00-aaaa")
        assert event.metadata["causation_id"] == str(handled_request_id(clinic.org, "r-1"))
        assert event.metadata["correlation_id"] == event.metadata["causation_id"]
    # Without a context, the service itself is the acting party.
    other = clinic.book("named", at(MONDAY, 10), context=RequestContext())
    [created] = list(clinic.app.events.get(uuid.UUID(other["id"])))
    assert (created.metadata["actor_id"], created.metadata["actor_role"]) == ("booking", "system")
