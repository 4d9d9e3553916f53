"""A schedule keeps the working windows it worked out, and forgets them when it changes."""

import copy
import datetime as dt
import uuid

from clinic.booking.domain.schedule import Schedule
from clinic.booking.domain.values import ExceptionKind, Interval, ScheduleException, WeeklyHours

BERLIN = "Europe/Berlin"
MONDAY = dt.date(2026, 3, 2)
LOCATION = uuid.uuid4()


def saved_schedule() -> Schedule:
    schedule = Schedule(resource_id=uuid.uuid4(), organization_id=uuid.uuid4())
    schedule.set_weekly_hours(
        tuple(WeeklyHours(LOCATION, d, dt.time(8), dt.time(17)) for d in range(5))
    )
    schedule.collect_events()
    return schedule


def utc(hour: int) -> dt.datetime:
    return dt.datetime.combine(MONDAY, dt.time(hour), dt.UTC)


def test_windows_asked_again_are_the_same_and_follow_a_later_exception() -> None:
    schedule = saved_schedule()
    first = schedule.windows(MONDAY, LOCATION, BERLIN)
    assert first == [Interval(utc(7), utc(16))]
    assert schedule.windows(MONDAY, LOCATION, BERLIN) == first
    leave = ScheduleException(uuid.uuid4(), ExceptionKind.LEAVE, utc(9), utc(11), None, "")
    schedule.add_exception(leave)  # not saved yet: worked out afresh
    expected = [Interval(utc(7), utc(9)), Interval(utc(11), utc(16))]
    assert schedule.windows(MONDAY, LOCATION, BERLIN) == expected
    schedule.collect_events()
    assert schedule.windows(MONDAY, LOCATION, BERLIN) == expected
    schedule.remove_exception(leave.id)
    schedule.collect_events()
    assert schedule.windows(MONDAY, LOCATION, BERLIN) == first


def test_a_copy_changed_apart_from_its_original_does_not_share_its_windows() -> None:
    original = saved_schedule()
    original.windows(MONDAY, LOCATION, BERLIN)
    changed = copy.deepcopy(original)
    changed.add_exception(
        ScheduleException(uuid.uuid4(), ExceptionKind.BLOCKED, utc(7), utc(16), None, "")
    )
    changed.collect_events()
    assert changed.windows(MONDAY, LOCATION, BERLIN) == []
    assert original.windows(MONDAY, LOCATION, BERLIN) == [Interval(utc(7), utc(16))]
