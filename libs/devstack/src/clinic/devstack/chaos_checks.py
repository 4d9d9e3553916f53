"""What `make chaos` checks once the faults stop and the projections settle, as pure functions
of what the clients were told and what the services hold (so each can be shown to fail on a
planted fault without a platform)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

LIVE = frozenset({"pending", "booked", "checked-in", "arrived"})
"""Statuses that hold a resource's minutes."""


@dataclass(frozen=True)
class Expected:
    """What the clients were told, in the end, about one appointment they created: its
    status and start after the last accepted change."""

    status: str
    start: dt.datetime


@dataclass(frozen=True)
class Held:
    """One appointment as a service holds it."""

    appointment_id: str
    status: str
    start: dt.datetime
    resources: tuple[tuple[str, dt.datetime, dt.datetime], ...] = ()
    """(resource, from, until) for each participant; empty where the service does not say."""


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    """Accepted (2xx) creations booking does not hold."""
    wrong: list[str] = field(default_factory=list)
    """Held, but not as the last accepted change left it (status or start)."""
    double_booked: list[tuple[str, str, str]] = field(default_factory=list)
    """(resource, appointment, appointment) owning the same minutes."""
    missing_in_projection: list[str] = field(default_factory=list)
    duplicated_in_projection: list[str] = field(default_factory=list)
    different_in_projection: list[str] = field(default_factory=list)
    requests: int = 0
    accepted: int = 0
    faults: int = 0

    @property
    def failed(self) -> bool:
        return any(
            (
                self.lost,
                self.wrong,
                self.double_booked,
                self.missing_in_projection,
                self.duplicated_in_projection,
                self.different_in_projection,
            )
        )


def compare_with_booking(
    expected: Mapping[str, Expected], booking: Mapping[str, Held], findings: Findings
) -> None:
    """Every accepted creation is held by booking once, as its last accepted change left it."""
    for appointment, wanted in sorted(expected.items()):
        held = booking.get(appointment)
        if held is None:
            findings.lost.append(appointment)
        elif held.status != wanted.status or held.start != wanted.start:
            findings.wrong.append(appointment)


def overlaps(appointments: Iterable[Held]) -> list[tuple[str, str, str]]:
    """Live appointments that own the same minutes of one resource."""
    by_resource: dict[str, list[tuple[dt.datetime, dt.datetime, str]]] = defaultdict(list)
    for held in appointments:
        if held.status in LIVE:
            for resource, start, end in held.resources:
                by_resource[resource].append((start, end, held.appointment_id))
    found = []
    for resource, spans in sorted(by_resource.items()):
        spans.sort()
        latest_end, latest_id = None, ""
        for start, end, appointment in spans:
            if latest_end is not None and start < latest_end:
                found.append((resource, latest_id, appointment))
            if latest_end is None or end > latest_end:
                latest_end, latest_id = end, appointment
    return found


def compare_projection(
    booking: Mapping[str, Held], shown: Iterable[Held], findings: Findings, live_only: bool = True
) -> None:
    """A projection (availability's calendars) shows each appointment booking holds live
    once, at the same start and status, and nothing booking does not hold live."""
    counted = Counter(h.appointment_id for h in shown)
    listed = {h.appointment_id: h for h in shown}
    for appointment, held in sorted(booking.items()):
        if live_only and held.status not in LIVE:
            if appointment in listed and listed[appointment].status in LIVE:
                findings.different_in_projection.append(appointment)
            continue
        if counted[appointment] == 0:
            findings.missing_in_projection.append(appointment)
        elif counted[appointment] > 1:
            findings.duplicated_in_projection.append(appointment)
        elif (listed[appointment].status, listed[appointment].start) != (held.status, held.start):
            findings.different_in_projection.append(appointment)
