"""Projections as data: each event becomes operations on rows of keyed tables (upsert,
delete or update by a prefix of the key), applied to PostgreSQL by a service's consumer and
to memory by its rebuilds and property tests, so "replay equals incremental" is checked on
the code that runs. A service names its tables, their key columns and their columns in a
``RowSchema``; its projection decides the operations."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from clinic.events import Envelope


@dataclass(frozen=True)
class Upsert:
    table: str
    row: dict[str, Any]


@dataclass(frozen=True)
class DeleteWhere:
    """Delete rows whose first key columns equal ``prefix``."""

    table: str
    prefix: tuple[Any, ...]


@dataclass(frozen=True)
class UpdateWhere:
    table: str
    prefix: tuple[Any, ...]
    changes: dict[str, Any]


Op = Upsert | DeleteWhere | UpdateWhere


@dataclass(frozen=True)
class RowSchema:
    """Each table's key columns (in order), its columns, and which columns hold JSON."""

    keys: dict[str, tuple[str, ...]]
    columns: dict[str, tuple[str, ...]]
    json_columns: frozenset[str] = frozenset()

    def value(self, column: str, value: Any) -> Any:
        return Jsonb(value) if column in self.json_columns else value


def storable(value: Any) -> Any:
    """Text as PostgreSQL can store it: NUL (which it refuses) and lone surrogates (which
    UTF-8 cannot carry) become U+FFFD. Producers refuse both, but one bad field from any
    producer must not keep a fact out of a projection: it is stored with the character
    replaced, and the rest of the fact kept."""
    if isinstance(value, str):
        if value.isascii():
            return value.replace("\x00", "\ufffd") if "\x00" in value else value
        return "".join("\ufffd" if c == "\x00" or 0xD800 <= ord(c) <= 0xDFFF else c for c in value)
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    if isinstance(value, dict):
        return {k: storable(v) for k, v in value.items()}
    return value


@dataclass
class Rows:
    """Tables held in memory: table -> key -> row, with rows grouped by all key columns but
    the last, so prefix operations (release every claim of an appointment on a day) touch
    only that group."""

    keys: dict[str, tuple[str, ...]]
    rows: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = field(init=False)
    groups: dict[str, dict[tuple[Any, ...], set[tuple[Any, ...]]]] = field(init=False)

    def __post_init__(self) -> None:
        self.rows = {name: {} for name in self.keys}
        self.groups = {name: {} for name in self.keys}

    def key(self, op: Upsert) -> tuple[Any, ...]:
        row = op.row
        return tuple([row[c] for c in self.keys[op.table]])

    def _keys(self, table: str, prefix: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        width = len(self.keys[table])
        if len(prefix) == width:
            return [prefix] if prefix in self.rows[table] else []
        if len(prefix) == width - 1:
            return list(self.groups[table].get(prefix, ()))
        return [k for k in self.rows[table] if k[: len(prefix)] == prefix]

    def apply(self, ops: Iterable[Op]) -> None:
        rows, groups = self.rows, self.groups
        for op in ops:
            table = rows[op.table]
            if type(op) is Upsert:
                key = self.key(op)
                table[key] = op.row  # operations own their rows
                group = groups[op.table].get(key[:-1])
                if group is None:
                    groups[op.table][key[:-1]] = {key}
                else:
                    group.add(key)
            elif type(op) is DeleteWhere:
                for key in self._keys(op.table, op.prefix):
                    del table[key]
                    group = groups[op.table].get(key[:-1])
                    if group is not None:
                        group.discard(key)
                        if not group:
                            del groups[op.table][key[:-1]]
            else:
                assert isinstance(op, UpdateWhere)
                for key in self._keys(op.table, op.prefix):
                    table[key] = {**table[key], **op.changes}

    def replay_with(
        self, envelopes: Iterable[Envelope], plan: Callable[[Envelope], list[Op]]
    ) -> None:
        """Apply ``plan``'s operations for each event once by (aggregate_id,
        aggregate_version), as a service's idempotent consumer does."""
        seen: set[tuple[Any, int]] = set()
        for envelope in envelopes:
            key = (envelope.aggregate_id, envelope.aggregate_version)
            if key not in seen:
                seen.add(key)
                self.apply(plan(envelope))


def _where(schema: RowSchema, table: str, prefix: Sequence[Any]) -> sql.Composed:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = %s").format(sql.Identifier(c)) for c in schema.keys[table][: len(prefix)]
    )


async def apply_ops(conn: psycopg.AsyncConnection, schema: RowSchema, ops: Iterable[Op]) -> None:
    """Apply ``ops`` to PostgreSQL, in the caller's transaction."""
    for op in ops:
        if isinstance(op, Upsert):
            columns = schema.columns[op.table]
            keys = schema.keys[op.table]
            update = [c for c in columns if c not in keys]
            statement = sql.SQL(
                "INSERT INTO {table} ({cols}) VALUES ({vals}) "
                "ON CONFLICT ({keys}) DO UPDATE SET {set}"
            ).format(
                table=sql.Identifier(op.table),
                cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
                vals=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                keys=sql.SQL(", ").join(map(sql.Identifier, keys)),
                set=sql.SQL(", ").join(
                    sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in update
                ),
            )
            await conn.execute(statement, [schema.value(c, op.row.get(c)) for c in columns])
        elif isinstance(op, DeleteWhere):
            await conn.execute(
                sql.SQL("DELETE FROM {} WHERE {}").format(
                    sql.Identifier(op.table), _where(schema, op.table, op.prefix)
                ),
                list(op.prefix),
            )
        else:
            assignments = sql.SQL(", ").join(
                sql.SQL("{} = %s").format(sql.Identifier(c)) for c in op.changes
            )
            await conn.execute(
                sql.SQL("UPDATE {} SET {} WHERE {}").format(
                    sql.Identifier(op.table), assignments, _where(schema, op.table, op.prefix)
                ),
                [*(schema.value(c, v) for c, v in op.changes.items()), *op.prefix],
            )


async def load_into(conn: psycopg.AsyncConnection, schema: RowSchema, into: Rows) -> Rows:
    """Every row of every table of ``schema`` from PostgreSQL, into ``into`` (checks and
    tests compare it with a replay in memory)."""
    for table, columns in schema.columns.items():
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table)
        )
        cursor = await conn.execute(query)
        into.apply(
            Upsert(table, dict(zip(columns, record, strict=True)))
            for record in await cursor.fetchall()
        )
    return into
