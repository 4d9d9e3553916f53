"""The projection written to PostgreSQL by the consumer's writer equals the one built in
memory from the same events: JSON columns, text PostgreSQL cannot store, and timestamps
come back as they went in."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from notification_history import History
from prometheus_client import CollectorRegistry

from clinic.notification.consumer import ProjectionWriter
from clinic.notification.planning import QuietHours
from clinic.notification.projection import Tables
from clinic.notification.store import load
from clinic.platform.database import Database


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), steps=st.integers(10, 60), batch=st.integers(1, 25))
async def test_the_tables_in_postgresql_equal_the_projection_in_memory(
    database: Database, seed: int, steps: int, batch: int
) -> None:
    events = History(seed).play(steps)
    writer = ProjectionWriter(CollectorRegistry(), QuietHours())
    async with database.pool.connection() as conn, conn.transaction():
        await conn.execute(
            "TRUNCATE organizations, locations, appointment_types, patients, appointments, "
            "waitlist, messages"
        )
        for start in range(0, len(events), batch):
            await writer.write_many(conn, events[start : start + batch])
    expected = Tables()
    expected.replay(events)

    async with database.pool.connection() as conn:
        stored = await load(conn)

    assert stored.rows == expected.rows
