"""The gateway's writes on a request's path, grouped: the claims of Idempotency-Keys, and the
stored answers with their audit rows.

Each request waits for its own write, but the writes of requests that arrive together go to
PostgreSQL together: while one group is being written, the next gathers, so under load one
statement (and, for answers and audit rows, one durable commit) serves many requests, and
alone a request's write goes at once. A group the database refuses as a whole (one row it
cannot take) is written again one request at a time, so only that request fails. The
database unreachable is a 503 to retry, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import psycopg

from clinic.gateway import audit, idempotency
from clinic.platform.database import UNREACHABLE, Database
from clinic.platform.problems import Problem

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
MOST = 500  # requests in one group
IN_FLIGHT = 4  # groups of one kind written at once (of the pool's 10 connections)
RELEASE_PAUSE, RELEASE_PAUSE_CAP = 0.5, 4.0
"""Seconds between tries to release a claim while the database is unreachable (doubling)."""


class DatabaseUnavailableError(Problem):
    status = 503
    slug = "database-unavailable"
    title = "The gateway's database is unavailable"
    headers = {"Retry-After": "5"}


class Grouped(Generic[T, R]):
    """Items written in groups by ``write``, which answers each item of a group in order:
    its result, an exception to raise to its request, or ``idempotency.AGAIN`` (into the
    next group). Up to ``in_flight`` groups are written at once (PostgreSQL flushes their
    commits together): a request that finds room goes at once, alone; the others gather
    into the next group. ``drop_abandoned``: an item whose request went away before its
    group was formed is not written."""

    def __init__(
        self,
        name: str,
        write: Callable[[list[T]], Awaitable[Sequence[R | BaseException | idempotency.Again]]],
        *,
        in_flight: int = IN_FLIGHT,
        drop_abandoned: bool = False,
    ) -> None:
        self.name = name
        self.write = write
        self.in_flight = in_flight
        self.drop_abandoned = drop_abandoned
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._flights: set[asyncio.Task[None]] = set()

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._take_off()
        return await future

    async def drain(self) -> None:
        """Wait for everything asked for so far to be written (stopping)."""
        while self._flights:
            await asyncio.wait(set(self._flights))

    def _take_off(self) -> None:
        while self._waiting and len(self._flights) < self.in_flight:
            group, self._waiting = self._waiting[:MOST], self._waiting[MOST:]
            if self.drop_abandoned:
                group = [(item, future) for item, future in group if not future.done()]
            if group:
                flight = asyncio.create_task(self._write_group(group), name=f"write {self.name}")
                self._flights.add(flight)
                flight.add_done_callback(self._landed)

    def _landed(self, flight: asyncio.Task[None]) -> None:
        self._flights.discard(flight)
        self._take_off()

    async def _write_group(self, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self.write([item for item, _ in group])
        except asyncio.CancelledError:  # stopping mid-write: no request waits for ever
            for _, future in group:
                future.cancel()
            raise
        except Exception as error:  # noqa: BLE001 - it reaches every request of the group
            if len(group) > 1 and not isinstance(error, DatabaseUnavailableError):
                log.warning(
                    "a group of writes was refused; writing them one at a time",
                    extra={"writes": self.name, "group": len(group), "error": str(error)},
                )
                for one in group:
                    await self._write_group([one])
                return
            for _, future in group:
                if not future.done():
                    future.set_exception(error)
            return
        again = []
        for (item, future), result in zip(group, results, strict=True):
            if isinstance(result, idempotency.Again):
                again.append((item, future))
            elif future.done():
                continue
            elif isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)
        self._waiting[:0] = again


@dataclass(frozen=True)
class Record:
    """One audit row, and the answer it stores with its key (for a command with one)."""

    entry: audit.AuditEntry
    answer: tuple[idempotency.Claim, idempotency.Stored] | None = None


class Writes:
    def __init__(self, database: Database, ttl: dt.timedelta) -> None:
        self.database = database
        self.ttl = ttl
        self._claims = Grouped[idempotency.Claim, idempotency.Stored | None](
            "idempotency claims", self._claim_group, drop_abandoned=True
        )
        self._records = Grouped[Record, None]("audit rows", self._record_group)
        self._releasing: set[asyncio.Task[None]] = set()

    async def claim(self, wanted: idempotency.Claim) -> idempotency.Stored | None:
        """Take the key for this request (None), or the first answer to replay; raises the
        refusal when the key is another request's or still being answered."""
        return await self._claims(wanted)

    async def record(self, record: Record) -> None:
        """Write the audit row (and the answer with its key), durably, before answering."""
        await self._records(record)

    async def release(self, claim: idempotency.Claim) -> None:
        """Free the key of a request that decided nothing, so its retry is not told "still
        being answered" until the claim lapses. The database unreachable (the same outage
        that failed the request, often) does not keep it: the release is written again in
        the background until it goes or the claim has lapsed by itself."""
        try:
            await self._release(claim)
        except DatabaseUnavailableError:
            task = asyncio.create_task(self._release_later(claim), name="release a claim")
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def _release(self, claim: idempotency.Claim) -> None:
        async with self._connection() as conn:
            await idempotency.release(conn, claim)

    async def _release_later(self, claim: idempotency.Claim) -> None:
        async def release(conn: psycopg.AsyncConnection) -> None:
            await idempotency.release(conn, claim)

        with contextlib.suppress(TimeoutError):  # by then the claim has lapsed by itself
            await self.database.when_reachable(
                release,
                what="releasing an Idempotency-Key claim",
                pause=RELEASE_PAUSE,
                most=RELEASE_PAUSE_CAP,
                within=idempotency.CLAIM_LEASE.total_seconds(),
            )

    async def drain(self) -> None:
        await self._claims.drain()
        await self._records.drain()
        for task in list(self._releasing):  # a claim left lapses by itself
            task.cancel()

    async def _claim_group(self, group: list[idempotency.Claim]) -> list[idempotency.Claimed]:
        async with self._connection() as conn:
            return await idempotency.claim_many(conn, group, dt.datetime.now(dt.UTC), self.ttl)

    async def _record_group(self, group: list[Record]) -> list[None]:
        answers = [r.answer for r in group if r.answer is not None]
        async with self._connection() as conn:
            await idempotency.complete_many(
                conn, answers, audit.insert_many([r.entry for r in group])
            )
        return [None] * len(group)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled connection; none to be had, or its loss, is the 503 to retry."""
        try:
            async with self.database.pool.connection() as conn:
                yield conn
        except UNREACHABLE as error:
            raise DatabaseUnavailableError(
                f"the gateway could not reach its database ({type(error).__name__}); send "
                "the request again with the same Idempotency-Key: it is done at most once"
            ) from error
