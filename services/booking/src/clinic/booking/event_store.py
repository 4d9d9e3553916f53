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

The same function guards decisions against reference data that changed under them. A booking
decides with cached copies of the schedule, resource, location and appointment type as of a
notification position; the save passes that position, and the function, already holding the
lock that orders every write, refuses it (``StaleReferenceError``) if an event of those
"guarded" topics was recorded after it. The command then refreshes its copies and decides
again. So no round trip is spent asking whether reference data changed, and a booking can
never be saved against a schedule change it did not see.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
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

STALE_REFERENCE = "CB001"  # SQLSTATE raised by the insert function


class StaleReferenceError(IntegrityError):
    """Guarded reference data changed after the position a decision was made at."""


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
            "head": Identifier(f"{events_table_name}_reference_head"),
        }
        self.guarded_topics: frozenset[str] = frozenset()
        # The newest notification id of a guarded event: one row, written under the lock.
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{head} ("
                "one boolean PRIMARY KEY DEFAULT true CHECK (one), position bigint NOT NULL)"
            ).format(**names)
        )
        self.sql_create_statements.append(
            SQL(
                "INSERT INTO {schema}.{head} (position) "
                "SELECT coalesce(max(notification_id), 0) FROM {schema}.{table} "
                "ON CONFLICT (one) DO NOTHING"
            ).format(**names)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}("
                "ids uuid[], versions bigint[], topics text[], states bytea[], "
                "decided_at bigint, guarded boolean) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $$ "
                "BEGIN "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "IF decided_at IS NOT NULL AND "
                "(SELECT position FROM {schema}.{head}) > decided_at THEN "
                "RAISE EXCEPTION 'reference data changed after position %', decided_at "
                "USING ERRCODE = '" + STALE_REFERENCE + "'; "
                "END IF; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) "
                "SELECT * FROM unnest(ids, versions, topics, states) "
                "RETURNING notification_id; "
                "IF guarded THEN UPDATE {schema}.{head} SET position = "
                "(SELECT max(notification_id) FROM {schema}.{table}); END IF; "
                "END $$"
            ).format(**names)
        )
        self.sql_insert = SQL(
            "SELECT n FROM {schema}.{function}(%s, %s, %s, %s, %s, %s) AS n"
        ).format(**names)
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

    def guard(self, topics: Iterable[str]) -> None:
        """Record these topics' events as guarded reference data."""
        self.guarded_topics = frozenset(topics)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        decided_at: int | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """Insert in one round trip. ``decided_at``: the notification position the decision
        read reference data at; the insert is refused if guarded data changed since."""
        if not stored_events:
            return []
        topics = [e.topic for e in stored_events]
        guarded = not self.guarded_topics.isdisjoint(topics)
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            assert conn.autocommit  # one statement, its own transaction
            try:
                cursor.execute(
                    self.sql_insert,
                    (
                        [e.originator_id for e in stored_events],
                        [e.originator_version for e in stored_events],
                        topics,
                        [e.state for e in stored_events],
                        decided_at,
                        guarded,
                    ),
                    prepare=True,
                )
            except psycopg.Error as error:
                if error.sqlstate == STALE_REFERENCE:
                    raise StaleReferenceError(str(error)) from None
                raise
            return [row["n"] for row in cursor.fetchall()]
