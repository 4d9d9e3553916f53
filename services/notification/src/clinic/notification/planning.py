"""Which messages an appointment should have, as it stands: pure, so the same answer comes
from any replay, and the store only reconciles what is planned with what exists (messages
sent stay sent; pending ones no longer wanted are superseded).

- Booked: a confirmation at the moment of booking, and the type's reminder plan (each
  reminder ``before_minutes`` before the start on the location's wall clock, so "a day
  before" is the same local time the day before, across a daylight saving change; by its own
  channel or the patient's preferred one). A reminder already due when the booking was made
  is not sent.
- Moved: a notice of the new time, and the reminder plan again for it (the earlier time's
  pending reminders are superseded: their ids name the start they were for).
- Cancelled (by the patient or the clinic): a notice; no reminders. A hold that lapsed was
  never booked: nothing.
- Quiet hours, in the patient's time zone (else the location's): a message due inside them
  waits until they end; a reminder that would then arrive at or after the start is dropped.
- Channel: email or SMS, only with the patient's consent to it and an address for it; a
  message that cannot go out is planned as ``skipped`` with the reason, so it is visible.
- Language: the patient's (``es-MX`` -> ``es``) where templates exist, else the
  organisation's, else English.

Every message id is a UUID derived from the appointment and what the message is for, so
planning twice (redelivery, replay, two instances) never makes a second message.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo

Kind = Literal["confirmation", "reminder", "rescheduled", "cancelled", "offer"]
"""``offer``: a waitlist offer, made by ``waitlist``, never planned from an appointment."""
Channel = Literal["email", "sms"]
LANGUAGES = frozenset({"en", "es", "de"})
"""The languages the templates are written in."""
NAMESPACE = UUID("6f1c1a8e-3b7d-5c2a-9a4e-1d0b7c9e2f10")
ADDRESS_SYSTEMS: dict[Channel, frozenset[str]] = {
    "email": frozenset({"email"}),
    "sms": frozenset({"sms", "phone"}),
}


@dataclass(frozen=True)
class QuietHours:
    """Local wall-clock hours no message goes out in (``start`` to ``end``, across midnight
    when ``end`` is earlier); equal times: none."""

    start: dt.time = dt.time(21)
    end: dt.time = dt.time(8)

    def holds(self, local: dt.time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def release(self, due: dt.datetime, tz: ZoneInfo) -> dt.datetime:
        """``due`` (UTC), or the end of the quiet hours it falls in."""
        local = due.astimezone(tz)
        if not self.holds(local.time()):
            return due
        day = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += dt.timedelta(days=1)  # evening: they end the next morning
        return at_wall_clock(dt.datetime.combine(day, self.end), tz)


def at_wall_clock(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The UTC instant of a naive wall-clock time in ``tz``: the earlier of a repeated hour,
    and for a time the clocks skip, the same distance past the change."""
    return local.replace(tzinfo=tz).astimezone(dt.UTC)


@dataclass(frozen=True)
class Reminder:
    before_minutes: int
    channel: str | None = None


@dataclass(frozen=True)
class Patient:
    preferred_channel: str
    language: str
    consent_sms: bool
    consent_email: bool
    contacts: tuple[tuple[str, str], ...]
    """(system, value) pairs."""
    time_zone: str | None = None


@dataclass(frozen=True)
class Appointment:
    appointment_id: UUID
    organization_id: UUID
    patient_id: UUID
    status: str
    start: dt.datetime
    booked_at: dt.datetime | None
    """When it was (first) booked; None while only held."""
    moved_at: dt.datetime | None = None
    """When it last moved, if it did."""
    cancelled_at: dt.datetime | None = None
    cancelled_by: str | None = None
    time_zone: str = "UTC"
    """The location's."""


@dataclass(frozen=True)
class Planned:
    message_id: UUID
    appointment_id: UUID
    organization_id: UUID
    patient_id: UUID
    kind: Kind
    channel: Channel | None
    address: str | None
    language: str
    due_at: dt.datetime
    before_minutes: int | None = None
    skipped: str | None = None
    """Why it cannot go out (no consent, no address), or None."""


ACTIVE = frozenset({"booked", "arrived", "checked-in"})


def plan_messages(
    appointment: Appointment,
    patient: Patient | None,
    reminders: Sequence[Reminder],
    quiet: QuietHours,
    organization_language: str = "en",
) -> list[Planned]:
    """The messages ``appointment`` should have now. Without the patient's record (it has
    not arrived yet: another topic) nothing is planned; planning runs again when it does."""
    if patient is None or appointment.booked_at is None:
        return []
    place = ZoneInfo(appointment.time_zone)
    tz = ZoneInfo(patient.time_zone) if patient.time_zone else place
    language = _language(patient.language, organization_language)

    def message(
        kind: Kind, channel_wanted: str | None, due: dt.datetime, key: str, before: int | None
    ) -> Planned:
        channel, address, skipped = _channel(channel_wanted or patient.preferred_channel, patient)
        return Planned(
            message_id=uuid.uuid5(NAMESPACE, f"{appointment.appointment_id}/{kind}/{key}"),
            appointment_id=appointment.appointment_id,
            organization_id=appointment.organization_id,
            patient_id=appointment.patient_id,
            kind=kind,
            channel=channel,
            address=address,
            language=language,
            due_at=quiet.release(due, tz),
            before_minutes=before,
            skipped=skipped,
        )

    if appointment.status == "cancelled":
        if appointment.cancelled_at is None or appointment.cancelled_by == "system":
            return []  # a lapsed hold, or the system's own doing: nothing to tell
        return [message("cancelled", None, appointment.cancelled_at, "", None)]
    if appointment.status not in ACTIVE:
        return []
    planned = [message("confirmation", None, appointment.booked_at, "", None)]
    since = appointment.booked_at
    if appointment.moved_at is not None:
        at = appointment.start.isoformat()
        planned.append(message("rescheduled", None, appointment.moved_at, at, None))
        since = max(since, appointment.moved_at)
    local_start = appointment.start.astimezone(place).replace(tzinfo=None)
    for reminder in reminders:
        due = at_wall_clock(local_start - dt.timedelta(minutes=reminder.before_minutes), place)
        if due <= since:
            continue  # booked (or moved) too late for this one
        key = f"{reminder.before_minutes}@{appointment.start.isoformat()}"
        planned_reminder = message("reminder", reminder.channel, due, key, reminder.before_minutes)
        if planned_reminder.due_at < appointment.start:
            planned.append(planned_reminder)
    return planned


def _language(wanted: str, organization: str) -> str:
    for candidate in (wanted, organization):
        base = candidate.split("-", 1)[0].lower()
        if base in LANGUAGES:
            return base
    return "en"


def _channel(wanted: str, patient: Patient) -> tuple[Channel | None, str | None, str | None]:
    """(channel, address, why it cannot go out)."""
    if wanted not in ADDRESS_SYSTEMS:
        return None, None, f"the patient asked for no messages by {wanted}"
    channel: Channel = "sms" if wanted == "sms" else "email"
    consented = patient.consent_sms if channel == "sms" else patient.consent_email
    if not consented:
        return channel, None, f"no consent to {channel}"
    address = next((v for s, v in patient.contacts if s in ADDRESS_SYSTEMS[channel]), None)
    if address is None:
        return channel, None, f"no {channel} address"
    return channel, address, None
