"""Slot search rules on the in-memory index, built from booking's integration events."""

import dataclasses
import datetime as dt
import uuid

import pytest
from factory import Events, local

from clinic.availability.index import Index
from clinic.availability.projection import Tables
from clinic.availability.search import (
    NotPatientBookableError,
    Query,
    RetiredError,
    SearchError,
    find_slots,
    next_available,
)
from clinic.events import reference as ref
from clinic.events import schedules as sched

MONDAY = dt.date(2027, 3, 1)
NOW = local(MONDAY, 0) - dt.timedelta(days=2)
GP = [{"role": "physician", "category": "provider", "specialty": "gp"}]


def index_of(envelopes: list) -> Index:
    tables = Tables()
    tables.replay(envelopes)
    return Index.build(tables)


def starts(
    index: Index,
    ev: Events,
    kind: uuid.UUID,
    location: uuid.UUID,
    day: dt.date = MONDAY,
    **options: object,
) -> list[str]:
    query = Query(
        organization_id=ev.org,
        appointment_type_id=kind,
        location_ids=(location,),
        first_day=day,
        last_day=day,
        now=options.pop("now", NOW),
        **options,
    )  # type: ignore[arg-type]
    return [s.view()["local_start"][11:16] for s in find_slots(index, query)]


@pytest.fixture
def clinic() -> tuple[Events, uuid.UUID, uuid.UUID, uuid.UUID, list]:
    ev = Events()
    location, loc_event = ev.location()
    provider, res_event = ev.resource(location)
    kind, type_event = ev.appointment_type(GP)
    return (
        ev,
        location,
        provider,
        kind,
        [loc_event, res_event, type_event, ev.hours(provider, location)],
    )


def test_slots_follow_working_hours_in_local_time(clinic) -> None:
    ev, location, _, kind, events = clinic
    assert starts(index_of(events), ev, kind, location) == [
        "09:00",
        "09:15",
        "09:30",
        "09:45",
        "10:00",
        "10:15",
        "10:30",
        "10:45",
        "11:00",
        "11:15",
        "11:30",
    ]


def test_a_claim_and_its_buffer_remove_overlapping_starts(clinic) -> None:
    ev, location, provider, kind, events = clinic
    _, claim = ev.claim(provider, MONDAY, local(MONDAY, 10), 30, buffer_after=15)
    found = starts(index_of([*events, claim]), ev, kind, location)
    assert "09:30" in found
    assert "09:45" not in found
    assert "10:30" not in found
    assert "10:45" in found


def test_a_live_hold_blocks_and_an_expired_one_does_not(clinic) -> None:
    ev, location, provider, kind, events = clinic
    expires = NOW + dt.timedelta(minutes=10)
    _, hold = ev.claim(provider, MONDAY, local(MONDAY, 9), 30, hold_expires_at=expires)
    index = index_of([*events, hold])
    assert "09:00" not in starts(index, ev, kind, location)
    assert "09:00" in starts(index, ev, kind, location, now=expires + dt.timedelta(seconds=1))


def test_a_release_gives_the_time_back_and_a_confirmed_hold_keeps_it(clinic) -> None:
    ev, location, provider, kind, events = clinic
    expires = NOW + dt.timedelta(minutes=10)
    first, hold = ev.claim(provider, MONDAY, local(MONDAY, 9), 30, hold_expires_at=expires)
    confirmed = ev.confirm(provider, MONDAY, first)
    later = expires + dt.timedelta(hours=1)
    assert "09:00" not in starts(
        index_of([*events, hold, confirmed]), ev, kind, location, now=later
    )
    released = ev.release(provider, MONDAY, first)
    assert "09:00" in starts(index_of([*events, hold, confirmed, released]), ev, kind, location)


