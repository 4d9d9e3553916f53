"""Copy-on-write cache of the aggregates commands change (resource days, appointments, ...).

A command reads its aggregates either *optimistically*, as this process last saw them (no
query), or *fresh*, brought up to date with the events recorded since (one query each). The
optimistic read is safe because every save checks each aggregate's version: a copy that another
process moved on makes the save fail, and the command decides again on fresh reads. The
cache itself is never mutated in place: readers get private copies, and an update replaces
the cached object, so a reader can never copy a half-applied event.

``KeyedLocks`` lets decisions of one process on the same resource day take turns.
"""

from __future__ import annotations

import copy
import threading
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, LRUCache, project_aggregate
from eventsourcing.domain import Aggregate


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
