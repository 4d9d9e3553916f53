"""A calendar's free time: working windows minus claimed time, in one pass, the same as the
search's interval arithmetic keeps (less the empty pieces a calendar does not show)."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from clinic.availability.calendar import free_time
from clinic.availability.index import remove_open, union

START = dt.datetime(2027, 3, 1, 7, tzinfo=dt.UTC)
minutes = st.integers(min_value=0, max_value=12 * 60)


def spans(draw_pairs: list[tuple[int, int]]) -> list[tuple[dt.datetime, dt.datetime]]:
    return [
        (START + dt.timedelta(minutes=min(a, b)), START + dt.timedelta(minutes=max(a, b)))
        for a, b in draw_pairs
    ]


@given(
    windows=st.lists(st.tuples(minutes, minutes), max_size=4),
    claimed=st.lists(st.tuples(minutes, minutes), max_size=30),
)
def test_free_time_is_the_windows_minus_the_claims_without_empty_pieces(
    windows: list[tuple[int, int]], claimed: list[tuple[int, int]]
) -> None:
    working = union(spans(windows))
    taken = spans(claimed)

    expected = [(lo, hi) for lo, hi in remove_open(working, taken) if hi > lo]

    assert free_time(working, taken) == expected


def test_a_day_cut_by_back_to_back_visits_leaves_the_gaps_between_them() -> None:
    day = [(START, START + dt.timedelta(hours=2))]
    visits = [
        (START + dt.timedelta(minutes=30 * n), START + dt.timedelta(minutes=30 * n + 25))
        for n in range(4)
    ]

    free = free_time(day, visits)

    assert [(lo.minute, hi.minute) for lo, hi in free] == [(25, 30), (55, 0), (25, 30), (55, 0)]
