"""The booking event store's recorder: eventsourcing's PostgreSQL application recorder with
saves that cost one round trip, grouped, and guarded against stale reference data.

eventsourcing keeps the notification log gapless (so the relay never passes over an event
that commits later) by taking an EXCLUSIVE lock on the events table in each inserting
transaction. Its default save sends the lock and the inserts, waits for them, and then sends
COMMIT: the lock is held across client round trips, and across the client's own scheduling
(in Python, the GIL), which serialises every booking behind the slowest client. Here a
server-side function takes the same lock, notifies, inserts and returns the notification
ids, called on an autocommit connection: the statement's implicit transaction commits on the
server, so the lock is held only for the server's own work. Same guarantees, shorter lock.

Group commit. The decisions that threads of one process hand in while a save is on its way
to the server go together in the next call: one round trip, one lock, one commit for all of
them. Each decision still succeeds or fails alone: the function first inserts the whole group
at once, and only if that meets a version conflict (or a decision is stale or guarded, below)
inserts each decision in its own subtransaction, so a conflict rolls back only that decision,
whose caller gets the same IntegrityError as before. With one client nothing waits; under
load, decisions share the server's work instead of queueing for the lock one by one.

The reference guard. A booking decides with cached copies of the schedule, resource,
location and appointment type as of a notification position; the save passes that position,
and the function, already holding the lock that orders every write, refuses the decision
(``StaleReferenceError``) if an event of those "guarded" topics was recorded after it. The
command then refreshes its copies and decides again. So no round trip is spent asking whether
reference data changed, and a booking can never be saved against a schedule change it did
not see.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Connection
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

MAX_GROUP = 64  # decisions in one call
CONFLICT, STALE = "conflict", "stale"


@functools.lru_cache(maxsize=1024)
def _quoted(topic: str) -> str:
    return json.dumps(topic)


def _id_text(originator_id: UUID | str) -> str:
    return str(originator_id if isinstance(originator_id, UUID) else UUID(originator_id))


class StaleReferenceError(IntegrityError):
    """Guarded reference data changed after the position a decision was made at."""


class _Decision:
    """One caller's events, waiting to be written in the next group. ``wake`` is a lock
    taken at creation: releasing it wakes the caller (cheaper than an Event, whose set()
    runs a Python condition variable, for every decision of every group)."""

    __slots__ = ("decided_at", "error", "events", "finished", "ids", "wake")

    def __init__(self, events: Sequence[StoredEvent], decided_at: int | None) -> None:
        self.events = events
        self.decided_at = decided_at
        self.wake = threading.Lock()
        self.wake.acquire()
        self.finished = False
        self.ids: list[int] = []
        self.error: BaseException | None = None


class BookingRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        names = {
            "schema": Identifier(datastore.schema),
            "table": Identifier(events_table_name),
            "function": Identifier(f"{events_table_name}_insert_group"),
            "channel": Identifier(self.channel_name),
            "head": Identifier(f"{events_table_name}_reference_head"),
        }
        self.guarded_topics: frozenset[str] = frozenset()
        self._queue: list[_Decision] = []
        self._queue_lock = threading.Lock()
        self._writing = False  # one group in flight per process (more did not help)
        # Groups are written one at a time on a connection kept for them (no pool traffic).
        self._writer: Connection[Any] | None = None
        self._writer_lock = threading.Lock()
        self._insert_bytes: bytes | None = None
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
        # One text parameter carries the group as JSON (cheaper to build in Python than
        # typed arrays): {"decisions": [[events, decided_at, guarded], ...], "events":
        # [[originator_id, version, topic, state as hex], ...]}; decision d owns the next
        # ``events`` of them. The answer: per decision, its notification ids
        # (comma-separated) or why it was refused, joined by ";".
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}(batch text) "
                "RETURNS text LANGUAGE plpgsql AS $$ "
                "DECLARE b jsonb := batch::jsonb; ids uuid[]; versions bigint[]; "
                "topics text[]; states bytea[]; mark bigint; first int := 1; last int; "
                "d jsonb; got bigint[]; answers text[] := '{{}}'; "
                "BEGIN "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "SELECT array_agg((e->>0)::uuid ORDER BY o), "
                "array_agg((e->>1)::bigint ORDER BY o), "
                "array_agg(e->>2 ORDER BY o), array_agg(decode(e->>3, 'hex') ORDER BY o) "
                "INTO ids, versions, topics, states "
                "FROM jsonb_array_elements(b->'events') WITH ORDINALITY AS t(e, o); "
                "SELECT h.position INTO mark FROM {schema}.{head} h; "
                "NOTIFY {channel}; "
                # Usually no decision is stale or guarded and none conflicts: one insert of
                # every event, in one subtransaction. Else one subtransaction per decision.
                "IF NOT EXISTS (SELECT 1 FROM jsonb_array_elements(b->'decisions') x "
                "WHERE (x->>2)::boolean OR (x->>1 IS NOT NULL AND mark > (x->>1)::bigint)) "
                "THEN "
                "  BEGIN "
                "    WITH i AS (INSERT INTO {schema}.{table} "
                "      (originator_id, originator_version, topic, state) "
                "      SELECT * FROM unnest(ids, versions, topics, states) "
                "      RETURNING {table}.notification_id) "
                "    SELECT array_agg(i.notification_id ORDER BY i.notification_id) "
                "    INTO got FROM i; "
                "    FOR d IN SELECT x FROM jsonb_array_elements(b->'decisions') "
                "    WITH ORDINALITY AS t(x, o) ORDER BY o LOOP "
                "      last := first + (d->>0)::int - 1; "
                "      answers := answers || array_to_string(got[first:last], ','); "
                "      first := last + 1; "
                "    END LOOP; "
                "    RETURN array_to_string(answers, ';'); "
                "  EXCEPTION WHEN unique_violation THEN "
                "    first := 1; answers := '{{}}'; "
                "  END; "
                "END IF; "
                "FOR d IN SELECT x FROM jsonb_array_elements(b->'decisions') "
                "WITH ORDINALITY AS t(x, o) ORDER BY o LOOP "
                "  last := first + (d->>0)::int - 1; "
                "  IF d->>1 IS NOT NULL AND mark > (d->>1)::bigint THEN "
                "    answers := answers || '" + STALE + "'::text; "
                "  ELSE "
                "    BEGIN "
                "      WITH i AS (INSERT INTO {schema}.{table} "
                "        (originator_id, originator_version, topic, state) "
                "        SELECT * FROM unnest(ids[first:last], versions[first:last], "
                "        topics[first:last], states[first:last]) "
                "        RETURNING {table}.notification_id) "
                "      SELECT array_agg(i.notification_id ORDER BY i.notification_id) "
                "      INTO got FROM i; "
                "      answers := answers || array_to_string(got, ','); "
                "      IF (d->>2)::boolean THEN "
                "        mark := got[array_upper(got, 1)]; "
                "        UPDATE {schema}.{head} SET position = mark; "
                "      END IF; "
                "    EXCEPTION WHEN unique_violation THEN "
                "      answers := answers || '" + CONFLICT + "'::text; "
                "    END; "
                "  END IF; "
                "  first := last + 1; "
                "END LOOP; "
                "RETURN array_to_string(answers, ';'); "
                "END $$"
            ).format(**names)
        )
        self.sql_insert = SQL("SELECT {schema}.{function}(%s)").format(**names)
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

    def create_table(self) -> None:
        """All of the event store's creation under one session advisory lock: replicas
        starting together on a new database would otherwise race on the composite types,
        which eventsourcing creates each in a transaction of its own and whose simultaneous
        creation fails with "relation already exists" (an error it does not expect), and on
        CREATE OR REPLACE FUNCTION ("tuple concurrently updated")."""
        key = f"{self.datastore.schema}.{self.events_table_name}:create"
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))

    def guard(self, topics: Iterable[str]) -> None:
        """Record these topics' events as guarded reference data."""
        self.guarded_topics = frozenset(topics)

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        decided_at: int | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """Insert one decision's events atomically, in the next group. ``decided_at``: the
        notification position the decision read reference data at; the decision is refused
        if guarded data changed since."""
        if not stored_events:
            return []
        mine = _Decision(stored_events, decided_at)
        with self._queue_lock:
            self._queue.append(mine)
            leading = not self._writing
            self._writing = True
        if not leading:
            mine.wake.acquire()  # written by another thread, or handed the lead
        if not mine.finished:
            self._write_next_group()
        if mine.error is not None:
            raise mine.error
        return mine.ids

    def _write_next_group(self) -> None:
        """Write the queue's oldest decisions (the caller's among them), then hand the lead
        to the oldest decision still waiting."""
        with self._queue_lock:
            group = self._queue[:MAX_GROUP]
            del self._queue[:MAX_GROUP]
        try:
            outcomes = self._insert_group(group)
        except Exception as error:  # noqa: BLE001 - every caller in the group hears of it
            for decision in group:
                decision.error = error
        else:
            for decision, (ids, refused) in zip(group, outcomes, strict=True):
                if refused == STALE:
                    decision.error = StaleReferenceError(
                        f"reference data changed after position {decision.decided_at}"
                    )
                elif refused is not None:
                    decision.error = IntegrityError("an aggregate version was taken")
                else:
                    decision.ids = ids
        finally:
            for decision in group:
                if not decision.ids and decision.error is None:  # interrupted mid-write
                    decision.error = OperationalError("the write was interrupted; outcome unknown")
                decision.finished = True
                decision.wake.release()
            with self._queue_lock:
                if self._queue:
                    self._queue[0].wake.release()  # it writes the next group itself
                else:
                    self._writing = False

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _insert_group(self, group: list[_Decision]) -> list[tuple[list[int], str | None]]:
        row = self._call_writer(self._batch(group))
        assert row is not None
        return [
            ([], answer)
            if answer in (CONFLICT, STALE)
            else ([int(n) for n in answer.split(",")], None)
            for answer in str(row[0]).split(";")
        ]

    def _batch(self, group: list[_Decision]) -> str:
        """The group as the function's JSON argument, written out directly: json.dumps
        would scan every character of the hex states (most of the text) for escapes that
        hex never needs. Ids, versions and hex are JSON-safe as they are; topics are
        quoted by json once each."""
        guarded = self.guarded_topics
        decisions = ",".join(
            f"[{len(d.events)},{'null' if d.decided_at is None else int(d.decided_at)},"
            f"{'false' if guarded.isdisjoint(e.topic for e in d.events) else 'true'}]"
            for d in group
        )
        events = ",".join(
            f'["{_id_text(e.originator_id)}",{int(e.originator_version)},'
            f'{_quoted(e.topic)},"{e.state.hex()}"]'
            for d in group
            for e in d.events
        )
        return f'{{"decisions":[{decisions}],"events":[{events}]}}'

    def _call_writer(self, batch: str) -> tuple[Any, ...] | None:
        with self._writer_lock:
            if self._writer is None or self._writer.closed:
                self._writer = self.datastore.pool.getconn()
                assert self._writer.autocommit  # one statement, its own transaction
            conn = self._writer
            try:
                if self._insert_bytes is None:
                    self._insert_bytes = self.sql_insert.as_bytes(conn)
                with conn.cursor(row_factory=tuple_row) as cursor:
                    cursor.execute(self._insert_bytes, (batch,), prepare=True)
                    return cursor.fetchone()
            except (psycopg.OperationalError, psycopg.InterfaceError) as error:
                self._drop_writer()  # a new connection next time (the caller retries)
                raise OperationalError(str(error)) from error
            except psycopg.Error as error:
                raise PersistenceError(str(error)) from error

    def close_writer(self) -> None:
        """Hand the group writer's connection back to the pool, before the pool closes."""
        with self._writer_lock:
            self._drop_writer()

    def _drop_writer(self) -> None:
        """The pool closes a broken connection it gets back."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self.datastore.pool.putconn(writer)
