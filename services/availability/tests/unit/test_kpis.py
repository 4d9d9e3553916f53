"""Every KPI, computed through the projection (events -> calendar rows -> facts), equals a
brute-force computation straight from the same events, for any history."""

import datetime as dt
import statistics
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from factory import BERLIN, Events, local
from hypothesis import given, settings
from hypothesis import strategies as st

from clinic.availability.kpi_reference import compute, facts_from_rows
from clinic.availability.kpis import KpiQuery, percentile
from clinic.availability.projection import Tables
from clinic.events import Envelope

MONDAY = dt.date(2027, 3, 1)
GP = [{"role": "physician", "category": "provider", "specialty": "gp"}]

# (what, provider, day, slot, hours before the start it happens)
steps = st.lists(
    st.tuples(
        st.integers(0, 7),
        st.integers(0, 1),
        st.integers(0, 3),
        st.integers(0, 15),
        st.integers(1, 72),
    ),
    max_size=30,
)


def history(
    actions: list[tuple[int, int, int, int, int]],
) -> tuple[Events, uuid.UUID, list[Envelope]]:
    ev = Events()
    location, loc = ev.location()
    kind, defined = ev.appointment_type(GP)
    doctors = []
    events = [loc, defined]
    for _ in range(2):
        doctor, registered = ev.resource(location)
        doctors.append(doctor)
        events.append(registered)
    made: list[Envelope] = []
    status: dict[uuid.UUID, str] = {}
    confirmed: set[uuid.UUID] = set()
    for what, who, day, slot, before in actions:
        date = MONDAY + dt.timedelta(days=day)
        start = local(date, 8) + dt.timedelta(minutes=30 * slot)
        ev.now = start - dt.timedelta(hours=before)
        if what in (0, 1) or not made:
            aid = uuid.uuid4()
            held = start - dt.timedelta(hours=before - 0.5) if what == 1 else None
            made.append(ev.booked(aid, location, kind, doctors[who], start, 30, held))
            status[aid] = "pending" if what == 1 else "booked"
            events.append(made[-1])
            continue
        first = made[slot % len(made)]
        aid = first.aggregate_id
        if what == 2 and status[aid] == "pending":
            events.append(ev.confirmed(first))
            status[aid] = "booked"
        elif what == 3 and status[aid] in ("pending", "booked"):
            events.append(ev.cancelled(aid, "patient"))
            status[aid] = "cancelled"
        elif what == 4 and status[aid] == "booked":
            outcome = ["noshow", "fulfilled"][who]
            events.append(ev.status(aid, outcome, "booked"))
            status[aid] = outcome
        elif what == 5 and status[aid] == "booked":
            events.append(ev.rescheduled(first, doctors[who], start, 30))
        elif what == 6 and status[aid] == "pending":
            events.append(ev.expired(first))
            status[aid] = "cancelled"
        elif what == 7 and status[aid] == "booked" and aid not in confirmed:
            events.append(ev.attendance_confirmed(aid, ["patient", "clinic"][who]))
            confirmed.add(aid)
    return ev, location, events


