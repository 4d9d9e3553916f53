"""The booking event store's recorder: eventsourcing's PostgreSQL application recorder with a
save that costs one round trip.

eventsourcing keeps the notification log gapless (so the relay never passes over an event
that commits later) by taking an EXCLUSIVE lock on the events table in each inserting
transaction. Its default save sends the lock and the inserts, waits for them, and then sends
COMMIT: the lock is held across client round trips, and across the client's own scheduling
(in Python, the GIL), which serialises every booking behind the slowest client. Here a
server-side function takes the same lock, notifies, inserts and returns the notification
ids, called on an autocommit connection: the statement's implicit transaction commits on the
server, so the lock is held only for the server's own work. Same guarantees, shorter lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import (
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier


class BookingRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        function = f"{events_table_name}_insert"
        names = {
            "schema": Identifier(datastore.schema),
            "table": Identifier(events_table_name),
            "function": Identifier(function),
            "channel": Identifier(self.channel_name),
        }
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "ids uuid[], versions bigint[], topics text[], states bytea[]) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $$ "
                "BEGIN "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) "
                "RETURNING notification_id; "
                "END $$"
            ).format(**names)
        )
        self.sql_insert = SQL("SELECT n FROM {schema}.{function}(%s, %s, %s, %s) AS n").format(
            **names
        )
        self.sql_since = SQL(
            "SELECT m.top, e.notification_id, e.originator_id, e.originator_version, e.topic, "
            "e.state FROM (SELECT max(notification_id) AS top FROM {schema}.{table}) m "
            "LEFT JOIN LATERAL (SELECT * FROM {schema}.{table} WHERE notification_id > %s "
            "AND notification_id <= m.top AND topic = ANY(%s) ORDER BY notification_id "
            "LIMIT %s) e ON true"
        ).format(**names)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def notifications_since(
        self, position: int, topics: Sequence[str], limit: int
    ) -> tuple[int, list[Notification]]:
        """(the newest notification id, the notifications of ``topics`` after ``position``
        up to it, at most ``limit``) in one round trip."""
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(self.sql_since, (position, list(topics), limit), prepare=True)
            rows = cursor.fetchall()
        top = int(rows[0]["top"] or 0) if rows else 0
        return top, [
            Notification(
                id=row["notification_id"],
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in rows
            if row["notification_id"] is not None
        ]

    def _create_table(self, cursor: Cursor[DictRow]) -> None:
        """Create the table and function under an advisory lock: replicas starting together
        would otherwise race on CREATE OR REPLACE FUNCTION ("tuple concurrently updated")."""
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            (f"{self.datastore.schema}.{self.events_table_name}",),
        )
        super()._create_table(cursor)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            assert conn.autocommit  # one statement, its own transaction
            cursor.execute(
                self.sql_insert,
                (
                    [e.originator_id for e in stored_events],
                    [e.originator_version for e in stored_events],
                    [e.topic for e in stored_events],
                    [e.state for e in stored_events],
                ),
                prepare=True,
            )
            return [row["n"] for row in cursor.fetchall()]
