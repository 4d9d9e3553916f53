"""The gateway's grouped writes against real PostgreSQL: claims, stored answers and audit rows
of requests arriving together go as one statement per group (one JSON parameter), and each
comes back exactly as it was written."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import psycopg
import pytest

from clinic.devstack.components import Infrastructure
from clinic.gateway import audit, idempotency
from clinic.gateway.writes import Record, Writes
from clinic.platform.database import Database


@pytest.fixture
async def writes(infrastructure: Infrastructure, schema_name: str) -> AsyncIterator[Writes]:
    database = Database(infrastructure.database_url, schema_name, "gateway-writes-test", 4)
    await database.migrate(idempotency.DDL + audit.DDL)
    await database.pool.open(wait=True)
    written = Writes(database, dt.timedelta(hours=1))
    yield written
    await written.drain()
    await database.close()


def entry(org: uuid.UUID, n: int, **changed: object) -> audit.AuditEntry:
    fields: dict[str, object] = {
        "organization_id": org,
        "actor": f"desk-{n}",
        "role": "front_desk",
        "client_id": "desk-app",
        "operation": "appointments.create",
        "method": "POST",
        "route": "/v1/appointments",
        "path": "/v1/appointments",
        "outcome": 201,
        "client_address": "127.0.0.1",
        "trace_id": f"{n:032x}",
        "target_ids": (uuid.uuid4(), uuid.uuid4()),
        "patient_id": uuid.uuid4(),
        "replayed": n % 2 == 1,
    }
    return audit.AuditEntry(**{**fields, **changed})  # type: ignore[arg-type]


async def test_requests_arriving_together_are_claimed_stored_and_audited_each_as_it_was(
    writes: Writes,
) -> None:
    org = uuid.uuid4()
    claims = [idempotency.Claim(org, f"desk-{n}", f"key-{n}", f"print-{n}") for n in range(20)]
    assert await asyncio.gather(*(writes.claim(c) for c in claims)) == [None] * 20
    answers = [
        idempotency.Stored(
            201 if n % 3 else 409,
            {
                "Location": f"/v1/appointments/{n}",
                "Content-Type": "application/json",
                "X-Dropped": "not kept",
            },
            b'{"n": %d, "name": "J\xc3\xbcrgen"}\x00\xff' % n,
        )
        for n in range(20)
    ]
    entries = [entry(org, n) for n in range(20)]
    await asyncio.gather(
        *(
            writes.record(Record(e, (c, a)))
            for e, c, a in zip(entries, claims, answers, strict=True)
        )
    )

    replays = await asyncio.gather(*(writes.claim(c) for c in claims))
    for answer, replay in zip(answers, replays, strict=True):
        assert replay == idempotency.Stored(
            answer.status,
            {"Location": answer.headers["Location"], "Content-Type": "application/json"},
            answer.body,
        )
    async with writes.database.pool.connection() as conn:
        cursor = await conn.execute(
            f"SELECT {audit.COLUMNS_WRITTEN} FROM access_audit WHERE organization_id = %s",
            (org,),
        )
        found = {row[0]: row for row in await cursor.fetchall()}
    assert len(found) == 20
    for e in entries:
        assert found[e.id] == (
            e.id, e.recorded_at, e.organization_id, e.actor, e.role, e.client_id, e.operation,
            e.method, e.route, e.path, list(e.target_ids), e.patient_id, e.outcome,
            e.client_address, e.trace_id, e.replayed,
        )  # fmt: skip


async def test_an_audit_row_whose_text_carries_a_nul_is_recorded_with_a_replacement_character(
    writes: Writes,
) -> None:
    org = uuid.uuid4()
    await writes.record(
        Record(entry(org, 1, path="/v1/x\x00y", client_id="app\x00", target_ids=()))
    )
    async with writes.database.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT path, client_id, target_ids FROM access_audit WHERE organization_id = %s",
            (org,),
        )
        assert await cursor.fetchall() == [("/v1/x\ufffdy", "app\ufffd", [])]


async def test_the_audit_index_of_target_ids_keeps_no_pending_list_also_where_one_was_kept(
    infrastructure: Infrastructure, schema_name: str
) -> None:
    database = Database(infrastructure.database_url, schema_name, "gateway-ddl-test", 1)

    async def options() -> list[str] | None:
        async with await psycopg.AsyncConnection.connect(database.conninfo) as conn:
            cursor = await conn.execute(
                "SELECT reloptions FROM pg_class WHERE oid = 'access_audit_by_target'::regclass"
            )
            found = await cursor.fetchone()
        return found[0] if found else None

    await database.migrate(audit.DDL)
    assert await options() == ["fastupdate=off"]
    async with await psycopg.AsyncConnection.connect(database.conninfo, autocommit=True) as conn:
        await conn.execute("ALTER INDEX access_audit_by_target SET (fastupdate = on)")  # as before
    await database.migrate(audit.DDL)  # the next start
    assert await options() == ["fastupdate=off"]
