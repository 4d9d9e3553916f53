"""What a message says: its subject, email body and SMS in the patient's language (Jinja2
templates in ``templates/``, one per language), and for a booking, a move or a cancellation,
an iCalendar ``.ics`` the patient's calendar can take (``icalendar``).

Times are the location's wall clock, written the way each language writes dates; the type's
name and preparation are the patient-facing ones in that language where the clinic wrote
them. Rendering is pure: the dispatcher gives it what the tables hold when it sends.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import icalendar
import jinja2

from clinic.notification.planning import LANGUAGES, Kind

WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "de": ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
           "September", "Oktober", "November", "Dezember"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
           "septiembre", "octubre", "noviembre", "diciembre"),
}  # fmt: skip


STREET = ("line", "line1", "line2", "line3", "street", "address")
TOWN = ("postal_code", "postalcode", "zip", "city", "district", "state", "country")


def postal(address: dict[str, str]) -> str:
    """An address in the order it is written on an envelope (street, then postal code and
    town, then region and country; any other parts after), whatever order its keys came
    in (PostgreSQL's ``jsonb`` keeps none)."""
    known = {k.lower().replace("-", "_"): v for k, v in address.items() if v}
    parts = [known.pop(k) for k in STREET if k in known]
    town = " ".join(
        known.pop(k) for k in ("postal_code", "postalcode", "zip", "city") if k in known
    )
    parts += [town] if town else []
    parts += [known.pop(k) for k in TOWN if k in known]
    parts += [v for _, v in sorted(known.items())]
    return ", ".join(parts)


def when(start: dt.datetime, tz: ZoneInfo, language: str) -> str:
    """The local date and time, as the language writes them."""
    local = start.astimezone(tz)
    day, month = WEEKDAYS[language][local.weekday()], MONTHS[language][local.month - 1]
    clock = local.strftime("%H:%M")
    if language == "de":
        return f"{day}, {local.day}. {month} {local.year} um {clock} Uhr"
    if language == "es":
        return f"{day}, {local.day} de {month} de {local.year} a las {clock}"
    return f"{day}, {local.day} {month} {local.year} at {clock}"


@dataclass(frozen=True)
class Context:
    """What the tables hold about one message when it is sent."""

    message_id: UUID
    appointment_id: UUID
    kind: Kind
    language: str
    given_name: str
    organization: str
    type_name: str
    patient_facing: dict[str, dict[str, str]]
    start: dt.datetime
    end: dt.datetime
    location: str
    address: dict[str, str]
    time_zone: str
    version: int
    written_at: dt.datetime
    """When the message is written (the calendar entry's DTSTAMP)."""
    links: dict[str, str] = field(default_factory=dict)
    """Action -> signed URL (confirm, cancel, reschedule; accept for an offer)."""
    held_until: dt.datetime | None = None
    """Until when an offer's time is held for the patient."""


@dataclass(frozen=True)
class Written:
    subject: str
    email: str
    sms: str
    ics: bytes | None


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("clinic.notification", "templates"),
        # Plain text (text/plain email bodies and SMS), never HTML: nothing to escape for.
        autoescape=False,  # noqa: S701
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def write(context: Context, calendar: bool = True) -> Written:
    """The message's texts; its calendar entry too unless ``calendar`` is False (an SMS)."""
    language = context.language if context.language in LANGUAGES else "en"
    text = context.patient_facing.get(language, {})
    values: dict[str, Any] = {
        "kind": context.kind,
        "given_name": context.given_name,
        "organization": context.organization,
        "visit": text.get("name") or context.type_name,
        "preparation": text.get("preparation", ""),
        "when": when(context.start, ZoneInfo(context.time_zone), language),
        "place": context.location,
        "address": postal(context.address),
        "links": context.links,
        "until": (
            when(context.held_until, ZoneInfo(context.time_zone), language)
            if context.held_until is not None
            else ""
        ),
    }
    module: Any = _environment().get_template(f"{language}.j2").module  # its macros
    subject = " ".join(str(module.subject(values)).split())  # one line: a header
    return Written(
        subject=subject,
        email=re.sub(r"\n{3,}", "\n\n", str(module.email(values)).strip()) + "\n",
        sms=" ".join(str(module.sms(values)).split()),
        ics=(
            calendar_entry(context, values["visit"])
            if calendar and context.kind not in ("reminder", "offer")
            else None
        ),
    )


def calendar_entry(context: Context, summary: str) -> bytes:
    """The appointment as an iCalendar event (RFC 5545): the same UID every time, a higher
    SEQUENCE for each change, METHOD:CANCEL once cancelled, so calendars update in place."""
    cancelled = context.kind == "cancelled"
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//clinic//notification//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    event = icalendar.Event()
    event.add("uid", f"{context.appointment_id}@clinic")
    event.add("sequence", context.version)
    event.add("dtstamp", context.written_at.astimezone(dt.UTC))
    event.add("dtstart", context.start.astimezone(dt.UTC))
    event.add("dtend", context.end.astimezone(dt.UTC))
    event.add("summary", summary)
    address = postal(context.address)
    event.add("location", f"{context.location}, {address}" if address else context.location)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    calendar.add_component(event)
    return bytes(calendar.to_ical())
