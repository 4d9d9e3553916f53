"""Read-only copies of reference aggregates (organisations, locations, resources, appointment
types, patients, schedules), kept current from the event store's notification log.

A booking decision reads six or more reference aggregates and one contended ResourceDay.
Loading each reference aggregate from the store costs a query and a copy; here a command
first asks the notification log for reference events recorded since the cache's position (one
query, usually empty), applies them copy-on-write, and then reads from memory. A command
therefore sees every reference change committed before it started (read-your-writes across
replicas), exactly as a fresh load would.

A new process warms the cache before it serves (``warm``): it replays the events of every
reference aggregate except patients (who may number millions and are read one at a time), so
the first bookings after a start or a scale-out read memory rather than queueing reads for
each provider and schedule behind each other.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from clinic.booking.domain.errors import NotFoundError
from clinic.booking.domain.reference import (
    AppointmentType,
    Location,
    Organization,
    Patient,
    Resource,
)
from clinic.booking.domain.schedule import Schedule
from clinic.booking.domain.tenancy import owned

A = TypeVar("A", bound=Aggregate)
REFERENCE_TYPES: tuple[type[Aggregate], ...] = (
    Organization,
    Location,
    Resource,
    AppointmentType,
    Patient,
    Schedule,
)
# What a booking decision depends on: a save is refused if one of these changed after the
# position it decided at. Patients are read only to check they exist and belong to the
# organisation, which never changes, so registering patients never disturbs bookings.
GUARDED_TYPES: tuple[type[Aggregate], ...] = tuple(t for t in REFERENCE_TYPES if t is not Patient)
GUARDED_PATIENT_EVENTS: tuple[type[Any], ...] = (Patient.MergedInto,)  # type: ignore[attr-defined]
"""The one patient fact a booking depends on: a merged duplicate takes no new bookings (merges
are rare, so guarding them costs nothing)."""
BATCH = 500


def guarded_topics() -> list[str]:
    """The event topics whose events make a booking decided before them stale."""
    return [*event_topics(GUARDED_TYPES), *(get_topic(e) for e in GUARDED_PATIENT_EVENTS)]


def event_topics(classes: tuple[type[Aggregate], ...]) -> list[str]:
    return sorted(
        get_topic(value)
        for cls in classes
        for value in vars(cls).values()
        if isinstance(value, type) and issubclass(value, CanMutateAggregate)
    )


class ReferenceCache:
    def __init__(self, app: Application[UUID]) -> None:
        self.app = app
        self.topics = event_topics(REFERENCE_TYPES)
        self.items: dict[UUID, Aggregate] = {}
        self.position = 0
        self.lock = threading.Lock()

    def refresh(self) -> None:
        """Apply every reference event recorded since the last refresh."""
        recorder = self.app.recorder
        since = getattr(recorder, "notifications_since", None)
        if since is not None:  # one round trip on PostgreSQL
            top, batch = since(self.position, self.topics, BATCH)
            if top <= self.position:
                return
            with self.lock:
                while True:
                    for notification in batch:
                        self._apply(notification)
                    if len(batch) < BATCH:
                        break
                    top, batch = since(batch[-1].id, self.topics, BATCH)
                self.position = max(self.position, top)
            return
        top = recorder.max_notification_id() or 0
        if top <= self.position:
            return
        with self.lock:
            for notification in self._log(self.position + 1, top, self.topics):
                self._apply(notification)
            self.position = max(self.position, top)

    def _log(self, start: int, top: int, topics: list[str]) -> Iterator[Notification]:
        """The notifications of ``topics`` from ``start`` to ``top``, read in batches."""
        recorder = self.app.recorder
        while start <= top:
            batch = recorder.select_notifications(start, BATCH, stop=top, topics=topics)
            yield from batch
            if len(batch) < BATCH:
                return
            start = batch[-1].id + 1

    def _apply(self, notification: Notification) -> None:
        aggregate_id = UUID(str(notification.originator_id))
        cached = self.items.get(aggregate_id)
        if cached is None or notification.originator_version <= cached.version:
            return
        if notification.originator_version != cached.version + 1:
            del self.items[aggregate_id]  # a gap: load it afresh next time
            return
        event: Any = self.app.mapper.to_domain_event(notification)
        updated = copy.deepcopy(cached)  # readers keep a consistent old copy
        event.mutate(updated)
        self.items[aggregate_id] = updated

    def warm(self) -> int:
        """Load every guarded reference aggregate (all but patients) by replaying its events
        from the notification log; returns how many are cached. Meant for a process that
        has not served yet; a cache that has moved past this read keeps what it has."""
        top = self.app.recorder.max_notification_id() or 0
        built: dict[UUID, Any] = {}
        for notification in self._log(1, top, event_topics(GUARDED_TYPES)):
            event: Any = self.app.mapper.to_domain_event(notification)
            aggregate_id = UUID(str(notification.originator_id))
            built[aggregate_id] = event.mutate(built.get(aggregate_id))
        with self.lock:
            if self.position > top:
                return len(self.items)
            # Each built copy holds every event up to ``top``; a cached one no more.
            self.items.update(built)
            self.position = top
            return len(self.items)

    def get(self, cls: type[A], aggregate_id: UUID, organization_id: UUID, kind: str) -> A:
        """A reference aggregate of this organisation (read-only: never mutate it)."""
        aggregate: Any = self.items.get(aggregate_id)
        if aggregate is None:
            position = self.position
            try:
                aggregate = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                raise NotFoundError(kind, aggregate_id) from None
            if isinstance(aggregate, REFERENCE_TYPES):
                with self.lock:
                    # Only keep it if no refresh ran meanwhile: otherwise an event applied
                    # by that refresh could be missing from this copy and never come again.
                    if self.position == position and aggregate_id not in self.items:
                        self.items[aggregate_id] = aggregate
        return owned(aggregate, cls, organization_id, kind, aggregate_id)

    def maybe(self, cls: type[A], aggregate_id: UUID, organization_id: UUID) -> A | None:
        try:
            return self.get(cls, aggregate_id, organization_id, cls.__name__)
        except NotFoundError:
            return None
