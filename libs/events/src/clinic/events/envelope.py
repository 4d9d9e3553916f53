"""The envelope every event travels in (DESIGN section 4)."""

from __future__ import annotations

import builtins
import json
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from clinic.events.catalog import lookup
from clinic.events.payload import EventPayload
from clinic.events.types import UtcDateTime

P = TypeVar("P", bound=EventPayload)

# Header names. Headers carry routing and tracing facts only, never personal data.
HEADER_TYPE = "event-type"
HEADER_SCHEMA_VERSION = "schema-version"
HEADER_EVENT_ID = "event-id"
HEADER_TRACEPARENT = "traceparent"
HEADER_TRACESTATE = "tracestate"


class UnknownEventTypeError(LookupError):
    """The envelope names an event type and version this reader has no payload model for."""

    def __init__(self, event_type: str, schema_version: int) -> None:
        super().__init__(f"unknown event type {event_type!r} version {schema_version}")
        self.event_type = event_type
        self.schema_version = schema_version


class TraceContext(BaseModel):
    """W3C trace context of the request that caused the event."""

    model_config = ConfigDict(frozen=True)

    traceparent: str
    tracestate: str | None = None


class Actor(BaseModel):
    """Who asked for the change: a user id as the caller knows it (never a name), the role
    they acted in, and the channel (patient-portal, front-desk, emr, system, ...)."""

    model_config = ConfigDict(frozen=True)

    user_id: str
    role: str
    channel: str


class Envelope(BaseModel):
    """One fact, with the metadata every consumer needs to order, deduplicate and trace it.

    ``(aggregate_id, aggregate_version)`` identifies the fact for idempotent consumers;
    messages are keyed by ``aggregate_id`` so one aggregate's facts keep their order.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(description="Unique id of this event; stable across redeliveries.")
    type: str = Field(description="Event type, e.g. 'Appointment.Booked'.")
    schema_version: int = Field(ge=1, description="Version of the payload schema for this type.")
    aggregate_id: UUID = Field(description="The aggregate the fact is about; the message key.")
    aggregate_version: int = Field(ge=1, description="Position of the fact in its aggregate.")
    occurred_at: UtcDateTime = Field(description="When the fact was decided, in UTC.")
    organization_id: UUID = Field(description="The tenant that owns the aggregate.")
    correlation_id: UUID | None = Field(default=None, description="The originating request.")
    causation_id: UUID | None = Field(default=None, description="The message that caused this.")
    trace: TraceContext | None = Field(default=None, description="W3C trace context.")
    actor: Actor | None = Field(default=None, description="Who asked for the change.")
    payload: dict[str, Any] = Field(description="The typed payload as JSON.")

    @classmethod
    def wrap(
        cls,
        payload: EventPayload,
        *,
        event_id: UUID,
        aggregate_id: UUID,
        aggregate_version: int,
        occurred_at: Any,
        organization_id: UUID,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        trace: TraceContext | None = None,
        actor: Actor | None = None,
    ) -> Envelope:
        return cls(
            event_id=event_id,
            type=payload.event_type,
            schema_version=payload.schema_version,
            aggregate_id=aggregate_id,
            aggregate_version=aggregate_version,
            occurred_at=occurred_at,
            organization_id=organization_id,
            correlation_id=correlation_id,
            causation_id=causation_id,
            trace=trace,
            actor=actor,
            payload=payload.model_dump(mode="json"),
        )

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Envelope:
        return cls.model_validate(json.loads(data))

    def payload_as(self, model: builtins.type[P]) -> P:
        """Read the payload as ``model``, tolerating fields a newer producer added."""
        if model.event_type != self.type:
            raise TypeError(f"envelope carries {self.type!r}, not {model.event_type!r}")
        return model.read(self.payload)

    def typed_payload(self) -> EventPayload:
        """The payload as its registered model; raises :class:`UnknownEventTypeError`."""
        return self._model().read(self.payload)

    def topic(self) -> str:
        """The topic this event travels on (from its type, without reading the payload)."""
        return str(self._model().topic)

    def _model(self) -> builtins.type[EventPayload]:
        model = lookup(self.type, self.schema_version)
        if model is None:
            raise UnknownEventTypeError(self.type, self.schema_version)
        return model

    def key(self) -> bytes:
        """The Kafka message key: the aggregate id, so its facts stay in one partition."""
        return str(self.aggregate_id).encode()

    def headers(self) -> dict[str, str]:
        """Kafka headers: routing and trace facts only, never personal data."""
        headers = {
            HEADER_TYPE: self.type,
            HEADER_SCHEMA_VERSION: str(self.schema_version),
            HEADER_EVENT_ID: str(self.event_id),
        }
        if self.trace is not None:
            headers[HEADER_TRACEPARENT] = self.trace.traceparent
            if self.trace.tracestate:
                headers[HEADER_TRACESTATE] = self.trace.tracestate
        return headers
