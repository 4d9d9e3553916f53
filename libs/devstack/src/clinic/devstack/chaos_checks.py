"""What `make chaos` checks once the faults stop and the projections settle, as pure functions
of what the clients were told and what the services hold (so each can be shown to fail on a
planted fault without a platform)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from clinic.devstack.chaos_load import Call

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


CHECKS = {
    "lost": "accepted, not held by booking",
    "wrong": "held, not as the last accepted change left it",
    "unexpected": "held live by booking, no client told of it",
    "double_booked": "two live appointments on the same minutes",
    "missing_in_projection": "missing from availability's calendars",
    "duplicated_in_projection": "shown twice by availability",
    "different_in_projection": "shown differently by availability",
    "differs_from_rebuild": "availability differs from its rebuild",
    "missing_in_fhir": "missing from the bridge's FHIR API",
    "different_in_fhir": "shown differently by the FHIR API",
    "messages_missing": "the patient's latest news not sent",
    "messages_doubled": "a step's message made twice",
    "mail_doubled": "an email delivered twice",
    "siu_missing": "a step's SIU message not sent",
    "siu_doubled": "a step's SIU message sent twice",
    "replays_differ": "a repeat with its key not given the first answer",
}
"""Every check: what its findings are (each must be empty)."""


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    """Accepted (2xx) creations booking does not hold."""
    wrong: list[str] = field(default_factory=list)
    """Held, but not as the last accepted change left it (status or start)."""
    unexpected: list[str] = field(default_factory=list)
    """Live appointments booking holds that no client was told of (a request done twice)."""
    double_booked: list[tuple[str, str, str]] = field(default_factory=list)
    """(resource, appointment, appointment) owning the same minutes."""
    missing_in_projection: list[str] = field(default_factory=list)
    duplicated_in_projection: list[str] = field(default_factory=list)
    different_in_projection: list[str] = field(default_factory=list)
    differs_from_rebuild: list[str] = field(default_factory=list)
    missing_in_fhir: list[str] = field(default_factory=list)
    different_in_fhir: list[str] = field(default_factory=list)
    messages_missing: list[tuple[str, str]] = field(default_factory=list)
    """(appointment, kind): the message of the last accepted booking, move or cancellation
    was neither sent nor skipped for a stated reason."""
    messages_doubled: list[tuple[str, str]] = field(default_factory=list)
    """(appointment, kind): more messages of a kind on their way than steps that make it."""
    mail_doubled: list[str] = field(default_factory=list)
    """Message-IDs the mail server received more than once."""
    siu_missing: list[tuple[str, str]] = field(default_factory=list)
    """(appointment, trigger) the EMR's MLLP listener never received."""
    siu_doubled: list[tuple[str, str]] = field(default_factory=list)
    """(appointment, trigger) received under two control ids."""
    replays_differ: list[str] = field(default_factory=list)
    """Decided requests sent once more with their Idempotency-Key whose answer was not the
    first one, replayed."""
    replayed: int = 0
    """How many decided requests were sent once more with their key."""
    uncertain: list[str] = field(default_factory=list)
    """Appointments a request without a decision touched (its effect cannot be expected)."""
    mail_resent: int = 0
    """Emails received again under the same Message-ID because notification was killed
    between the mail server's acceptance and its recording (SMTP cannot be one transaction
    with the database; a mail client shows one message per Message-ID; not a finding)."""
    resent: int = 0
    """SIU messages received again under the same control id (an MLLP retry the EMR drops
    as a duplicate; not a finding)."""
    requests: int = 0
    accepted: int = 0
    faults: int = 0

    @property
    def failed(self) -> bool:
        return any(getattr(self, name) for name in CHECKS)


def uncertain(calls: Iterable[Call]) -> set[str]:
    """Appointments that a request ending without a decision (no answer, a 5xx) touched."""
    return {c.appointment for c in calls if c.appointment and not 0 < c.status < 500}


STATUS_AFTER = {
    "confirm": "booked",
    "cancel": "cancelled",
    "check-in": "checked-in",
    "no-show": "noshow",
}
CREATIONS = {"book": "booked", "hold": "pending"}
"""The requests that create an appointment, and the status they leave it in."""


def expectations(calls: Iterable[Call]) -> dict[str, Expected]:
    """What booking must hold for each accepted creation, after its accepted changes (in
    the order the clients were answered)."""
    expected: dict[str, Expected] = {}
    for call in calls:
        if call.appointment is None or not 200 <= call.status < 300:
            continue
        if call.kind in CREATIONS and call.start is not None:
            expected[call.appointment] = Expected(CREATIONS[call.kind], call.start)
        elif call.kind == "reschedule" and call.start is not None:
            expected[call.appointment] = Expected("booked", call.start)
        elif call.kind in STATUS_AFTER and call.appointment in expected:
            status = STATUS_AFTER[call.kind]
            expected[call.appointment] = Expected(status, expected[call.appointment].start)
    return expected


