"""For any sequence of commands, no two live claims on one ResourceDay overlap beyond an
explicit seat count or overbooking allowance."""

import datetime as dt
import uuid
from itertools import combinations

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from scenario import MONDAY, Clock, at, build_clinic

from clinic.booking.application import Bookings
from clinic.booking.commands import (
    CancelAppointment,
    ConfirmAppointment,
    Reschedule,
    SetOverbookingAllowance,
)
from clinic.booking.domain.errors import BookingError
from clinic.booking.domain.resource_day import ResourceDay, resource_day_id
from clinic.booking.domain.values import Claim

TYPES = ["consult", "named", "scan", "two-step", "group"]
start_times = st.builds(
    lambda day, quarter: (
        at(MONDAY + dt.timedelta(days=day), 8) + dt.timedelta(minutes=15 * quarter)
    ),
    st.integers(0, 1),
    st.integers(0, 12),
)
commands = st.one_of(
    st.tuples(st.just("book"), st.sampled_from(TYPES), start_times, st.booleans()),
    st.tuples(st.just("hold"), st.sampled_from(TYPES), start_times, st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("confirm"), st.integers(0, 30)),
    st.tuples(st.just("reschedule"), st.integers(0, 30), start_times),
    st.tuples(st.just("wait"), st.integers(1, 15)),
)


def at_once(claim: Claim, others: list[Claim]) -> int:
    """The most of ``others`` that hold any single instant of ``claim``'s time."""
    instants = [claim.blocked_from] + [
        c.blocked_from for c in others if claim.blocked_from <= c.blocked_from < claim.blocked_until
    ]
    return max(sum(1 for c in others if c.blocked_from <= t < c.blocked_until) for t in instants)


def check_invariant(app: Bookings, resources: list[uuid.UUID], now: dt.datetime) -> None:
    for resource_id in resources:
        allowance = app.repository.get(resource_id).overbooking_allowance
        for offset in range(3):
            day = app.queries.reader.maybe(
                resource_day_id(resource_id, MONDAY + dt.timedelta(days=offset))
            )
            if not isinstance(day, ResourceDay):
                continue
            live = day.live_claims(now)
            for claim in live:
                overlapping = [
                    c
                    for c in live
                    if c is not claim
                    and c.appointment_id != claim.appointment_id
                    and c.blocked.overlaps(claim.blocked)
                ]
                same_session = [
                    c for c in overlapping if claim.session and c.session == claim.session
                ]
                others = [c for c in overlapping if c not in same_session]
                assert len(same_session) + 1 <= claim.capacity
                # The allowance bounds how many other appointments hold the provider at the
                # same instant (a chain of short overbookings may each overlap a long claim).
                assert at_once(claim, others) <= allowance
                if others:
                    assert claim.overbooked or any(c.overbooked for c in others)
            for a, b in combinations(live, 2):
                if a.appointment_id == b.appointment_id:
                    assert not a.blocked.overlaps(b.blocked) or a.role != b.role


CHAIN = [  # found by CI: two short overbookings each overlapping one long booking
    ("book", "consult", dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC), False),
    ("book", "consult", dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC), False),
    ("reschedule", 0, dt.datetime(2026, 3, 3, 9, 45, tzinfo=dt.UTC)),
    *[("book", "consult", dt.datetime(2026, 3, 2, 7, 0, tzinfo=dt.UTC), False)] * 10,
    ("book", "named", dt.datetime(2026, 3, 3, 9, 30, tzinfo=dt.UTC), True),
    ("book", "named", dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC), True),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(ops=CHAIN, allowance=1)
@given(st.lists(commands, min_size=1, max_size=25), st.integers(0, 1))
def test_no_sequence_of_commands_double_books_a_resource(ops: list[tuple], allowance: int) -> None:
    clock = Clock(at(MONDAY, 7) - dt.timedelta(days=1))
    app = Bookings(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock)
    clinic = build_clinic(app, clock)
    if allowance:
        clinic.do(SetOverbookingAllowance, resource_id=clinic.providers[0], allowance=allowance)
    resources = [*clinic.providers, *clinic.rooms, *clinic.devices]
    made: list[uuid.UUID] = []
    for op in ops:
        try:
            if op[0] in ("book", "hold"):
                _, type_name, start, overbook = op
                call = clinic.book if op[0] == "book" else clinic.hold
                made.append(uuid.UUID(call(type_name, start, allow_overbooking=overbook)["id"]))
            elif op[0] == "wait":
                clock.advance(minutes=op[1])
            elif made:
                target = made[op[1] % len(made)]
                if op[0] == "cancel":
                    clinic.do(CancelAppointment, appointment_id=target, reason="x")
                elif op[0] == "confirm":
                    clinic.do(ConfirmAppointment, appointment_id=target)
                else:
                    clinic.do(
                        Reschedule,
                        appointment_id=target,
                        start=op[2],
                        preferred={},
                        allow_overbooking=False,
                    )
        except BookingError as refused:
            event(f"refused: {refused.slug}")
        else:
            event(f"accepted: {op[0]}")
        check_invariant(app, resources, clock())