def test_every_required_resource_must_be_free_at_once(clinic) -> None:
    ev, location, _provider, _, events = clinic
    room, room_event = ev.resource(location, category="room", kind="exam-room", specialties=())
    kind, type_event = ev.appointment_type(
        [*GP, {"role": "room", "category": "room", "kind": "exam-room"}]
    )
    _, busy_room = ev.claim(room, MONDAY, local(MONDAY, 10), 60, role="room")
    index = index_of(
        [*events, room_event, type_event, ev.hours(room, location, "09:30", "12:00"), busy_room]
    )
    assert starts(index, ev, kind, location) == ["09:30", "11:00", "11:15", "11:30"]


def test_a_two_step_visit_needs_each_resource_for_its_own_step(clinic) -> None:
    ev, location, provider, _, events = clinic
    nurse, nurse_event = ev.resource(location, kind="nurse", specialties=("nursing",))
    kind, type_event = ev.appointment_type(
        [],
        steps=[
            {
                "name": "triage",
                "offset_minutes": 0,
                "duration_minutes": 15,
                "requirements": [{"role": "nurse", "category": "provider", "specialty": "nursing"}],
            },
            {"name": "consult", "offset_minutes": 15, "duration_minutes": 30, "requirements": GP},
        ],
    )
    # The physician is busy 09:15-09:45, so a 09:00 start (consult 09:15-09:45) is out.
    _, busy = ev.claim(provider, MONDAY, local(MONDAY, 9, 15), 30)
    index = index_of(
        [*events, nurse_event, type_event, ev.hours(nurse, location, "09:00", "11:00"), busy]
    )
    found = starts(index, ev, kind, location)
    assert found[:3] == ["09:30", "09:45", "10:00"]
    assert found[-1] == "10:45"  # triage must end by 11:00 (nurse), consult by 12:00


def test_a_group_session_offers_its_remaining_seats_and_disappears_when_full(clinic) -> None:
    ev, location, provider, _, events = clinic
    kind, type_event = ev.appointment_type(GP, minutes=60, seats=2)
    session = f"{kind}@2027-03-01T09:00:00+00:00"
    _, first = ev.claim(provider, MONDAY, local(MONDAY, 10), 60, session=session, capacity=2)
    index = index_of([*events, type_event, first])
    slots = find_slots(index, Query(ev.org, kind, (location,), MONDAY, MONDAY, NOW))
    joining = [s for s in slots if s.view()["local_start"].endswith("10:00:00+01:00")]
    assert [s.seats_left for s in joining] == [1]
    _, second = ev.claim(provider, MONDAY, local(MONDAY, 10), 60, session=session, capacity=2)
    full = find_slots(
        index_of([*events, type_event, first, second]),
        Query(ev.org, kind, (location,), MONDAY, MONDAY, NOW),
    )
    assert not [s for s in full if s.view()["local_start"].endswith("10:00:00+01:00")]


def test_leave_removes_time_and_extra_hours_add_it(clinic) -> None:
    ev, location, provider, kind, events = clinic
    leave = ev.exception(provider, "leave", local(MONDAY, 9), local(MONDAY, 11))
    extra = ev.exception(provider, "extra", local(MONDAY, 14), local(MONDAY, 15), location)
    assert starts(index_of([*events, leave, extra]), ev, kind, location) == [
        "11:00",
        "11:15",
        "11:30",
        "14:00",
        "14:15",
        "14:30",
    ]


def test_minimum_notice_and_times_of_day_filter_results(clinic) -> None:
    ev, location, provider, _, events = clinic
    kind, type_event = ev.appointment_type(GP, notice=60)
    index = index_of([*events, type_event, ev.hours(provider, location, "09:00", "18:00")])
    now = local(MONDAY, 10)
    found = starts(index, ev, kind, location, now=now)
    assert found[0] == "11:00"
    afternoon = starts(index, ev, kind, location, now=now, times_of_day=("afternoon",))
    assert (afternoon[0], afternoon[-1]) == ("12:00", "16:45")


def test_a_provider_filter_keeps_only_that_providers_slots(clinic) -> None:
    ev, location, _provider, kind, events = clinic
    other, other_event = ev.resource(location)
    index = index_of([*events, other_event, ev.hours(other, location, "13:00", "14:00")])
    slots = find_slots(
        index,
        Query(ev.org, kind, (location,), MONDAY, MONDAY, NOW, provider_ids=frozenset({other})),
    )
    assert {s.view()["resources"]["physician"] for s in slots} == {str(other)}


