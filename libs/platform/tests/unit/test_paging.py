"""A paging cursor is read back as the position it marks, in UTC; one a service did not give
(an offset PostgreSQL cannot hold, a year past the calendar, noise) is refused as a problem,
never passed on to the database."""

import base64
import datetime as dt
import uuid

import pytest

from clinic.platform.paging import InvalidCursorError, decode_cursor, encode_cursor


def raw(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_cursor_reads_back_in_utc() -> None:
    at = dt.datetime(2027, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    item = uuid.uuid4()
    assert decode_cursor(encode_cursor(at, item)) == (at, item)
    assert decode_cursor(encode_cursor(at, item))[0].utcoffset() == dt.timedelta(0)


def test_an_offset_postgresql_cannot_hold_becomes_utc() -> None:
    when, _ = decode_cursor(raw(f"2027-01-01T00:00:00+20:00|{uuid.uuid4()}"))
    assert when == dt.datetime(2026, 12, 31, 4, tzinfo=dt.UTC)
    assert when.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    "cursor",
    [
        raw(f"0001-01-01T00:00:00+14:00|{uuid.uuid4()}"),
        raw("2027-01-01T00:00:00|x"),
        raw("no bar at all"),
        "%%%",
    ],
)
def test_a_cursor_no_service_gave_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor)


def test_a_position_token_reads_back_for_its_own_list_only() -> None:
    from clinic.platform.paging import decode_position, encode_position

    token = encode_position("slots", 150)
    assert decode_position("slots", token) == 150
    for kind, given in (("dead-letters", token), ("slots", "not-a-token"), ("slots", "%%%")):
        with pytest.raises(ValueError, match="page token"):
            decode_position(kind, given)
