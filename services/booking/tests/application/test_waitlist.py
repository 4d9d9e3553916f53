"""The waitlist: a patient waits for earlier time, ranked by the clinic and on the weekdays
they can come. Run on the in-memory store and PostgreSQL."""

import datetime as dt
import uuid
from typing import Any

import pytest
from scenario import MONDAY, PATIENT, Clinic

from clinic.booking.commands import JoinWaitlist
from clinic.booking.domain import errors
from clinic.booking.domain.waitlist import WaitlistEntry


def waiting(clinic: Clinic, **fields: Any) -> dict[str, Any]:
    """Join the waitlist for a consultation at the clinic's location in the next month."""
    return clinic.do(JoinWaitlist, **wish(clinic, **fields)).body


def wish(clinic: Clinic, **fields: Any) -> dict[str, Any]:
    return {
        "patient_id": clinic.patients[0],
        "appointment_type_id": clinic.types["consult"],
        "location_ids": (clinic.location,),
        "earliest": MONDAY,
        "latest": MONDAY + dt.timedelta(days=28),
        **fields,
    }


def test_the_clinic_ranks_a_waiting_patient_and_names_the_days_they_can_come(
    clinic: Clinic,
) -> None:
    entry = waiting(clinic, priority=2, weekdays=(5, 1), times_of_day=("morning",))

    assert (entry["priority"], entry["weekdays"]) == (2, [1, 5])
    shown = clinic.app.queries.get_waitlist_entry(clinic.org, uuid.UUID(entry["id"]))
    assert shown == entry
    assert (shown["status"], shown["times_of_day"]) == ("waitlist", ["morning"])


def test_an_entry_nobody_ranked_waits_at_priority_five_on_any_day(clinic: Clinic) -> None:
    entry = waiting(clinic, request_id="join-1")

    assert (entry["priority"], entry["weekdays"]) == (5, [])
    # The same request sent again with the defaults spelled out gets its first answer.
    again = clinic.do(JoinWaitlist, **wish(clinic, request_id="join-1", priority=5, weekdays=()))
    assert (again.body, again.replayed) == (entry, True)


def test_a_patient_joining_themselves_names_their_days_but_may_not_rank_themselves(
    clinic: Clinic,
) -> None:
    written = clinic.app.recorder.max_notification_id()
    with pytest.raises(errors.StaffOnlyError, match="waitlist") as refused:
        waiting(clinic, priority=1, context=PATIENT)
    assert refused.value.status == 403
    assert clinic.app.recorder.max_notification_id() == written

    own = waiting(clinic, priority=5, weekdays=(6, 7), context=PATIENT)
    assert (own["priority"], own["weekdays"]) == (5, [6, 7])


@pytest.mark.parametrize(
    "fields",
    [
        {"priority": 0},
        {"priority": 10},
        {"weekdays": (0,)},
        {"weekdays": (8,)},
        {"weekdays": (1, 3, 1)},
    ],
    ids=["priority 0", "priority 10", "weekday 0", "weekday 8", "a weekday twice"],
)
def test_a_priority_or_weekday_out_of_range_is_refused_and_nothing_is_written(
    clinic: Clinic, fields: dict[str, Any]
) -> None:
    written = clinic.app.recorder.max_notification_id()
    with pytest.raises(errors.InvalidRequestError) as refused:
        waiting(clinic, **fields)
    assert refused.value.status == 422
    assert clinic.app.recorder.max_notification_id() == written


def test_an_entry_joined_before_priorities_and_weekdays_loads_unranked_for_any_day(
    clinic: Clinic,
) -> None:
    app = clinic.app
    entry = WaitlistEntry(
        organization_id=clinic.org,
        patient_id=clinic.patients[0],
        appointment_type_id=clinic.types["consult"],
        location_ids=(clinic.location,),
        earliest=MONDAY,
        latest=MONDAY + dt.timedelta(days=7),
        times_of_day=(),
        provider_id=None,
        note="",
        joined_at=clinic.clock.now,
    )
    [joined] = entry.collect_events()
    # 1. Record the event as the release before these fields stored it: without them.
    recorded = vars(joined)
    del recorded["priority"], recorded["weekdays"]
    app.recorder.insert_events([app.mapper.to_stored_event(joined)])

    # 2. It loads, unranked and for any day.
    shown = app.queries.get_waitlist_entry(clinic.org, entry.id)
    assert (shown["status"], shown["priority"], shown["weekdays"]) == ("waitlist", 5, [])
