"""Copy-on-write cache of the aggregates commands change (resource days, appointments, ...).

A command reads its aggregates either *optimistically*, as this process last saw them (no
query), or *fresh*, brought up to date with the events recorded since (one query each). The
optimistic read is safe because every save checks each aggregate's version: a copy that another
process moved on makes the save fail, and the command decides again on fresh reads. The
cache itself is never mutated in place: readers get private copies, and an update replaces
the cached object, so a reader can never copy a half-applied event.

``Reader`` reads one tenant's aggregates through the cache (another tenant's id is simply
not found). ``KeyedLocks`` lets decisions of one process on the same resource day take turns.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    LRUCache,
    project_aggregate,
)
from eventsourcing.domain import Aggregate

from clinic.booking.domain.errors import NotFoundError
from clinic.booking.domain.tenancy import owned

A = TypeVar("A", bound=Aggregate)


class AggregateCache:
    def __init__(self, app: Application[UUID], maxsize: int) -> None:
        self.app = app
        self.items: LRUCache[UUID, Aggregate] = LRUCache(maxsize=maxsize)
        self.lock = threading.Lock()

    def get(self, aggregate_id: UUID, *, fresh: bool) -> Any:
        """A private copy of the aggregate; raises AggregateNotFoundError."""
        try:
            cached = self.items.get(aggregate_id)
        except KeyError:
            aggregate: Aggregate = self.app.repository.get(aggregate_id)
            self.remember(aggregate)
            return copy.deepcopy(aggregate)
        if fresh:
            newer = list(self.app.events.get(aggregate_id, gt=cached.version))
            if newer:
                updated: Any = project_aggregate(copy.deepcopy(cached), newer)
                self.remember(updated)
                cached = updated
        return copy.deepcopy(cached)

    def remember(self, aggregate: Aggregate) -> None:
        """Keep ``aggregate`` (which nobody may change afterwards) unless a newer one is kept."""
        with self.lock:
            try:
                current = self.items.get(aggregate.id)
            except KeyError:
                current = None
            if current is None or current.version < aggregate.version:
                self.items.put(aggregate.id, aggregate)


class KeyedLocks:
    """A lock per key, existing only while some thread uses it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[UUID, tuple[threading.Lock, int]] = {}

    def acquire(self, key: UUID, timeout: float) -> bool:
        with self._guard:
            lock, users = self._locks.get(key) or (threading.Lock(), 0)
            self._locks[key] = (lock, users + 1)
        if lock.acquire(timeout=timeout):
            return True
        self._leave(key)
        return False

    def release(self, keys: list[UUID]) -> None:
        """Release keys this thread acquired."""
        for key in keys:
            self._locks[key][0].release()
            self._leave(key)

    def _leave(self, key: UUID) -> None:
        with self._guard:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


class Reader:
    """Reads aggregates through the cache: ``fresh`` brings each up to date first (one query),
    otherwise it is as this process last saw it."""

    def __init__(self, aggregates: AggregateCache, fresh: bool) -> None:
        self.aggregates = aggregates
        self.fresh = fresh

    def load(
        self,
        cls: type[A],
        aggregate_id: UUID,
        organization_id: UUID,
        kind: str,
        *,
        fresh: bool = False,
    ) -> A:
        """An aggregate of this organisation; another tenant's id is simply not found.
        ``fresh``: brought up to date even where this reader would not."""
        aggregate = self.maybe(aggregate_id, fresh=fresh)
        if aggregate is None:
            raise NotFoundError(kind, aggregate_id)
        return owned(aggregate, cls, organization_id, kind, aggregate_id)

    def maybe(self, aggregate_id: UUID, *, fresh: bool = False) -> Any | None:
        """A private copy, or None when there is no such aggregate."""
        try:
            return self.aggregates.get(aggregate_id, fresh=self.fresh or fresh)
        except AggregateNotFoundError:
            return None
