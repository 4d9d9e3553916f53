"""Many rows as one statement parameter: a JSON array of objects, read back in the statement
with ``jsonb_to_recordset(%s::jsonb) AS r(column type, ...)``.

The gateway's grouped writes (claims, answers, audit rows) send a group as one such
parameter rather than one array per column: orjson renders the whole group in C, where
psycopg renders each array element by element in Python (about a tenth of the gateway's CPU
per booking, profiled with ``bench/gateway_bench.py --profile``). UUIDs and aware datetimes
render as PostgreSQL reads them; bytes are given as hex (``decode(r.column, 'hex')``).
PostgreSQL's text cannot hold NUL (jsonb refuses ``\\u0000``): a value that may carry one
goes through :func:`text` first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson


def as_json(rows: Iterable[dict[str, Any]]) -> str:
    return orjson.dumps(list(rows)).decode()


def text(value: str | None) -> str | None:
    """``value`` as PostgreSQL text can hold it: a NUL becomes U+FFFD."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value