def test_on_the_spring_forward_day_no_slot_starts_in_the_missing_hour() -> None:
    ev = Events()
    location, loc_event = ev.location()
    provider, res_event = ev.resource(location)
    kind, type_event = ev.appointment_type(GP, minutes=30)
    sunday = dt.date(2027, 3, 28)  # 02:00 -> 03:00 in Berlin
    index = index_of(
        [loc_event, res_event, type_event, ev.hours(provider, location, "01:00", "04:00")]
    )
    # Two real hours of work: 01:45 CET + 30 minutes ends at 03:15 CEST; nothing at 02:xx.
    assert starts(index, ev, kind, location, day=sunday) == [
        "01:00",
        "01:15",
        "01:30",
        "01:45",
        "03:00",
        "03:15",
        "03:30",
    ]


def test_on_the_fall_back_day_the_repeated_hour_is_not_offered_twice() -> None:
    ev = Events()
    location, loc_event = ev.location()
    provider, res_event = ev.resource(location)
    kind, type_event = ev.appointment_type(GP, minutes=60)
    sunday = dt.date(2027, 10, 31)  # 03:00 -> 02:00 in Berlin
    index = index_of(
        [loc_event, res_event, type_event, ev.hours(provider, location, "01:00", "04:00")]
    )
    slots = find_slots(index, Query(ev.org, kind, (location,), sunday, sunday, NOW, limit=100))
    utc = [s.start for s in slots]
    assert len(utc) == len(set(utc))
    assert slots[-1].end - slots[0].start == dt.timedelta(hours=4)  # 4 real hours of work


def test_next_available_looks_across_locations(clinic) -> None:
    ev, location, _provider, kind, events = clinic
    far, far_event = ev.location("America/New_York")
    doc, doc_event = ev.resource(far, tz="America/New_York")
    index = index_of([*events, far_event, doc_event, ev.hours(doc, far, "09:00", "10:00")])
    found = next_available(
        index, Query(ev.org, kind, (location, far), MONDAY, MONDAY + dt.timedelta(days=30), NOW)
    )
    assert found[location] is not None
    assert found[far] is not None
    assert found[far].view()["local_start"].endswith("09:00:00-05:00")


def test_another_organisations_type_or_location_is_not_found(clinic) -> None:
    _ev, location, _, kind, events = clinic
    index = index_of(events)
    with pytest.raises(SearchError) as missing:
        find_slots(index, Query(uuid.uuid4(), kind, (location,), MONDAY, MONDAY, NOW))
    assert missing.value.status == 404


def test_time_blocked_at_one_location_leaves_the_provider_searchable_at_another() -> None:
    ev = Events()
    mitte, mitte_event = ev.location()
    altona, altona_event = ev.location()
    provider = uuid.uuid4()
    registered = ev.wrap(
        provider,
        ref.ResourceRegistered(
            resource_id=provider,
            category="provider",
            name="Dr. Two",
            kind="physician",
            specialties=("gp",),
            location_ids=(mitte, altona),
            time_zone="Europe/Berlin",
        ),
    )
    kind, type_event = ev.appointment_type(GP)
    hours = ev.wrap(
        ev.schedule_ids.setdefault(provider, uuid.uuid4()),
        sched.WeeklyHoursSet(
            resource_id=provider,
            hours=(
                sched.WeeklyHoursSpec(
                    location_id=mitte, weekday=0, start=dt.time(9), end=dt.time(12)
                ),
                sched.WeeklyHoursSpec(
                    location_id=altona, weekday=0, start=dt.time(13), end=dt.time(15)
                ),
            ),
        ),
    )
    closed = ev.exception(
        provider, "blocked", local(MONDAY, 0), local(MONDAY + dt.timedelta(days=1), 0), mitte
    )
    index = index_of([mitte_event, altona_event, registered, type_event, hours, closed])

    assert starts(index, ev, kind, mitte) == []
    assert starts(index, ev, kind, altona)[:2] == ["13:00", "13:15"]