def brute_force(events: list[Envelope], first: dt.date, last: dt.date) -> dict[str, Any]:
    """Straight from the events, appointment by appointment."""
    tz = ZoneInfo(BERLIN)
    lives: dict[uuid.UUID, list[Envelope]] = {}
    for e in events:
        if e.type.startswith("Appointment."):
            lives.setdefault(e.aggregate_id, []).append(e)
    booked = noshow = attended = cancelled = late = moved = 0
    lead: list[float] = []
    minutes = 0.0
    placed = confirmed = lapsed = released = 0
    sure = sure_noshow = 0  # outcome known, attendance confirmed
    for life in lives.values():
        life.sort(key=lambda e: e.aggregate_version)
        timed = [e for e in life if "start" in e.payload]
        start = dt.datetime.fromisoformat(timed[-1].payload["start"])
        end = dt.datetime.fromisoformat(timed[-1].payload["end"])
        types = [e.type for e in life]
        booking = next((e for e in life if e.type == "Appointment.Booked"), None)
        final = "pending"
        for e in life:
            final = {
                "Appointment.Held": "pending",
                "Appointment.Booked": "booked",
                "Appointment.Cancelled": "cancelled",
                "Appointment.HoldExpired": "cancelled",
            }.get(e.type, e.payload.get("status", final))
        if (
            types[0] == "Appointment.Held"
            and first <= life[0].occurred_at.astimezone(tz).date() <= last
        ):
            placed += 1
            if booking is not None:
                confirmed += 1
            elif "Appointment.HoldExpired" in types:
                lapsed += 1
            elif final == "cancelled":
                released += 1
        if booking is None or not first <= start.astimezone(tz).date() <= last:
            continue
        booked += 1
        noshow += final == "noshow"
        attended += final == "fulfilled"
        if final in ("noshow", "fulfilled") and "Appointment.AttendanceConfirmed" in types:
            sure += 1
            sure_noshow += final == "noshow"
        after = life[life.index(booking) + 1 :]
        moved += any(e.type == "Appointment.Rescheduled" for e in after)
        lead.append((start - booking.occurred_at).total_seconds() / 60)
        if final in ("booked", "noshow", "fulfilled"):
            minutes += (end - start).total_seconds() / 60
        if final == "cancelled":
            cancelled += 1
            at = next(e for e in life if e.type == "Appointment.Cancelled").occurred_at
            late += start - at < dt.timedelta(hours=24)
    return {
        "booked": booked,
        "no_show_rate": round(noshow / (noshow + attended), 6) if noshow + attended else None,
        "confirmed_appointments": sure,
        "unconfirmed_appointments": noshow + attended - sure,
        "no_show_rate_confirmed": round(sure_noshow / sure, 6) if sure else None,
        "no_show_rate_unconfirmed": (
            round((noshow - sure_noshow) / (noshow + attended - sure), 6)
            if noshow + attended - sure
            else None
        ),
        "cancellation_rate": round(cancelled / booked, 6) if booked else None,
        "late_cancellation_rate": round(late / booked, 6) if booked else None,
        "reschedule_rate": round(moved / booked, 6) if booked else None,
        "lead_median": percentile(lead, 0.5),
        "booked_minutes": round(minutes, 3),
        "funnel": (placed, confirmed, lapsed, released),
    }


@settings(max_examples=120, deadline=None)
@given(steps)
def test_every_kpi_equals_a_brute_force_count_over_the_same_events(
    actions: list[tuple[int, int, int, int, int]],
) -> None:
    ev, location, events = history(actions)
    tables = Tables()
    tables.replay(events)
    rows = tables.rows
    facts = facts_from_rows(
        rows["appointments"].values(),
        rows["appointment_resources"].values(),
        rows["appointment_events"].values(),
        {location: ZoneInfo(BERLIN)},
    )
    last = MONDAY + dt.timedelta(days=6)
    query = KpiQuery(ev.org, MONDAY - dt.timedelta(days=7), last, period="month")
    buckets = compute(facts, query, {})
    expected = brute_force(events, query.first, query.last)
    got: dict[str, Any] = {
        "booked": sum(b["appointments_booked"] for b in buckets),
        "funnel": tuple(
            sum(b["funnel"][k] for b in buckets)
            for k in ("holds_placed", "holds_confirmed", "holds_lapsed", "holds_released")
        ),
        "booked_minutes": round(sum(b["booked_minutes"] for b in buckets), 3),
        "confirmed_appointments": sum(b["confirmed_appointments"] for b in buckets),
        "unconfirmed_appointments": sum(b["unconfirmed_appointments"] for b in buckets),
    }
    # One month holds the week: its rates are the whole history's.
    month = [b for b in buckets if b["appointments_booked"]]
    assert len(month) <= 1
    if month:
        b = month[0]
        got |= {
            "no_show_rate": b["no_show_rate"],
            "no_show_rate_confirmed": b["no_show_rate_confirmed"],
            "no_show_rate_unconfirmed": b["no_show_rate_unconfirmed"],
            "cancellation_rate": b["cancellation_rate"],
            "late_cancellation_rate": b["late_cancellation_rate"],
            "reschedule_rate": b["reschedule_rate"],
            "lead_median": b["lead_time_minutes"]["median"],
        }
    else:
        got |= {
            k: None
            for k in (
                "no_show_rate",
                "no_show_rate_confirmed",
                "no_show_rate_unconfirmed",
                "cancellation_rate",
                "late_cancellation_rate",
                "reschedule_rate",
                "lead_median",
            )
        }
    assert got == expected


