"""`make chaos`'s checks fail on every kind of planted fault: an accepted booking lost or left
as it was before an accepted change, two live appointments on the same minutes, a
projection that misses, doubles or misstates an appointment or differs from its rebuild, a
patient never sent the latest news, a step's message or SIU message made twice or never, an
email delivered twice."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from clinic.devstack.chaos_checks import (
    KILL_WINDOW,
    MESSAGE_OF,
    SIU_OF,
    Expected,
    Findings,
    Held,
    compare_counts,
    compare_messages,
    compare_projection,
    compare_with_booking,
    differences,
    expectations,
    mail_doubled,
    overlaps,
    replay_differs,
    steps,
    uncertain,
)
from clinic.devstack.chaos_load import Call

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


def test_a_request_without_a_decision_leaves_its_appointment_unchecked() -> None:
    calls = [
        Call("book", 201, 1, "a", NINE),
        Call("cancel", 0, 40, "a"),  # no answer within the client's patience
        Call("book", 201, 1, "b", NINE),
        Call("reschedule", 503, 30, "b", TEN),
        Call("book", 201, 1, "c", TEN),
        Call("cancel", 409, 1, "c"),
    ]
    assert uncertain(calls) == {"a", "b"}


def test_checked_in_and_no_show_are_what_booking_must_hold_after_them() -> None:
    calls = [
        Call("book", 201, 1, "a", NINE),
        Call("check-in", 200, 1, "a"),
        Call("book", 201, 1, "b", TEN),
        Call("no-show", 200, 2, "b"),
        Call("no-show", 409, 1, "a"),  # refused: changes nothing
    ]
    assert expectations(calls) == {
        "a": Expected("checked-in", NINE),
        "b": Expected("noshow", TEN),
    }


def test_each_accepted_step_owes_one_message_and_one_siu_message() -> None:
    calls = [
        Call("book", 201, 1, "a", NINE),
        Call("reschedule", 200, 3, "a", TEN),  # sent three times, decided once
        Call("reschedule", 409, 1, "a", NINE),
        Call("cancel", 200, 1, "a"),
        Call("book", 201, 1, "b", NINE, channel="fhir"),
        Call("check-in", 200, 1, "b"),
        Call("cancel", 200, 1, "z"),  # not created by a client: no step owed
    ]
    assert steps(calls, MESSAGE_OF) == {
        "a": Counter(confirmation=1, rescheduled=1, cancelled=1),
        "b": Counter(confirmation=1),
    }
    assert steps(calls, SIU_OF) == {"a": Counter(S12=1, S13=1, S15=1), "b": Counter(S12=1, S14=1)}


def test_an_siu_message_sent_twice_or_never_fails_the_run() -> None:
    wanted = {"a": Counter(S12=1, S15=1), "b": Counter(S12=1)}
    found = {"a": Counter(S12=2), "b": Counter(S12=1, S13=1)}
    missing, doubled = compare_counts(wanted, found)
    assert missing == [("a", "S15")]
    assert doubled == [("a", "S12"), ("b", "S13")]
    assert compare_counts(wanted, wanted) == ([], [])
    assert Findings(siu_doubled=doubled).failed


def test_a_patient_not_sent_the_latest_news_or_sent_a_step_twice_fails_the_run() -> None:
    calls = [
        Call("book", 201, 1, "a", NINE),
        Call("cancel", 200, 1, "a"),
        Call("book", 201, 1, "b", NINE),
        Call("reschedule", 200, 1, "b", TEN),
        Call("book", 201, 1, "c", NINE),
    ]
    # a's confirmation was superseded by its cancellation before it left: not a finding.
    fine = {
        "a": [("confirmation", "superseded"), ("cancelled", "sent")],
        "b": [("confirmation", "sent"), ("rescheduled", "skipped")],
        "c": [("confirmation", "sent")],
    }
    assert compare_messages(calls, fine) == ([], [])

    planted = {
        "a": [("confirmation", "superseded"), ("cancelled", "superseded")],  # never told
        "b": [("confirmation", "sent"), ("confirmation", "pending"), ("rescheduled", "sent")],
        "c": [],
    }
    missing, doubled = compare_messages(calls, planted)
    assert missing == [("a", "cancelled"), ("c", "confirmation")]
    assert doubled == [("b", "confirmation")]
    assert Findings(messages_missing=missing).failed
    assert Findings(messages_doubled=doubled).failed


def test_an_email_delivered_twice_or_a_projection_unlike_its_rebuild_fails_the_run() -> None:
    assert mail_doubled([("<m1@x>", 10.0), ("<m2@x>", 11.0), ("<m1@x>", 12.0)], []) == (
        ["<m1@x>"],
        0,
    )
    assert differences({"k": "1", "l": "2"}, {"k": "1", "l": "3", "m": "4"}) == ["l", "m"]
    assert Findings(mail_doubled=["<m1@x>"]).failed
    assert Findings(differs_from_rebuild=["calendar"]).failed
    assert not Findings(uncertain=["a"], resent=2).failed  # reported, not a failure


def test_an_email_received_again_after_notification_was_killed_mid_send_is_a_resend() -> None:
    sent = [("<m1@x>", 100.0), ("<m2@x>", 100.5), ("<m1@x>", 108.0), ("<m2@x>", 140.0)]
    # Killed 0.2 s after m1 and m2 were taken: both went out again once their lease lapsed.
    assert mail_doubled(sent, killed=[100.7]) == ([], 2)
    # A kill long after the first delivery, or after the second, explains nothing.
    assert mail_doubled(sent, killed=[100.0 + KILL_WINDOW + 1]) == (["<m1@x>", "<m2@x>"], 0)
    assert mail_doubled([("<m1@x>", 100.0), ("<m1@x>", 101.0)], killed=[102.0]) == (["<m1@x>"], 0)
    # One kill explains one resend of a message, not a third delivery after it.
    three = [("<m1@x>", 100.0), ("<m1@x>", 106.0), ("<m1@x>", 107.0)]
    assert mail_doubled(three, killed=[100.1]) == (["<m1@x>"], 1)
    assert not Findings(mail_resent=2).failed  # reported, not a failure


def test_a_hold_is_pending_until_confirmed_and_only_its_confirmation_owes_messages() -> None:
    calls = [
        Call("hold", 201, 1, "h", NINE),
        Call("confirm", 200, 1, "h", NINE),
        Call("hold", 201, 1, "p", TEN),  # its confirmation got no 2xx: still held
        Call("confirm", 409, 1, "p", TEN),
    ]
    assert expectations(calls) == {"h": Expected("booked", NINE), "p": Expected("pending", TEN)}
    assert steps(calls, MESSAGE_OF) == {"h": Counter(confirmation=1), "p": Counter()}
    assert steps(calls, SIU_OF) == {"h": Counter(S12=1), "p": Counter()}
    made = {"h": [("confirmation", "sent")], "p": []}
    assert compare_messages(calls, made) == ([], [])  # a hold alone is told nothing


def test_a_repeat_not_given_the_first_answer_fails_the_run() -> None:
    booked = Call("book", 201, 2, "a", NINE)
    assert not replay_differs(booked, 201, {"id": "a"}, "true")
    assert replay_differs(booked, 201, {"id": "b"}, "true")  # booked again
    assert replay_differs(booked, 201, {"id": "a"}, None)  # done again, same answer
    assert replay_differs(booked, 409, {"type": "slot-taken"}, None)
    refused = Call("reschedule", 409, 1, "a", TEN)
    assert not replay_differs(refused, 409, {"type": "slot-taken"}, "true")
    assert Findings(replays_differ=["book a: 201, 409"]).failed
