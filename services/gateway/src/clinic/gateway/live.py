"""Live updates: booking's appointment facts, read from Kafka as they are published, pushed
to the web pages that show them (``GET /v1/live``, server-sent events), so that two front
desks never act on a stale screen.

The gateway reads ``booking.appointments.v1`` from its end, in no consumer group and with
nothing committed: a stream carries what happens while it is open, and a page refetches
what it shows when it (re)connects. Each stream sees only its caller's organisation, and
within it only the caller's locations (clinic roles limited to some) or the caller's own
appointments (patients). Facts that do not name a location (a cancellation, a status
change) are placed by the appointments seen before, else by asking booking once.

Kafka being unreachable does not make the gateway unready: the streams say ``paused`` (the
pages show it and refetch when it says ``live`` again) while the reader reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, Gauge

from clinic.events import Topic
from clinic.platform.kafka import KafkaAccess

log = logging.getLogger(__name__)

PLACES_REMEMBERED = 100_000
QUEUE = 256
"""Facts a stream may have waiting; a client this far behind is closed, and reconnects."""


@dataclass(frozen=True)
class Place:
    """Where an appointment is, for deciding who may hear of it."""

    location_id: UUID | None
    patient_id: UUID | None


@dataclass(frozen=True)
class Fact:
    """One appointment fact as a page receives it: what happened to which appointment, at
    which version (the page's calendar shows it once it reaches that version)."""

    event_id: str
    event: str
    organization_id: UUID
    appointment_id: UUID
    version: int
    occurred_at: str
    place: Place
    start: str | None = None
    end: str | None = None
    status: str | None = None

    def data(self) -> str:
        return json.dumps(
            {
                "event": self.event,
                "appointment_id": str(self.appointment_id),
                "version": self.version,
                "occurred_at": self.occurred_at,
                "location_id": str(self.place.location_id) if self.place.location_id else None,
                "start": self.start,
                "end": self.end,
                "status": self.status,
            },
            separators=(",", ":"),
        )


STATUS_OF = {
    "Appointment.Held": "pending",
    "Appointment.Booked": "booked",
    "Appointment.Cancelled": "cancelled",
    "Appointment.HoldExpired": "cancelled",
}


def fact_of(raw: bytes) -> Fact | None:
    """The fact an envelope on the appointments topic carries (None: not one a page shows,
    or not readable)."""
    try:
        envelope = json.loads(raw)
        payload = envelope["payload"]
        appointment = UUID(str(payload["appointment_id"]))
        location = payload.get("location_id")
        patient = payload.get("patient_id")
        event = str(envelope["type"])
        return Fact(
            event_id=str(envelope["event_id"]),
            event=event,
            organization_id=UUID(str(envelope["organization_id"])),
            appointment_id=appointment,
            version=int(envelope["aggregate_version"]),
            occurred_at=str(envelope["occurred_at"]),
            place=Place(
                UUID(str(location)) if location else None, UUID(str(patient)) if patient else None
            ),
            start=payload.get("start"),
            end=payload.get("end"),
            status=payload.get("status") or STATUS_OF.get(event),
        )
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(eq=False)
class Stream:
    """One open page: who it is for, and the facts waiting to be sent to it."""

    organization_id: UUID
    location_ids: frozenset[UUID] | None
    """None: every location of the organisation."""
    patient_id: UUID | None
    """A patient's stream: only their own appointments."""
    user: str = ""
    """Whose stream (the token's subject), counted against GATEWAY_LIVE_MAX_STREAMS_PER_USER."""
    queue: asyncio.Queue[Fact | str] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    overflowed: bool = False

    def limited(self) -> bool:
        return self.patient_id is not None or self.location_ids is not None

    def may_see(self, fact: Fact, place: Place) -> bool:
        if fact.organization_id != self.organization_id:
            return False
        if self.patient_id is not None:
            return place.patient_id == self.patient_id
        if self.location_ids is not None:
            return place.location_id in self.location_ids
        return True

    def offer(self, item: Fact | str) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


Locate = Callable[[UUID, UUID], Awaitable[Place | None]]
"""(organisation, appointment) -> where it is, asked of booking for one not seen."""


class LiveMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.streams = Gauge(
            "gateway_live_streams",
            "Live-update streams (GET /v1/live) open now.",
            registry=registry,
        )
        self.connected = Gauge(
            "gateway_live_reader_connected",
            "1 while the gateway reads booking's appointment facts from Kafka for the live "
            "streams, 0 while it reconnects.",
            registry=registry,
        )


class LiveHub:
    """Reads the appointment facts and hands each to the streams that may see it."""

    def __init__(self, locate: Locate, metrics: LiveMetrics) -> None:
        self.locate = locate
        self.metrics = metrics
        self.streams: set[Stream] = set()
        self.live = False
        self._places: OrderedDict[UUID, Place] = OrderedDict()

    def open(self, stream: Stream) -> None:
        self.streams.add(stream)
        self.metrics.streams.set(len(self.streams))
        stream.offer("live" if self.live else "paused")

    def streams_of(self, organization_id: UUID, user: str) -> int:
        return sum(
            1 for s in self.streams if s.organization_id == organization_id and s.user == user
        )

    def close(self, stream: Stream) -> None:
        self.streams.discard(stream)
        self.metrics.streams.set(len(self.streams))

    def connected(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            self.metrics.connected.set(1 if live else 0)
            for stream in list(self.streams):
                stream.offer("live" if live else "paused")

    def _remember(self, appointment: UUID, place: Place) -> None:
        self._places[appointment] = place
        self._places.move_to_end(appointment)
        while len(self._places) > PLACES_REMEMBERED:
            self._places.popitem(last=False)

    async def place_of(self, fact: Fact) -> Place | None:
        known = self._places.get(fact.appointment_id)
        if fact.place.location_id is not None:
            patient = fact.place.patient_id or (known.patient_id if known else None)
            place = Place(fact.place.location_id, patient)
            self._remember(fact.appointment_id, place)
            return place
        if known is not None:
            return known
        if not any(s.limited() and s.organization_id == fact.organization_id for s in self.streams):
            return Place(None, None)  # only organisation-wide streams: no need to ask
        found = await self.locate(fact.organization_id, fact.appointment_id)
        if found is not None:
            self._remember(fact.appointment_id, found)
        return found

    async def publish(self, fact: Fact) -> None:
        if not any(s.organization_id == fact.organization_id for s in self.streams):
            if fact.place.location_id is not None:
                self._remember(fact.appointment_id, fact.place)
            return
        place = await self.place_of(fact)
        for stream in list(self.streams):
            if (place is not None and stream.may_see(fact, place)) or (
                place is None
                and not stream.limited()
                and stream.organization_id == fact.organization_id
            ):
                stream.offer(fact)


class KafkaReader:
    """Feeds a hub from ``booking.appointments.v1``, from its end, reconnecting with backoff."""

    def __init__(self, access: KafkaAccess, hub: LiveHub, client_id: str = "gateway-live") -> None:
        self.access = access
        self.hub = hub
        self.client_id = client_id
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="gateway-live-reader")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 0.5
        while True:
            consumer = AIOKafkaConsumer(
                str(Topic.APPOINTMENTS),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                client_id=self.client_id,
                **self.access.options(),
            )
            try:
                await consumer.start()
                self.hub.connected(True)
                delay = 0.5
                async for record in consumer:
                    fact = fact_of(record.value) if record.value else None
                    if fact is not None:
                        await self.hub.publish(fact)
            except (KafkaError, OSError) as error:  # every one means: reconnect
                log.warning("live updates paused: %s", error)
            finally:
                self.hub.connected(False)
                with contextlib.suppress(Exception):
                    await consumer.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


def frame(item: Fact | str) -> str:
    """One server-sent event."""
    if isinstance(item, Fact):
        return f"event: appointment\nid: {item.event_id}\ndata: {item.data()}\n\n"
    return f"event: {item}\ndata: {{}}\n\n"


def location_and_patient(body: dict[str, Any]) -> Place | None:
    """Where an appointment is, from booking's answer for it."""
    try:
        location = body.get("location_id")
        patient = body.get("patient_id")
        return Place(
            UUID(str(location)) if location else None, UUID(str(patient)) if patient else None
        )
    except ValueError:
        return None
