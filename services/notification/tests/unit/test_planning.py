"""Which messages an appointment should have: confirmation and reminder plan, quiet hours in
the patient's zone, daylight saving, moves and cancellations, channels, consent and
language; planned the same way every time."""

import datetime as dt
import uuid
from dataclasses import replace
from zoneinfo import ZoneInfo

from clinic.notification.planning import (
    Appointment,
    Patient,
    Planned,
    QuietHours,
    Reminder,
    plan_messages,
)

BERLIN = ZoneInfo("Europe/Berlin")
PLAN = (Reminder(72 * 60, "email"), Reminder(24 * 60, "sms"), Reminder(120))
QUIET = QuietHours(dt.time(21), dt.time(8))
ANA = Patient(
    preferred_channel="sms",
    language="es-MX",
    consent_sms=True,
    consent_email=True,
    contacts=(("email", "ana@example.org"), ("phone", "+4915100000")),
    time_zone="Europe/Berlin",
)


def berlin(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), BERLIN).astimezone(dt.UTC)


def visit(start: dt.datetime, booked_at: dt.datetime, **changes: object) -> Appointment:
    made = Appointment(
        appointment_id=uuid.UUID(int=1),
        organization_id=uuid.UUID(int=2),
        patient_id=uuid.UUID(int=3),
        status="booked",
        start=start,
        booked_at=booked_at,
        time_zone="Europe/Berlin",
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def local_due(planned: list[Planned]) -> list[tuple[str, str | None, str]]:
    return [(p.kind, p.channel, p.due_at.astimezone(BERLIN).strftime("%a %H:%M")) for p in planned]


def test_a_booking_gets_its_confirmation_now_and_each_planned_reminder_before_the_start() -> None:
    start = berlin(dt.date(2027, 3, 12), 10)  # a Friday
    booked = berlin(dt.date(2027, 3, 5), 14, 30)

    planned = plan_messages(visit(start, booked), ANA, PLAN, QUIET)

    assert local_due(planned) == [
        ("confirmation", "sms", "Fri 14:30"),
        ("reminder", "email", "Tue 10:00"),
        ("reminder", "sms", "Thu 10:00"),
        ("reminder", "sms", "Fri 08:00"),
    ]
    assert [p.address for p in planned] == [
        "+4915100000",
        "ana@example.org",
        "+4915100000",
        "+4915100000",
    ]
    assert {p.language for p in planned} == {"es"}
    assert planned == plan_messages(visit(start, booked), ANA, PLAN, QUIET)  # same ids


def test_a_reminder_due_in_quiet_hours_waits_for_them_to_end_or_is_dropped_if_too_late() -> None:
    day = dt.date(2027, 3, 12)
    early = plan_messages(
        visit(berlin(day, 9), berlin(day - dt.timedelta(days=7), 12)),
        ANA,
        (Reminder(6 * 60), Reminder(120)),
        QUIET,
    )
    dawn = plan_messages(
        visit(berlin(day, 8), berlin(day - dt.timedelta(days=7), 12)),
        ANA,
        (Reminder(120),),
        QUIET,
    )

    # Due 03:00 and 07:00: both wait until 08:00, before the 09:00 start.
    assert local_due(early)[1:] == [
        ("reminder", "sms", "Fri 08:00"),
        ("reminder", "sms", "Fri 08:00"),
    ]
    # Due 06:00 for 08:00: the end of the quiet hours is the start itself, too late.
    assert [p.kind for p in dawn] == ["confirmation"]


def test_a_message_due_in_the_evening_waits_until_the_next_morning() -> None:
    booked = berlin(dt.date(2027, 3, 5), 22, 15)

    [confirmation] = plan_messages(visit(berlin(dt.date(2027, 3, 20), 10), booked), ANA, (), QUIET)

    assert confirmation.due_at == berlin(dt.date(2027, 3, 6), 8)


def test_a_day_before_across_the_spring_change_is_the_same_local_time_the_day_before() -> None:
    monday = dt.date(2027, 3, 29)  # clocks go forward on Sunday the 28th at 02:00
    start = berlin(monday, 9)

    planned = plan_messages(
        visit(start, berlin(monday - dt.timedelta(days=10), 12)),
        ANA,
        (Reminder(24 * 60), Reminder(7 * 24 * 60)),
        QUIET,
    )

    assert [p.due_at.astimezone(BERLIN).isoformat() for p in planned[1:]] == [
        "2027-03-28T09:00:00+02:00",
        "2027-03-22T09:00:00+01:00",
    ]
    # A week on the wall clock is an hour shorter across the change.
    assert start - planned[2].due_at == dt.timedelta(days=7, hours=-1)


def test_quiet_hours_that_end_in_the_skipped_hour_end_when_the_clocks_resume() -> None:
    quiet = QuietHours(dt.time(0), dt.time(2, 30))  # 02:30 does not exist on the 28th
    sunday = dt.date(2027, 3, 28)

    [confirmation] = plan_messages(visit(berlin(sunday, 12), berlin(sunday, 1, 0)), ANA, (), quiet)

    assert confirmation.due_at.astimezone(BERLIN).isoformat() == "2027-03-28T03:30:00+02:00"


def test_a_move_tells_the_new_time_and_plans_the_reminders_again_for_it() -> None:
    first = berlin(dt.date(2027, 3, 12), 10)
    booked = berlin(dt.date(2027, 3, 1), 9)
    before = plan_messages(visit(first, booked), ANA, PLAN, QUIET)
    moved = visit(
        berlin(dt.date(2027, 3, 11), 15),
        booked,
        moved_at=berlin(dt.date(2027, 3, 9), 12),
    )

    after = plan_messages(moved, ANA, PLAN, QUIET)

    assert local_due(after) == [
        ("confirmation", "sms", "Mon 09:00"),
        ("rescheduled", "sms", "Tue 12:00"),
        # 72 h before the new time had passed when it moved: not sent.
        ("reminder", "sms", "Wed 15:00"),
        ("reminder", "sms", "Thu 13:00"),
    ]
    assert after[0] == before[0]  # the confirmation was for the booking: it stays
    assert not {p.message_id for p in after[2:]} & {p.message_id for p in before}


def test_a_cancellation_is_told_once_and_a_lapsed_hold_or_a_mere_hold_is_not() -> None:
    start = berlin(dt.date(2027, 3, 12), 10)
    booked = berlin(dt.date(2027, 3, 1), 9)
    cancelled_at = berlin(dt.date(2027, 3, 10), 18)

    cancelled = plan_messages(
        visit(start, booked, status="cancelled", cancelled_at=cancelled_at, cancelled_by="patient"),
        ANA,
        PLAN,
        QUIET,
    )
    lapsed = plan_messages(
        visit(start, booked, status="cancelled", cancelled_at=cancelled_at, cancelled_by="system"),
        ANA,
        PLAN,
        QUIET,
    )
    held = plan_messages(visit(start, None, status="pending"), ANA, PLAN, QUIET)
    done = plan_messages(visit(start, booked, status="fulfilled"), ANA, PLAN, QUIET)

    assert local_due(cancelled) == [("cancelled", "sms", "Wed 18:00")]
    assert lapsed == held == done == []


def test_without_consent_or_an_address_a_message_is_planned_as_skipped_with_the_reason() -> None:
    start = berlin(dt.date(2027, 3, 12), 10)
    booked = berlin(dt.date(2027, 3, 1), 9)
    no_sms = replace(ANA, consent_sms=False)
    no_mail = replace(ANA, contacts=(("phone", "+4915100000"),))
    nothing = replace(ANA, preferred_channel="none")

    assert [p.skipped for p in plan_messages(visit(start, booked), no_sms, PLAN, QUIET)] == [
        "no consent to sms",
        None,
        "no consent to sms",
        "no consent to sms",
    ]
    assert plan_messages(visit(start, booked), no_mail, PLAN, QUIET)[1].skipped == (
        "no email address"
    )
    assert {p.skipped for p in plan_messages(visit(start, booked), nothing, (), QUIET)} == {
        "the patient asked for no messages by none"
    }


def test_the_language_is_the_patients_else_the_organisations_else_english() -> None:
    start = berlin(dt.date(2027, 3, 12), 10)
    booked = berlin(dt.date(2027, 3, 1), 9)

    def language(patient: str, organization: str) -> str:
        [confirmation] = plan_messages(
            visit(start, booked), replace(ANA, language=patient), (), QUIET, organization
        )
        return confirmation.language

    assert language("de-AT", "en") == "de"
    assert language("fr", "es") == "es"
    assert language("fr", "fr") == "en"


def test_nothing_is_planned_before_the_patient_record_has_arrived() -> None:
    start = berlin(dt.date(2027, 3, 12), 10)

    assert plan_messages(visit(start, berlin(dt.date(2027, 3, 1), 9)), None, PLAN, QUIET) == []
