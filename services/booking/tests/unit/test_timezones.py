"""Wall-clock conversion on daylight saving days."""

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinic.booking.domain.errors import (
    AmbiguousLocalTimeError,
    InvalidRequestError,
    NonExistentLocalTimeError,
)
from clinic.booking.domain.schedule import working_windows
from clinic.booking.domain.timezones import as_utc, day_bounds, local_dates, to_utc, zone
from clinic.booking.domain.values import WeeklyHours

BERLIN = zone("Europe/Berlin")
SPRING_FORWARD = dt.date(2026, 3, 29)  # 02:00 -> 03:00
FALL_BACK = dt.date(2026, 10, 25)  # 03:00 -> 02:00


def test_a_non_existent_0230_on_the_spring_forward_night_is_refused() -> None:
    with pytest.raises(NonExistentLocalTimeError, match="does not exist"):
        to_utc(dt.datetime(2026, 3, 29, 2, 30), BERLIN)


def test_a_repeated_0230_on_the_fall_back_night_needs_to_say_which_one() -> None:
    with pytest.raises(AmbiguousLocalTimeError):
        to_utc(dt.datetime(2026, 10, 25, 2, 30), BERLIN)
    first = to_utc(dt.datetime(2026, 10, 25, 2, 30), BERLIN, fold=0)
    second = to_utc(dt.datetime(2026, 10, 25, 2, 30), BERLIN, fold=1)
    assert second - first == dt.timedelta(hours=1)


def test_an_unknown_time_zone_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequestError, match="IANA"):
        zone("Mars/Olympus_Mons")


def test_local_days_are_23_and_25_hours_long_on_dst_days() -> None:
    start, end = day_bounds(SPRING_FORWARD, BERLIN)
    assert end - start == dt.timedelta(hours=23)
    start, end = day_bounds(FALL_BACK, BERLIN)
    assert end - start == dt.timedelta(hours=25)


def test_working_hours_across_the_repeated_hour_do_not_count_it_twice() -> None:
    location = __import__("uuid").uuid4()
    # Sunday hours 01:00-04:00 on the fall-back night: 4 real hours (02:00-03:00 happens
    # twice), on the spring-forward night: 2 real hours; never more.
    hours = (WeeklyHours(location, 6, dt.time(1), dt.time(4)),)
    fall = working_windows(hours, (), FALL_BACK, location, "Europe/Berlin")
    spring = working_windows(hours, (), SPRING_FORWARD, location, "Europe/Berlin")
    assert sum((w.duration for w in fall), dt.timedelta()) == dt.timedelta(hours=4)
    assert sum((w.duration for w in spring), dt.timedelta()) == dt.timedelta(hours=2)


def test_a_schedule_boundary_inside_the_gap_moves_to_the_first_real_instant() -> None:
    location = __import__("uuid").uuid4()
    hours = (WeeklyHours(location, 6, dt.time(2, 30), dt.time(6)),)
    [window] = working_windows(hours, (), SPRING_FORWARD, location, "Europe/Berlin")
    assert window.start.astimezone(BERLIN).time() == dt.time(3, 0)


@given(
    st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 12, 31)),
    st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata"]),
)
def test_every_wall_clock_time_that_exists_round_trips_through_utc(
    local: dt.datetime, name: str
) -> None:
    tz = zone(name)
    try:
        instant = to_utc(local, tz, fold=0)
    except NonExistentLocalTimeError:
        return
    assert instant.astimezone(tz).replace(tzinfo=None) == local


@given(
    st.datetimes(
        min_value=dt.datetime(2026, 1, 1),
        max_value=dt.datetime(2026, 12, 31),
        timezones=st.just(dt.UTC),
    ),
    st.integers(min_value=1, max_value=3 * 24 * 60),
)
def test_an_interval_touches_every_local_date_between_its_ends(
    start: dt.datetime, minutes: int
) -> None:
    end = start + dt.timedelta(minutes=minutes)
    dates = local_dates(start, end, BERLIN)
    assert dates[0] == start.astimezone(BERLIN).date()
    assert dates[-1] == (end - dt.timedelta(microseconds=1)).astimezone(BERLIN).date()
    assert all((b - a).days == 1 for a, b in itertools.pairwise(dates))


def test_as_utc_keeps_the_instant_and_refuses_a_time_without_an_offset() -> None:
    local = dt.datetime(2026, 3, 2, 9, tzinfo=BERLIN)
    assert as_utc(local) == local
    assert as_utc(local).tzinfo is dt.UTC
    with pytest.raises(InvalidRequestError, match="offset"):
        as_utc(dt.datetime(2026, 3, 2, 9))
