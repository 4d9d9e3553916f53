"""PostgreSQL wiring: a pool per service, scoped to the service's own schema."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

log = logging.getLogger(__name__)
T = TypeVar("T")
UNREACHABLE = (psycopg.OperationalError, PoolTimeout)
"""What the database restarting, failing over or dropping a connection raises."""


def scoped_conninfo(url: str, schema: str, application_name: str) -> str:
    """The URL with the service's schema first on the search path (quoted as an identifier),
    in the UTC time zone: instants come back as ``datetime.timezone.utc`` datetimes, which
    convert and format several times faster than the server's default zone object."""
    params = conninfo_to_dict(url)
    options = params.get("options") or ""
    params["options"] = f"{options} -c search_path={schema},public -c TimeZone=UTC".strip()
    params.setdefault("application_name", application_name)
    params.setdefault("connect_timeout", "5")
    return make_conninfo(**params)  # type: ignore[arg-type]


def redacted(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    params = conninfo_to_dict(url)
    if "password" in params:
        params["password"] = "***"  # noqa: S105 - a mask, not a secret
    return " ".join(f"{k}={v}" for k, v in params.items() if k != "options")


def append_only(table: str) -> list[str]:
    """DDL that makes ``table`` append-only: a trigger refuses UPDATE, DELETE and TRUNCATE
    whoever asks (the service's own role included). Idempotent, like every migration."""
    if not table.isidentifier():
        raise ValueError(f"not a table name: {table!r}")
    return [
        f"""CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{table} is append-only: % refused', TG_OP
                USING HINT = 'its rows are never changed or removed';
        END $$""",
        f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{table}_append_only'
                AND tgrelid = '{table}'::regclass) THEN
            CREATE TRIGGER {table}_append_only
                BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only();
        END IF;
    END $$""",
    ]


class Database:
    """A service's connection pool. Nothing connects until :meth:`open`."""

    def __init__(self, url: str, schema: str, application_name: str, pool_size: int) -> None:
        self.url = url
        self.schema = schema
        self.conninfo = scoped_conninfo(url, schema, application_name)
        self.pool = AsyncConnectionPool(
            self.conninfo,
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True},
            reconnect_timeout=0,
        )

    async def open(self) -> None:
        """Open the pool without waiting: a service starts even while its database is down,
        and ``/readyz`` says so."""
        await self.pool.open(wait=False)

    async def close(self) -> None:
        await self.pool.close()

    async def migrate(self, statements: list[str]) -> None:
        """Create the schema and run idempotent DDL, serialised by an advisory lock so several
        replicas starting at once do not race (``CREATE SCHEMA IF NOT EXISTS`` itself fails
        with a unique violation when two run it at the same moment)."""
        conn = await psycopg.AsyncConnection.connect(self.conninfo)
        async with conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.schema,))
            await conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )
            for statement in statements:
                await conn.execute(statement)

    async def when_reachable(
        self,
        work: Callable[[psycopg.AsyncConnection], Awaitable[T]],
        *,
        what: str,
        pause: float = 0.2,
        most: float = 2.0,
        within: float | None = None,
    ) -> T:
        """``work`` on a pooled connection, done again after a pause (doubling up to
        ``most`` seconds) while the database cannot be reached: for a write that must not be
        lost to a restart or a failover, and that may safely be done twice. ``within``: the
        seconds to keep trying (None: until it is done), then :class:`TimeoutError`."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while True:
            try:
                async with self.pool.connection() as conn:
                    return await work(conn)
            except UNREACHABLE as error:
                log.warning(
                    "%s waits: the database is unreachable", what, extra={"error": str(error)}
                )
            if deadline is not None and loop.time() + pause >= deadline:
                raise TimeoutError(f"{what}: the database stayed unreachable")
            await asyncio.sleep(pause)
            pause = min(most, pause * 2)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    async def check(self) -> None:
        """Readiness: a fresh connection answers a query (the pool may hide an outage)."""
        try:
            async with await psycopg.AsyncConnection.connect(self.conninfo) as conn:
                await conn.execute("SELECT 1")
        except psycopg.OperationalError as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise ConnectionError(f"{redacted(self.url)}: {first_line}") from None