def test_fill_rate_counts_freed_minutes_a_later_booking_took_again() -> None:
    ev = Events()
    location, _ = ev.location()
    kind, _ = ev.appointment_type(GP)
    doctor, _ = ev.resource(location)
    start = local(MONDAY, 9)
    ev.now = start - dt.timedelta(days=3)
    cancelled_id, refill_id = uuid.uuid4(), uuid.uuid4()
    events = [ev.booked(cancelled_id, location, kind, doctor, start, 60)]
    ev.now = start - dt.timedelta(days=2)
    events.append(ev.cancelled(cancelled_id))
    ev.now = start - dt.timedelta(days=1)
    events.append(ev.booked(refill_id, location, kind, doctor, start, 15))  # 15 of 60 taken
    tables = Tables()
    tables.replay(events)
    facts = facts_from_rows(
        tables.rows["appointments"].values(),
        tables.rows["appointment_resources"].values(),
        tables.rows["appointment_events"].values(),
        {location: ZoneInfo(BERLIN)},
    )
    working = {(MONDAY, doctor, location): 480.0}
    [day] = compute(facts, KpiQuery(ev.org, MONDAY, MONDAY), working)
    assert day["fill_rate"] == 0.25
    assert day["utilisation"] == round(15 / 480, 6)
    assert day["cancellation_rate"] == 0.5
    assert day["late_cancellation_rate"] == 0.0
    assert day["lead_time_minutes"]["median"] == statistics.median_low([3 * 1440, 1440])
    by_provider = compute(facts, KpiQuery(ev.org, MONDAY, MONDAY, group_by="provider"), working)
    assert [b["group"] for b in by_provider] == [str(doctor)]


def test_no_show_rates_of_confirmed_and_unconfirmed_appointments_are_counted_apart() -> None:
    ev = Events()
    location, _ = ev.location()
    kind, _ = ev.appointment_type(GP)
    doctor, _ = ev.resource(location)
    events: list[Envelope] = []
    # (confirmed by whom, what became of it): four confirmed with an outcome (one no-show),
    # two unconfirmed (one no-show); a confirmed one still booked and a confirmed one
    # cancelled have no outcome and count in neither.
    lives = [
        ("patient", "fulfilled"),
        ("patient", "arrived"),
        ("clinic", "checked-in"),
        ("patient", "noshow"),
        (None, "fulfilled"),
        (None, "noshow"),
        ("patient", None),
        ("patient", "cancelled"),
    ]
    for n, (by, outcome) in enumerate(lives):
        aid = uuid.uuid4()
        start = local(MONDAY, 8) + dt.timedelta(minutes=30 * n)
        ev.now = start - dt.timedelta(days=2)
        events.append(ev.booked(aid, location, kind, doctor, start, 30))
        if by is not None:
            ev.now = start - dt.timedelta(days=1)
            events.append(ev.attendance_confirmed(aid, by))
        ev.now = start
        if outcome == "cancelled":
            events.append(ev.cancelled(aid, "patient"))
        elif outcome is not None:
            events.append(ev.status(aid, outcome, "booked"))
    tables = Tables()
    tables.replay(events)
    facts = facts_from_rows(
        tables.rows["appointments"].values(),
        tables.rows["appointment_resources"].values(),
        tables.rows["appointment_events"].values(),
        {location: ZoneInfo(BERLIN)},
    )

    [day] = compute(facts, KpiQuery(ev.org, MONDAY, MONDAY), {})

    assert day["appointments_booked"] == 8
    assert day["no_show_rate"] == round(2 / 6, 6)
    assert (day["confirmed_appointments"], day["unconfirmed_appointments"]) == (4, 2)
    assert day["no_show_rate_confirmed"] == 0.25
    assert day["no_show_rate_unconfirmed"] == 0.5
    confirmed = [r["attendance_confirmed_at"] for r in tables.rows["appointments"].values()]
    assert sum(at is not None for at in confirmed) == 6
