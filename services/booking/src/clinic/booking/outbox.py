"""Reading the outbox: notification log entries translated into integration envelopes.

Shared by the relay (which publishes them) and the replay API (from which a projection can
rebuild without Kafka). Translation needs each aggregate as it stood right after the event;
the reader keeps a bounded copy of recent aggregates and advances them event by event,
loading from the store at the right version only when it starts mid-stream.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from uuid import UUID

from clinic.booking.application import Bookings
from clinic.booking.translate import envelope
from clinic.events import Envelope

CONTEXT_SIZE = 20_000


class OutboxReader:
    def __init__(self, bookings: Bookings, context_size: int = CONTEXT_SIZE) -> None:
        self.bookings = bookings
        self.context: OrderedDict[UUID, Any] = OrderedDict()
        self.context_size = context_size

    def read(self, after: int, limit: int) -> tuple[int, list[tuple[int, Envelope | None]]]:
        """(the newest notification id, [(notification id, envelope or None)]) after ``after``."""
        recorder = self.bookings.recorder
        top = recorder.max_notification_id() or 0
        batch = []
        for notification in recorder.select_notifications(after + 1, limit):
            event: Any = self.bookings.mapper.to_domain_event(notification)
            batch.append((notification.id, envelope(event, self.after(event))))
        return top, batch

    def after(self, event: Any) -> Any:
        aggregate_id = UUID(str(event.originator_id))
        version = event.originator_version
        cached = self.context.pop(aggregate_id, None)
        if version == 1:
            aggregate = event.mutate(None)
        elif cached is not None and cached.version == version - 1:
            aggregate = event.mutate(cached)
        else:
            aggregate = self.bookings.repository.get(aggregate_id, version=version)
        self.context[aggregate_id] = aggregate
        while len(self.context) > self.context_size:
            self.context.popitem(last=False)
        return aggregate

    def reset(self) -> None:
        self.context.clear()
