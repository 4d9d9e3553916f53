"""Replaying every event from scratch gives the same projection as the incremental build,
whatever the order across aggregates and however often events are redelivered."""

from hypothesis import given, settings
from hypothesis import strategies as st
from notification_history import History

from clinic.devstack.testing import interleave
from clinic.notification.projection import Tables


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    steps=st.integers(0, 60),
    order=st.integers(0, 2**32),
    redelivered=st.lists(st.integers(0, 500), max_size=10),
)
def test_replay_from_scratch_equals_the_incremental_build(
    seed: int, steps: int, order: int, redelivered: list[int]
) -> None:
    events = History(seed).play(steps)
    delivered = list(events)
    for position in redelivered:  # at-least-once: an event arrives again, some time later
        original = events[position % len(events)]
        again = delivered.index(original) + 1 + position % 7
        delivered.insert(min(again, len(delivered)), original)

    incremental = Tables()
    incremental.replay(delivered)
    replayed = Tables()
    replayed.replay(interleave(events, order))

    assert replayed.rows == incremental.rows
    assert len(incremental.rows["locations"]) == 1
    assert len(incremental.rows["appointment_types"]) == 1


def test_the_tables_hold_what_messages_need_as_the_latest_events_left_it() -> None:
    history = History(7)
    events = history.play(80)
    tables = Tables()
    tables.replay(events)

    for pid, record in history.records.items():
        row = tables.rows["patients"][(pid,)]
        assert row["given_name"] == record.given_name.replace("\x00", "\ufffd")
        assert (row["language"], row["preferred_channel"]) == (
            record.language,
            record.preferred_channel,
        )
        assert row["consent_sms"] == record.consent.sms
        assert row["merged_into"] == record.merged_into
    for aid, (_, status) in history.appointments.items():
        row = tables.rows["appointments"][(aid,)]
        assert row["status"] == status
        assert (row["cancelled_at"] is not None) == (status == "cancelled")
        assert (row["booked_at"] is None) == (
            status == "pending" or row["cancelled_by"] == "system"
        )
    [kind] = tables.rows["appointment_types"].values()
    assert [r["before_minutes"] for r in kind["reminder_plan"]] == [4320, 1440]
    assert kind["patient_facing"]["de"]["preparation"] == "Karte mitbringen."
    [place] = tables.rows["locations"].values()
    assert (place["time_zone"], place["address"]["city"]) == ("Europe/Berlin", "Berlin")
