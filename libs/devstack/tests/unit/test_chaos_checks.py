"""`make chaos`'s checks fail on every kind of planted fault: an accepted booking lost or left
as it was before an accepted change, two live appointments on the same minutes, and a
projection that misses, doubles or misstates an appointment."""

from __future__ import annotations

import datetime as dt

from clinic.devstack.chaos import Call, expectations
from clinic.devstack.chaos_checks import (
    Expected,
    Findings,
    Held,
    compare_projection,
    compare_with_booking,
    overlaps,
)

NINE = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
TEN = NINE + dt.timedelta(hours=1)


def held(appointment: str, start: dt.datetime, status: str = "booked", who: str = "dr-a") -> Held:
    return Held(appointment, status, start, ((who, start, start + dt.timedelta(minutes=20)),))


def test_what_the_clients_were_told_last_is_what_booking_must_hold() -> None:
    calls = [
        Call("book", 201, 1, "a", NINE),
        Call("book", 409, 1, None, NINE),  # lost the race: nothing expected
        Call("reschedule", 200, 2, "a", TEN),
        Call("book", 201, 1, "b", NINE),
        Call("cancel", 200, 1, "b"),
        Call("reschedule", 409, 1, "b", TEN),  # refused: changes nothing
    ]
    assert expectations(calls) == {
        "a": Expected("booked", TEN),
        "b": Expected("cancelled", NINE),
    }


def test_a_clean_run_finds_nothing() -> None:
    findings = Findings()
    booking = {"a": held("a", NINE), "b": held("b", TEN)}
    compare_with_booking(
        {"a": Expected("booked", NINE), "b": Expected("booked", TEN)}, booking, findings
    )
    findings.double_booked = overlaps(booking.values())
    compare_projection(booking, [Held("a", "booked", NINE), Held("b", "booked", TEN)], findings)
    assert not findings.failed


def test_a_lost_or_unchanged_booking_fails_the_run() -> None:
    findings = Findings()
    expected = {
        "a": Expected("booked", NINE),
        "b": Expected("cancelled", TEN),
        "c": Expected("booked", TEN),
    }
    compare_with_booking(expected, {"a": held("a", NINE), "b": held("b", TEN)}, findings)
    assert findings.lost == ["c"]
    assert findings.wrong == ["b"]  # the accepted cancel did not take
    assert findings.failed


def test_two_live_appointments_on_the_same_minutes_fail_the_run_and_a_cancelled_one_does_not() -> (
    None
):
    doubled = overlaps([held("a", NINE), held("b", NINE + dt.timedelta(minutes=10))])
    assert doubled == [("dr-a", "a", "b")]
    assert overlaps([held("a", NINE), held("b", NINE, status="cancelled")]) == []
    assert overlaps([held("a", NINE), held("b", NINE, who="dr-b")]) == []
    assert overlaps([held("a", NINE), held("b", NINE + dt.timedelta(minutes=20))]) == []


def test_a_projection_that_misses_doubles_or_misstates_an_appointment_fails_the_run() -> None:
    booking = {
        "a": held("a", NINE),
        "b": held("b", TEN),
        "c": held("c", TEN, who="dr-b"),
        "d": held("d", NINE, status="cancelled"),
    }
    shown = [
        Held("b", "booked", TEN),
        Held("b", "booked", TEN),
        Held("c", "booked", NINE),
        Held("d", "booked", NINE),
    ]
    findings = Findings()
    compare_projection(booking, shown, findings)
    assert findings.missing_in_projection == ["a"]
    assert findings.duplicated_in_projection == ["b"]
    assert findings.different_in_projection == ["c", "d"]  # wrong time; still live when cancelled
    assert findings.failed
