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
from enum import StrEnum
from typing import Any

from eventsourcing.domain import Aggregate

from clinic.booking.domain.errors import StaffOnlyError
from clinic.booking.domain.values import Actor


class Role(StrEnum):
    """The roles a caller acts in: the gateway's token roles, and the internal callers."""

    PATIENT = "patient"
    FRONT_DESK = "front_desk"
    PROVIDER = "provider"
    CLINIC_ADMIN = "clinic_admin"
    ORG_ADMIN = "org_admin"
    OPS = "ops"
    EMR = "emr"
    """An EMR, through the bridge: clinic staff working in their own system."""
    SYSTEM = "system"
    """A platform service acting on its own (the hold sweeper, the waitlist offers)."""


STAFF = frozenset({Role.FRONT_DESK, Role.PROVIDER, Role.CLINIC_ADMIN, Role.ORG_ADMIN})
"""Clinic staff: they may overbook and are not bound by the patients' cut-offs."""


@dataclass(frozen=True)
class Acting:
    """Who asks: a user id, their role, and the channel the request came through."""

    user_id: str = "booking"
    role: Role = Role.SYSTEM
    channel: str = "internal"

    @property
    def is_patient(self) -> bool:
        return self.role == Role.PATIENT

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF

    def check_not_patient(self, what: str) -> None:
        """Refuse what only the clinic (or the platform) does, when a patient asks."""
        if self.is_patient:
            raise StaffOnlyError(f"patients cannot {what}; the clinic does")

    @property
    def kind(self) -> Actor:
        """The side the actor is on, as appointments record it (``booked_by``)."""
        if self.is_patient:
            return Actor.PATIENT
        if self.is_staff or self.role == Role.EMR:
            return Actor.CLINIC
        return Actor.SYSTEM


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
            "actor_role": str(self.acting.role),
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


def acting_of(metadata: dict[str, str]) -> Acting | None:
    """The acting party an event's metadata names (None before actors were recorded)."""
    if not metadata.get("actor_id"):
        return None
    role = metadata.get("actor_role", "system")
    return Acting(
        metadata["actor_id"],
        Role(role) if role in {r.value for r in Role} else Role.SYSTEM,
        metadata.get("channel", "internal"),
    )


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` (``00-<trace id>-<span id>-<flags>``)."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def stamp(events: list[Any], metadata: dict[str, str]) -> None:
    """Record who and which request on events not saved yet (they are frozen once stored)."""
    for pending in events:
        object.__setattr__(pending, "metadata", metadata)