def test_a_patient_search_never_offers_a_type_only_staff_may_book(clinic) -> None:
    ev, location, _, _, events = clinic
    staff_only, defined = ev.appointment_type(GP)
    defined = ev.wrap(
        staff_only,
        defined.payload_as(ref.AppointmentTypeDefined).model_copy(
            update={"patient_bookable": False}
        ),
    )
    index = index_of([*events, defined])
    query = Query(ev.org, staff_only, (location,), MONDAY, MONDAY, NOW)
    assert find_slots(index, query)  # staff see its time
    with pytest.raises(NotPatientBookableError):
        find_slots(index, dataclasses.replace(query, for_patient=True))
    with pytest.raises(NotPatientBookableError):
        next_available(index, dataclasses.replace(query, for_patient=True))


def test_retired_types_and_locations_are_refused_and_a_retired_provider_leaves_the_pool(
    clinic,
) -> None:
    ev, location, provider, kind, events = clinic
    second, registered = ev.resource(location)
    both = [*events, registered, ev.hours(second, location)]
    assert starts(index_of(both), ev, kind, location)  # two doctors
    _, claim = ev.claim(provider, MONDAY, local(MONDAY, 9), 180)
    busy = [*both, claim]
    assert starts(index_of(busy), ev, kind, location)[0] == "09:00"  # the second is free

    gone = ev.wrap(second, ref.ResourceRetired(resource_id=second, reason="left"))
    assert starts(index_of([*busy, gone]), ev, kind, location) == []

    renamed = ev.wrap(
        provider,
        ref.ResourceUpdated(
            **registered.payload_as(ref.ResourceRegistered).model_dump()
            | {"resource_id": provider, "name": "Dr. Renamed"}
        ),
    )
    index = index_of([*events, renamed])
    assert index.resources[provider].name == "Dr. Renamed"
    assert starts(index, ev, kind, location)[0] == "09:00"

    query = Query(ev.org, kind, (location,), MONDAY, MONDAY, NOW)
    retired_type = ev.wrap(kind, ref.AppointmentTypeRetired(appointment_type_id=kind))
    with pytest.raises(RetiredError):
        find_slots(index_of([*events, retired_type]), query)
    closed = ev.wrap(location, ref.LocationRetired(location_id=location))
    with pytest.raises(RetiredError):
        find_slots(index_of([*events, closed]), query)


def test_a_rotation_offers_each_weekday_at_its_location_from_its_effective_date() -> None:
    ev = Events()
    mitte, mitte_event = ev.location()
    nord, nord_event = ev.location()
    doctor, registered = ev.resource(mitte)
    at_both = ev.wrap(
        doctor,
        ref.ResourceUpdated(
            **registered.payload_as(ref.ResourceRegistered).model_dump()
            | {"location_ids": (mitte, nord)}
        ),
    )
    kind, type_event = ev.appointment_type(GP)
    switch = MONDAY + dt.timedelta(days=7)

    def monday_at(location: uuid.UUID, **dates: dt.date) -> sched.WeeklyHoursSpec:
        return sched.WeeklyHoursSpec(
            location_id=location, weekday=0, start=dt.time(9), end=dt.time(10), **dates
        )

    hours = ev.wrap(
        uuid.uuid4(),
        sched.WeeklyHoursSet(
            resource_id=doctor,
            hours=(
                monday_at(mitte, effective_until=switch - dt.timedelta(days=1)),
                monday_at(nord, effective_from=switch),
            ),
        ),
    )
    index = index_of([mitte_event, nord_event, registered, at_both, type_event, hours])
    assert starts(index, ev, kind, mitte)[0] == "09:00"
    assert starts(index, ev, kind, nord) == []
    assert starts(index, ev, kind, mitte, switch) == []
    assert starts(index, ev, kind, nord, switch)[0] == "09:00"
