"""Who acted, and which request caused a change: recorded on every event booking stores.

``BookingAggregate`` is the base of booking's aggregates. Its events carry ``metadata``: the
acting party (user id, role, channel), the correlation and causation ids and the W3C trace
context of the request that caused them. The decision loop stamps it on the pending events
of a decision just before they are saved; the relay copies it onto the integration event's
envelope, so one trace and one actor run from a request through Kafka to every consumer.
Events stored before metadata existed read it as None.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.domain import Aggregate


@dataclass(frozen=True)
class Acting:
    """Who asks: a user id, their role, and the channel the request came through."""

    user_id: str = "booking"
    role: str = "system"
    channel: str = "internal"


@dataclass(frozen=True)
class RequestContext:
    """What a command knows of the request that carries it."""

    acting: Acting = field(default_factory=Acting)
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    def metadata(self) -> dict[str, str]:
        values = {
            "actor_id": self.acting.user_id,
            "actor_role": self.acting.role,
            "channel": self.acting.channel,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "traceparent": self.traceparent,
            "tracestate": self.tracestate,
        }
        return {k: v for k, v in values.items() if v}


class BookingAggregate(Aggregate):
    @dataclasses.dataclass(frozen=True)
    class Event(Aggregate.Event):
        metadata: dict[str, str] | None = field(default=None, kw_only=True)

    @dataclasses.dataclass(frozen=True)
    class Created(Event, Aggregate.Created):
        pass


def stamp(events: list[Any], metadata: dict[str, str]) -> None:
    """Record who and which request on events not saved yet (they are frozen once stored)."""
    for pending in events:
        object.__setattr__(pending, "metadata", metadata)
