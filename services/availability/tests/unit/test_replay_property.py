"""Replaying every event from scratch gives the same projection as the incremental build,
whatever the order across aggregates and however often events are redelivered."""

import datetime as dt
import uuid

from factory import Events, local
from hypothesis import given, settings
from hypothesis import strategies as st

from clinic.availability.index import Index
from clinic.availability.projection import Tables
from clinic.availability.search import Query, find_slots
from clinic.devstack.testing import interleave
from clinic.events import Envelope

MONDAY = dt.date(2027, 3, 1)
GP = [{"role": "physician", "category": "provider", "specialty": "gp"}]


def history(
    actions: list[tuple[int, int, int, int]],
) -> tuple[Events, uuid.UUID, uuid.UUID, list[Envelope]]:
    ev = Events()
    location, loc = ev.location()
    kind, type_event = ev.appointment_type(GP)
    events = [loc, type_event]
    providers = []
    for _ in range(3):
        provider, registered = ev.resource(location)
        providers.append(provider)
        events += [registered, ev.hours(provider, location, "08:00", "12:00")]
    live: list[tuple[uuid.UUID, dt.date, uuid.UUID]] = []
    made: dict[uuid.UUID, Envelope] = {}  # each appointment's Held or Booked
    for what, who, day, slot in actions:
        provider = providers[who % 3]
        date = MONDAY + dt.timedelta(days=day % 2)
        start = local(date, 8) + dt.timedelta(minutes=15 * slot)
        if what == 0 or not live:
            held = None if slot % 2 else local(date, 7)
            aid, claimed = ev.claim(provider, date, start, 30, hold_expires_at=held)
            live.append((provider, date, aid))
            made[aid] = ev.booked(aid, location, kind, provider, start, 30, held)
            events += [claimed, made[aid]]
        elif what == 1:
            p, d, aid = live.pop(slot % len(live))
            events += [ev.release(p, d, aid), ev.cancelled(aid)]
        elif what == 2:
            p, d, aid = live[slot % len(live)]
            events.append(ev.confirm(p, d, aid))
            if made[aid].type == "Appointment.Held":
                events.append(ev.confirmed(made[aid]))
        elif what == 3:
            events.append(ev.hours(provider, location, f"{8 + slot % 3:02d}:00", "12:00"))
        elif what == 4:
            _, _, aid = live[slot % len(live)]
            events.append(ev.status(aid, ["arrived", "fulfilled", "noshow"][who], "booked"))
        elif what == 5:
            _, _, aid = live[slot % len(live)]
            events.append(ev.rescheduled(made[aid], provider, start, 45))
        else:
            _, _, aid = live[slot % len(live)]
            events.append(ev.attendance_confirmed(aid, ["patient", "clinic", "system"][who]))
    return ev, kind, location, events


def made_any(events: list[Envelope]) -> bool:
    return any(e.type in ("Appointment.Held", "Appointment.Booked") for e in events)


actions = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 2), st.integers(0, 1), st.integers(0, 12)),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(actions, st.integers(0, 2**32), st.lists(st.integers(0, 200), max_size=10))
def test_replay_from_scratch_equals_the_incremental_build(
    steps: list[tuple[int, int, int, int]], seed: int, redelivered: list[int]
) -> None:
    ev, kind, location, events = history(steps)

    incremental = Tables()
    delivered = list(events)
    for position in redelivered:  # at-least-once: an event arrives again, some time later
        if events:
            original = position % len(events)
            again = delivered.index(events[original]) + 1 + position % 7
            delivered.insert(min(again, len(delivered)), events[original])
    incremental.replay(delivered)

    replayed = Tables()
    replayed.replay(interleave(events, seed))

    assert replayed.rows == incremental.rows  # the free-time and the calendar tables
    if made_any(events):
        assert incremental.rows["appointments"]
        assert incremental.rows["appointment_events"]
    query = Query(
        ev.org,
        kind,
        (location,),
        MONDAY,
        MONDAY + dt.timedelta(days=1),
        local(MONDAY, 0) - dt.timedelta(days=1),
    )
    assert [s.view() for s in find_slots(Index.build(replayed), query)] == [
        s.view() for s in find_slots(Index.build(incremental), query)
    ]
