"""Waitlist offers, the pure part: which freed time suits which waiting patient, and in what
order they are asked.

A freed time (an appointment cancelled, moved away or entered in error, a hold that lapsed)
suits an entry when it is for the same appointment type, at one of the entry's locations,
with the entry's provider when it names one, on a local day between its earliest and latest
and on a weekday it accepts, and at a time of day it accepts (morning before 12:00,
afternoon before 17:00, evening after; none given: any). Entries are asked by the priority
the clinic gave them (1 first), then in the order they joined (who waited longest first);
each patient at most once per freed time, and never while another offer of theirs for an
overlapping time is live.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID
from zoneinfo import ZoneInfo

NAMESPACE = UUID("2b8f3c1e-7d4a-5e6b-9c0d-3f1a2b4c5d6e")


@dataclass(frozen=True)
class FreedTime:
    organization_id: UUID
    location_id: UUID
    appointment_type_id: UUID
    start: dt.datetime
    end: dt.datetime
    resources: tuple[tuple[str, UUID], ...]
    """(role, resource) the freed appointment held: what a hold for the same time asks for."""
    time_zone: str

    @property
    def local_start(self) -> dt.datetime:
        return self.start.astimezone(ZoneInfo(self.time_zone))


@dataclass(frozen=True)
class Waiting:
    entry_id: UUID
    patient_id: UUID
    appointment_type_id: UUID
    location_ids: tuple[UUID, ...]
    earliest: dt.date
    latest: dt.date
    times_of_day: tuple[str, ...]
    provider_id: UUID | None
    joined_at: dt.datetime
    priority: int = 5
    """1 (most urgent) to 9, as the clinic set it."""
    weekdays: tuple[int, ...] = ()
    """ISO weekdays (1 = Monday) the patient can come; empty: any."""


def freed_id(appointment_id: UUID, start: dt.datetime) -> UUID:
    """The same freed time has the same id however often its event is seen."""
    return uuid.uuid5(NAMESPACE, f"{appointment_id}/{start.isoformat()}")


def time_of_day(local: dt.datetime) -> str:
    if local.hour < 12:
        return "morning"
    return "afternoon" if local.hour < 17 else "evening"


def suits(entry: Waiting, freed: FreedTime) -> bool:
    local = freed.local_start
    return (
        entry.appointment_type_id == freed.appointment_type_id
        and freed.location_id in entry.location_ids
        and (entry.provider_id is None or entry.provider_id in {r for _, r in freed.resources})
        and entry.earliest <= local.date() <= entry.latest
        and (not entry.times_of_day or time_of_day(local) in entry.times_of_day)
        and (not entry.weekdays or local.isoweekday() in entry.weekdays)
    )


def candidates(
    entries: Iterable[Waiting],
    freed: FreedTime,
    asked: Sequence[UUID] = (),
    busy: Sequence[UUID] = (),
) -> list[Waiting]:
    """Who to ask, in order: suited entries, except those already asked for this time and
    patients with a live offer overlapping it; one entry per patient (their earliest)."""
    chosen: dict[UUID, Waiting] = {}
    for entry in sorted(entries, key=lambda e: (e.priority, e.joined_at, str(e.entry_id))):
        if entry.entry_id in asked or entry.patient_id in busy or entry.patient_id in chosen:
            continue
        if suits(entry, freed):
            chosen[entry.patient_id] = entry
    return list(chosen.values())
