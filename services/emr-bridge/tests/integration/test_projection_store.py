"""The facts and FHIR resources written to PostgreSQL by the consumer's writer equal the ones
built in memory from the same events, every version included: JSON columns and timestamps
come back as they went in, and resources are written from rows loaded by key exactly as from
the whole projection."""

from bridge_history import History
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from clinic.emr_bridge.consumer import ProjectionWriter
from clinic.emr_bridge.resources import content, replay
from clinic.emr_bridge.store import load
from clinic.platform.database import Database

TABLES = (
    "organizations, locations, resources, appointment_types, hours, exceptions, patients,"
    " appointments, claims, fhir_resources, fhir_history"
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32), steps=st.integers(10, 60), batch=st.integers(1, 25))
async def test_the_tables_and_resources_in_postgresql_equal_the_projection_in_memory(
    database: Database, seed: int, steps: int, batch: int
) -> None:
    events = History(seed).play(steps)
    writer = ProjectionWriter(CollectorRegistry())
    async with database.pool.connection() as conn, conn.transaction():
        await conn.execute(f"TRUNCATE {TABLES}")
        for start in range(0, len(events), batch):
            await writer.write_many(conn, events[start : start + batch])
    tables, resources = replay(events)

    async with database.pool.connection() as conn:
        stored = await load(conn)
        cursor = await conn.execute(
            "SELECT resource_type, id, version, last_updated, body FROM fhir_history"
            " ORDER BY resource_type, id, version"
        )
        history = await cursor.fetchall()

    assert stored.rows == tables.rows
    expected = sorted(
        (v.resource_type, v.id, v.version, v.last_updated, v.body)
        for versions in resources.history.values()
        for v in versions
    )
    assert [(t, i, n, at) for t, i, n, at, _ in history] == [e[:4] for e in expected]
    for (*_, body), (*_, wanted) in zip(history, expected, strict=True):
        assert (body and content(body)) == (wanted and content(wanted))
        assert (body and body["meta"]) == (wanted and wanted["meta"])
