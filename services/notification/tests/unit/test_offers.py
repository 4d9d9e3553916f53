"""Which freed time suits which waiting patient, and who is asked first."""

import datetime as dt
import uuid

from clinic.notification.offers import FreedTime, Waiting, candidates, freed_id, suits

TYPE, BERLIN, HAMBURG, DOCTOR = (uuid.uuid4() for _ in range(4))
FREED = FreedTime(
    organization_id=uuid.uuid4(),
    location_id=BERLIN,
    appointment_type_id=TYPE,
    start=dt.datetime(2027, 3, 12, 14, tzinfo=dt.UTC),  # Friday 15:00 in Berlin
    end=dt.datetime(2027, 3, 12, 14, 30, tzinfo=dt.UTC),
    resources=(("physician", DOCTOR),),
    time_zone="Europe/Berlin",
)


def waiting(days: int = 1, **changes: object) -> Waiting:
    entry = Waiting(
        entry_id=uuid.uuid4(),
        patient_id=uuid.uuid4(),
        appointment_type_id=TYPE,
        location_ids=(BERLIN,),
        earliest=dt.date(2027, 3, 8),
        latest=dt.date(2027, 3, 19),
        times_of_day=(),
        provider_id=None,
        joined_at=dt.datetime(2027, 3, 1, tzinfo=dt.UTC) + dt.timedelta(days=days),
    )
    return Waiting(**{**entry.__dict__, **changes})  # type: ignore[arg-type]


def test_a_freed_time_suits_an_entry_for_its_type_place_provider_days_and_time_of_day() -> None:
    assert suits(waiting(), FREED)
    assert suits(waiting(provider_id=DOCTOR, times_of_day=("afternoon",)), FREED)
    assert not suits(waiting(appointment_type_id=uuid.uuid4()), FREED)
    assert not suits(waiting(location_ids=(HAMBURG,)), FREED)
    assert not suits(waiting(provider_id=uuid.uuid4()), FREED)
    assert not suits(waiting(times_of_day=("morning", "evening")), FREED)
    assert not suits(waiting(latest=dt.date(2027, 3, 11)), FREED)
    assert not suits(waiting(earliest=dt.date(2027, 3, 13)), FREED)
    assert suits(waiting(weekdays=(1, 5)), FREED)  # a Friday
    assert not suits(waiting(weekdays=(1, 2, 3, 4)), FREED)


def test_the_local_day_decides_not_the_utc_one() -> None:
    late = FreedTime(**{**FREED.__dict__, "start": dt.datetime(2027, 3, 12, 23, 30, tzinfo=dt.UTC)})
    assert not suits(waiting(latest=dt.date(2027, 3, 12)), late)  # 00:30 on the 13th locally
    assert suits(waiting(earliest=dt.date(2027, 3, 13), times_of_day=("morning",)), late)


def test_patients_are_asked_by_priority_then_by_who_waited_longest_once_each() -> None:
    early, late, urgent = waiting(days=1), waiting(days=5), waiting(days=9, priority=1)
    twice = waiting(days=2, patient_id=early.patient_id)
    unsuited = waiting(days=0, location_ids=(HAMBURG,))
    order = candidates([late, twice, unsuited, early, urgent], FREED)
    assert order == [urgent, early, late]


def test_those_already_asked_and_patients_with_a_live_offer_are_left_out() -> None:
    first, second, third = waiting(days=1), waiting(days=2), waiting(days=3)
    order = candidates([first, second, third], FREED, asked=[first.entry_id],
                       busy=[second.patient_id])  # fmt: skip
    assert order == [third]


def test_a_freed_time_has_one_id_however_often_it_is_seen() -> None:
    appointment = uuid.uuid4()
    assert freed_id(appointment, FREED.start) == freed_id(appointment, FREED.start)
    assert freed_id(appointment, FREED.start) != freed_id(appointment, FREED.end)
