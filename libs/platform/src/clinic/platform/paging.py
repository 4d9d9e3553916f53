"""Cursor paging by (instant, id): the cursor a page ends with is the next page's start,
opaque to clients, refused as a 422 problem when it is not one a service gave."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from uuid import UUID

from clinic.platform.problems import Problem


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
        return when, UUID(item_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursorError("give back the next_cursor of the previous page") from None
