"""`make chaos`, short and seeded, inside `make test`: the platform as `make up` starts it
(two booking replicas) takes a racing load through the gateway and the FHIR API while
services are killed with SIGKILL and started again, and nothing accepted is lost, changed
behind the client's back, double-booked, missing or doubled in a projection, or messaged
twice. Then faults are planted in the running platform's projections, and the same checks
find them. (The broker and PostgreSQL are shared with the other tests here; `make chaos`
kills them too, on a platform of its own.)"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from clinic.devstack import chaos_checks as checks
from clinic.devstack.chaos import (
    BOOKING_REPLICAS,
    QUICK_RECOVERY,
    SERVICE_FAULTS,
    Verdict,
    chaos,
)
from clinic.devstack.components import Infrastructure
from clinic.devstack.stack import Stack
from clinic.devstack.testing import stack_env


@pytest.fixture(scope="module")
def verdict(
    tmp_path_factory: pytest.TempPathFactory, infrastructure: Infrastructure
) -> Iterator[Verdict]:
    state = tmp_path_factory.mktemp("chaos")
    env = stack_env(infrastructure, **QUICK_RECOVERY)
    stack = Stack(state, env, booking_replicas=BOOKING_REPLICAS)
    try:
        yield chaos(
            stack, seed=3, seconds=15, desks=3, emrs=1, fault_every=3, targets=SERVICE_FAULTS
        )
    finally:
        stack.down()


def test_a_short_seeded_chaos_run_loses_doubles_and_double_books_nothing(
    verdict: Verdict,
) -> None:
    findings = verdict.findings
    assert findings.faults >= 1  # a restart takes about 10 s: make chaos has the many
    assert findings.accepted > 0
    # Walk-ins minutes ahead are checked in (their no-shows wait for the time to begin).
    assert any(c.kind == "check-in" and 200 <= c.status < 300 for c in verdict.chaos.run.calls)
    assert not findings.failed, findings


def test_the_checks_find_a_projection_that_lost_an_appointment_and_a_message_made_twice(
    verdict: Verdict, infrastructure: Infrastructure
) -> None:
    live = sorted(
        a
        for a, e in checks.expectations(verdict.chaos.run.calls).items()
        if e.status == "booked" and a not in verdict.findings.uncertain
    )
    assert len(live) >= 2, "the load left too few live bookings to plant faults on"
    lost, doubled = live[0], live[1]
    with psycopg.connect(infrastructure.postgres.address, autocommit=True) as conn:
        # Availability's consumer dropped an appointment (as one that skipped an event would).
        conn.execute("DELETE FROM availability.appointment_resources WHERE appointment_id = %s",
                     [lost])  # fmt: skip
        conn.execute("DELETE FROM availability.appointments WHERE appointment_id = %s", [lost])
        # Notification made a step's message again (as a consumer that skipped its
        # idempotency record, and named messages afresh, would on a redelivery).
        conn.execute(
            "CREATE TEMP TABLE planted AS SELECT * FROM notification.messages"
            " WHERE appointment_id = %s AND kind IN ('confirmation', 'rescheduled')"
            " ORDER BY created_at DESC LIMIT 1",
            [doubled],
        )
        kind = conn.execute("SELECT kind FROM planted").fetchone()
        conn.execute(
            "UPDATE planted SET message_id = gen_random_uuid(), status = 'sent', reference = NULL"
        )
        conn.execute("INSERT INTO notification.messages SELECT * FROM planted")

    planted = verdict.check()

    assert planted.failed
    assert lost in planted.missing_in_projection
    assert planted.differs_from_rebuild  # the rebuild from booking's events has it again
    assert kind is not None
    assert (doubled, kind[0]) in planted.messages_doubled
    assert not planted.lost  # booking itself is untouched
    assert not planted.double_booked
