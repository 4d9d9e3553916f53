"""Idempotency keys past their lifetime are removed every few minutes (by any replica: the
delete is the same whoever runs it)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

import psycopg

from clinic.gateway import idempotency
from clinic.platform.database import Database

log = logging.getLogger(__name__)
INTERVAL_SECONDS = 300.0


class KeyExpiry:
    def __init__(self, database: Database, interval: float = INTERVAL_SECONDS) -> None:
        self.database = database
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="idempotency-key-expiry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with self.database.transaction() as conn:
                    removed = await idempotency.forget_expired(conn, dt.datetime.now(dt.UTC))
                if removed:
                    log.info("idempotency keys expired", extra={"removed": removed})
            except psycopg.Error as error:
                log.warning(
                    "could not remove expired idempotency keys", extra={"error": str(error)}
                )
            await asyncio.sleep(self.interval)
