"""What the availability routes share: the loaded index, and the time now."""

from __future__ import annotations

import datetime as dt

from fastapi import Request

from clinic.availability.index import Index
from clinic.platform.problems import Problem


class NotReadyError(Problem):
    status = 503
    slug = "service-unavailable"
    title = "Not ready yet"


def index_of(request: Request) -> Index:
    """The free-time index, once loaded (503 before)."""
    refresher = request.app.state.refresher
    if refresher is None or not refresher.loaded.is_set():
        raise NotReadyError("the free-time index is still loading; retry shortly")
    index: Index = refresher.index
    return index


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
