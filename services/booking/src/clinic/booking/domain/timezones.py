"""Wall-clock time in a location's IANA zone <-> UTC instants, honest about DST.

A wall-clock time that does not exist (02:30 on a spring-forward night) is refused; one that
happens twice (01:30 on a fall-back night) is refused unless the caller says which.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clinic.booking.domain.errors import (
    AmbiguousLocalTimeError,
    InvalidRequestError,
    NonExistentLocalTimeError,
)

UTC = dt.UTC


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequestError(f"{name!r} is not an IANA time zone") from None


def exists(local: dt.datetime, tz: ZoneInfo) -> bool:
    """True when the naive wall-clock time ``local`` happens in ``tz``."""
    aware = local.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == local


def is_ambiguous(local: dt.datetime, tz: ZoneInfo) -> bool:
    first, second = local.replace(tzinfo=tz, fold=0), local.replace(tzinfo=tz, fold=1)
    return first.utcoffset() != second.utcoffset()


def to_utc(local: dt.datetime, tz: ZoneInfo, *, fold: int | None = None) -> dt.datetime:
    """The instant of a naive wall-clock time. ``fold`` picks the first (0) or second (1)
    occurrence of a repeated time; without it a repeated time is refused."""
    if local.tzinfo is not None:
        raise InvalidRequestError("to_utc takes a wall-clock time without an offset")
    if not exists(local, tz):
        raise NonExistentLocalTimeError(
            f"{local.isoformat()} does not exist in {tz.key} (clocks jump forward)",
            local_time=local.isoformat(),
            time_zone=tz.key,
        )
    if is_ambiguous(local, tz) and fold is None:
        raise AmbiguousLocalTimeError(
            f"{local.isoformat()} happens twice in {tz.key} (clocks go back); "
            "send the instant with its UTC offset",
            local_time=local.isoformat(),
            time_zone=tz.key,
        )
    return local.replace(tzinfo=tz, fold=fold or 0).astimezone(UTC)


def boundary_to_utc(day: dt.date, at: dt.time, tz: ZoneInfo) -> dt.datetime:
    """A schedule boundary on a given local day, for building working windows. A boundary
    inside a DST gap moves to the first real instant after it; a repeated boundary takes its
    first occurrence, so a window never counts the repeated hour twice."""
    local = dt.datetime.combine(day, at)
    if not exists(local, tz):
        # fold=1 maps a gap time with the offset after the jump: an instant before the gap.
        # Walk forward to the first instant whose wall clock has reached ``local``.
        instant = local.replace(tzinfo=tz, fold=1).astimezone(UTC)
        instant = instant.replace(second=0, microsecond=0)
        while instant.astimezone(tz).replace(tzinfo=None) < local:
            instant += dt.timedelta(minutes=1)
        return instant
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def as_utc(instant: dt.datetime) -> dt.datetime:
    """The same instant in UTC. Decisions keep every instant in UTC: aware datetimes that
    share one tzinfo compare several times faster than ones with different offsets, and the
    busiest loops of a booking compare instants."""
    if instant.utcoffset() is None:
        raise InvalidRequestError(f"{instant.isoformat()} has no UTC offset")
    return instant.astimezone(UTC)


def local_date(instant: dt.datetime, tz: ZoneInfo) -> dt.date:
    return instant.astimezone(tz).date()


def local_dates(start: dt.datetime, end: dt.datetime, tz: ZoneInfo) -> list[dt.date]:
    """Every local date that the half-open interval [start, end) touches."""
    first = local_date(start, tz)
    last = local_date(end - dt.timedelta(microseconds=1), tz) if end > start else first
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def day_bounds(day: dt.date, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """[local midnight, next local midnight) of ``day`` as UTC instants (23 or 25 h on DST days)."""
    start = dt.datetime.combine(day, dt.time()).replace(tzinfo=tz).astimezone(UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).replace(tzinfo=tz)
    return start, end.astimezone(UTC)
