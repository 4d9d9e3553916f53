"""Schema migrations against the real PostgreSQL, as replicas run them when they start."""

import asyncio
from collections.abc import Callable

import psycopg

from clinic.platform.database import Database
from clinic.platform.settings import ServiceSettings


class ProbeSettings(ServiceSettings):
    service_name = "probe"


DDL = ["CREATE TABLE IF NOT EXISTS probes (id integer PRIMARY KEY)"]


async def test_replicas_starting_at_the_same_moment_all_create_and_migrate_one_new_schema(
    settings_for: Callable[..., ProbeSettings],
) -> None:
    replicas = 8
    settings = settings_for(ProbeSettings)
    databases = [
        Database(settings.database_url, settings.schema_name, f"probe-{n}", 1)
        for n in range(replicas)
    ]

    # Before, each ran CREATE SCHEMA IF NOT EXISTS outside the lock, and all but one of a
    # simultaneous start could fail with a unique violation on pg_namespace.
    await asyncio.gather(*(db.migrate(DDL) for db in databases))

    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = %s AND table_name = 'probes'",
            (settings.schema_name,),
        )
        assert await cursor.fetchone() == (1,)
        await conn.execute(f'DROP SCHEMA "{settings.schema_name}" CASCADE')