MESSAGE_OF = {
    "book": "confirmation",
    "confirm": "confirmation",
    "reschedule": "rescheduled",
    "cancel": "cancelled",
}
"""The patient's message each accepted step makes (a hold none; reminders are planned, not
counted)."""
SIU_OF = {
    "book": "S12",
    "confirm": "S12",
    "reschedule": "S13",
    "cancel": "S15",
    "check-in": "S14",
    "no-show": "S26",
}
"""The SIU trigger each accepted step sends the EMR (a hold alone none)."""


def steps(calls: Iterable[Call], of: Mapping[str, str]) -> dict[str, Counter[str]]:
    """For each accepted creation: how many of each message its accepted steps make."""
    made: dict[str, Counter[str]] = {}
    for call in calls:
        if call.appointment is None or not 200 <= call.status < 300:
            continue
        if call.kind in CREATIONS:
            made.setdefault(call.appointment, Counter())
        if call.kind in of and call.appointment in made:
            made[call.appointment][of[call.kind]] += 1
    return made


SETTLED = frozenset({"sent", "skipped"})
"""A message that went out, or that was not sent for a reason it records (no address, the
address opted out)."""
OUTGOING = frozenset({"pending", "sending", "sent", "failed"})
"""A message that went out, or was or is on its way (superseded, skipped and expired ones
never leave)."""


def latest_news(calls: Iterable[Call]) -> dict[str, str]:
    """For each accepted creation, the message of its last accepted booking, move or
    cancellation: what its patient must be told in the end. (Earlier ones may rightly be
    superseded unsent: a confirmation still waiting when the booking is cancelled is never
    sent, and a consumer that catches up on both at once plans only the cancellation.)"""
    last: dict[str, str] = {}
    created: set[str] = set()
    for call in calls:
        if call.appointment is None or not 200 <= call.status < 300:
            continue
        if call.kind in CREATIONS:
            created.add(call.appointment)
        if call.kind in MESSAGE_OF and call.appointment in created:
            last[call.appointment] = MESSAGE_OF[call.kind]
    return last


def compare_messages(
    calls: Iterable[Call], made: Mapping[str, Iterable[tuple[str, str]]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(missing, doubled) for the accepted creations in ``made`` (each one's messages as
    (kind, status)): its latest news neither sent nor skipped; more messages of a kind on
    their way than the steps that make it."""
    calls = list(calls)
    owed, last = steps(calls, MESSAGE_OF), latest_news(calls)
    missing, doubled = [], []
    for appointment, rows in sorted(made.items()):
        rows, news = list(rows), last.get(appointment)
        if news and not any(k == news and s in SETTLED for k, s in rows):
            missing.append((appointment, news))
        going = Counter(k for k, s in rows if s in OUTGOING)
        allowed = owed.get(appointment, Counter())
        doubled += [(appointment, k) for k in sorted(going) if going[k] > allowed[k]]
    return missing, doubled


def compare_counts(
    wanted: Mapping[str, Counter[str]], found: Mapping[str, Counter[str]]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(missing, doubled): each (appointment, kind) found fewer or more times than wanted."""
    missing, doubled = [], []
    for appointment, counts in sorted(wanted.items()):
        seen = found.get(appointment, Counter())
        for kind in sorted(set(counts) | set(seen)):
            if seen[kind] < counts[kind]:
                missing.append((appointment, kind))
            elif seen[kind] > counts[kind]:
                doubled.append((appointment, kind))
    return missing, doubled


def replay_differs(call: Call, status: int, body: Any, replayed: str | None) -> bool:
    """Whether a decided request, sent once more with its key, was not given its first
    answer (the same status and appointment, marked as a replay)."""
    created = call.kind in CREATIONS and call.appointment is not None
    same_id = not created or (isinstance(body, dict) and str(body.get("id")) == call.appointment)
    return status != call.status or replayed != "true" or not same_id


KILL_WINDOW = 5.0
"""Seconds after a delivery within which a kill of notification explains its second one:
the time from the mail server's acceptance to the recording, on a loaded machine."""


def mail_doubled(
    deliveries: Iterable[tuple[str, float]], killed: Iterable[float]
) -> tuple[list[str], int]:
    """(doubled, resent) from each delivery's (Message-ID, time received) and the times
    notification was killed: a Message-ID received again is resent (not a finding) when
    notification was killed after the delivery before it, within ``KILL_WINDOW``, and
    before this one; otherwise it is doubled."""
    kills = sorted(killed)
    times: dict[str, list[float]] = defaultdict(list)
    for message_id, at in deliveries:
        times[message_id].append(at)
    doubled, resent = set(), 0
    for message_id, received in times.items():
        received.sort()
        for before, again in itertools.pairwise(received):
            if any(before <= k <= min(again, before + KILL_WINDOW) for k in kills):
                resent += 1
            else:
                doubled.add(message_id)
    return sorted(doubled), resent


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ between two snapshots (either side missing counts)."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


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
