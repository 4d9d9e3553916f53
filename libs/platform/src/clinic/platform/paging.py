"""Cursor paging by (instant, id): the cursor a page ends with is the next page's start,
opaque to clients, refused as a 422 problem when it is not one a service gave."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from clinic.platform.problems import Problem

R = TypeVar("R")


class InvalidCursorError(Problem):
    status = 422
    slug = "invalid-cursor"
    title = "The paging cursor is not one this service gave"


def encode_cursor(at: dt.datetime, item_id: UUID) -> str:
    raw = f"{at.astimezone(dt.UTC).isoformat()}|{item_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, item_id = raw.split("|")
        when = dt.datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("no offset")
        # In UTC, as written: an offset PostgreSQL has no room for (+20:00) is not sent on.
        return when.astimezone(dt.UTC), UUID(item_id)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError("give back the next_cursor of the previous page") from None


def encode_position(kind: str, position: int) -> str:
    """An opaque page token for a list paged by a whole-number position (an offset, a
    row number), named by the list's ``kind`` so one list's token is no other's."""
    return base64.urlsafe_b64encode(f"{kind}:{position}".encode()).decode().rstrip("=")


def decode_position(kind: str, token: str) -> int:
    """The position of a token :func:`encode_position` gave for ``kind``; ValueError for
    any other text (the caller answers with its own problem)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("not a page token") from None
    named, _, position = raw.partition(":")
    if named != kind or not position.isdigit():
        raise ValueError(f"not a {kind} page token")
    return int(position)


def after(cursor: str | None, at_column: str, id_column: str) -> tuple[str, list[Any]]:
    """The SQL condition (with its parameters) for rows after ``cursor``; none without one."""
    if cursor is None:
        return "", []
    at, item_id = decode_cursor(cursor)
    return f" AND ({at_column}, {id_column}) > (%s, %s)", [at, item_id]


def split_page(
    rows: Sequence[R], limit: int, key: Callable[[R], tuple[dt.datetime, UUID]]
) -> tuple[Sequence[R], str | None]:
    """``rows`` read with ``LIMIT limit + 1``: the page, and the next page's cursor (None
    on the last page)."""
    page = rows[:limit]
    return page, encode_cursor(*key(page[-1])) if len(rows) > limit else None
