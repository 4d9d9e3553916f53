"""Keeps the in-memory index current: a full load at start, then the projection's change
feed (``index_changes``), polled every few milliseconds. Every replica follows the same feed,
whichever of them runs the consumer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from uuid import UUID

import psycopg

from clinic.availability.index import Index
from clinic.availability.store import load
from clinic.platform.database import Database

log = logging.getLogger(__name__)


class IndexRefresher:
    def __init__(self, database: Database, interval: float) -> None:
        self.database = database
        self.interval = interval
        self.index = Index()
        self.seq = 0
        self.loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def full_load(self) -> None:
        async with self.database.pool.connection() as conn:
            row = await (
                await conn.execute("SELECT coalesce(max(seq), 0) FROM index_changes")
            ).fetchone()
            seq = int(row[0]) if row else 0
            tables = await load(conn)
        self.index = Index.build(tables)
        self.seq = seq
        self.loaded.set()

    async def catch_up(self) -> int:
        async with self.database.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT seq, kind, id FROM index_changes WHERE seq > %s ORDER BY seq LIMIT 10000",
                (self.seq,),
            )
            rows = await cursor.fetchall()
            if not rows:
                return 0
            if any(r[1] == "rebuild" for r in rows):
                # The index in use keeps answering while the rebuilt one loads (the rebuild
                # holds the same facts): a rebuild never makes search or calendars refuse.
                await self.full_load()
                return len(rows)
            resources = {r[2] for r in rows if r[1] in ("resource", "schedule", "claims")}
            types = {r[2] for r in rows if r[1] == "type"}
            locations = {r[2] for r in rows if r[1] == "location"}
            where: dict[str, tuple[str, Any]] = {}
            if resources:
                ids = list(resources)
                for table in ("resources", "weekly_hours", "schedule_exceptions", "claims"):
                    where[table] = ("resource_id", ids)
            if types:
                where["appointment_types"] = ("appointment_type_id", list(types))
            if locations:
                where["locations"] = ("location_id", list(locations))
            tables = await load(conn, where)
        self.index.replace(tables, set(UUID(str(r)) for r in resources))
        self.seq = rows[-1][0]
        return len(rows)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="index-refresher")

    async def _run(self) -> None:
        while True:
            try:
                if not self.loaded.is_set():
                    await self.full_load()
                elif await self.catch_up():
                    continue
            except (psycopg.OperationalError, psycopg.errors.UndefinedTable) as error:
                log.warning("index refresh failed, retrying", extra={"error": str(error)})
                await asyncio.sleep(1.0)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check(self) -> None:
        if not self.loaded.is_set():
            raise RuntimeError("free-time index not loaded yet")
