"""The gateway's claim of an Idempotency-Key against real PostgreSQL, reached through a port
that goes dark and comes back (the database killed and restarted): a request that decided
nothing gives its key back once the database is reachable again, so its retry is answered
at once instead of "still being answered" until the claim lapses a minute later (a make
chaos run saw a desk refused for that minute after PostgreSQL was killed)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from clinic.devstack.components import free_port
from clinic.devstack.infra import Infrastructure
from clinic.gateway import audit, idempotency
from clinic.gateway.writes import DatabaseUnavailableError, Writes
from clinic.platform.database import Database


class Passage:
    """A TCP port on 127.0.0.1 that forwards to PostgreSQL while open, and refuses (nothing
    listens) while closed, dropping the connections it carried."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._carry, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for pipe in list(self.pipes):
            pipe.cancel()

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        for task in (
            asyncio.create_task(pipe(reader, upstream_writer)),
            asyncio.create_task(pipe(upstream_reader, writer)),
        ):
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)


@pytest.fixture
async def passage(infrastructure: Infrastructure) -> AsyncIterator[Passage]:
    target = urlsplit(infrastructure.database_url)
    opened = Passage(target.hostname or "127.0.0.1", target.port or 5432)
    await opened.open()
    yield opened
    await opened.close()


async def rows(database: Database, claim: idempotency.Claim) -> int:
    async with database.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM idempotency_keys WHERE organization_id = %s AND key = %s",
            (claim.organization_id, claim.key),
        )
        found = await cursor.fetchone()
    return int(found[0]) if found else 0


async def test_a_claim_whose_release_met_the_database_down_is_released_once_it_is_back(
    infrastructure: Infrastructure, schema_name: str, passage: Passage
) -> None:
    direct = Database(infrastructure.database_url, schema_name, "gateway-test", 2)
    await direct.migrate(idempotency.DDL + audit.DDL)
    await direct.pool.open(wait=True)
    url = urlsplit(infrastructure.database_url)
    through = url._replace(netloc=url.netloc.replace(f":{url.port}", f":{passage.port}"))
    database = Database(urlunsplit(through), schema_name, "gateway-under-test", 2)
    database.pool.timeout = 0.5
    await database.open()
    writes = Writes(database, dt.timedelta(hours=1))
    claim = idempotency.Claim(uuid.uuid4(), "desk-1", f"k-{uuid.uuid4()}", "print")
    try:
        assert await writes.claim(claim) is None  # the key is this request's
        assert await rows(direct, claim) == 1
        await passage.close()  # PostgreSQL gone while booking was being asked
        with pytest.raises(DatabaseUnavailableError):
            await writes.claim(idempotency.Claim(uuid.uuid4(), "desk-1", "other", "print"))
        await writes.release(claim)  # does not wait for the database
        assert await rows(direct, claim) == 1
        await asyncio.sleep(1)
        await passage.open()  # back
        for _ in range(100):
            if await rows(direct, claim) == 0:
                break
            await asyncio.sleep(0.1)
        assert await rows(direct, claim) == 0  # before: held until the claim lapsed (1 min)
        assert await writes.claim(claim) is None  # the retry takes the key at once
    finally:
        await writes.drain()
        with contextlib.suppress(Exception):
            await database.close()
        await direct.close()
