"""What messages say: each kind in each language, the type's patient-facing name and
preparation, the location's wall-clock time written as the language writes it, action
links, one-line subjects, and a calendar entry that updates in place."""

import datetime as dt
import uuid
from dataclasses import replace

import icalendar
import pytest

from clinic.notification.texts import Context, write

START = dt.datetime(2027, 3, 29, 7, 30, tzinfo=dt.UTC)  # 09:30 in Berlin, summer time
BASE = Context(
    message_id=uuid.UUID(int=1),
    appointment_id=uuid.UUID(int=2),
    kind="confirmation",
    language="en",
    given_name="Ana",
    organization="Charité",
    type_name="Check-up",
    patient_facing={
        "de": {"name": "Vorsorge", "preparation": "Bitte nüchtern kommen."},
        "es": {"name": "Revisión"},
    },
    start=START,
    end=START + dt.timedelta(minutes=30),
    location="Mitte",
    address={"line": "Invalidenstr. 1", "city": "Berlin"},
    time_zone="Europe/Berlin",
    version=3,
    written_at=START - dt.timedelta(days=5),
    links={"confirm": "https://c.example/a/1", "cancel": "https://c.example/a/2"},
)


def test_a_confirmation_in_english_says_what_when_where_and_how_to_act() -> None:
    written = write(BASE)

    assert written.subject == "Your appointment on Monday, 29 March 2027 at 09:30 is booked"
    assert "Check-up on Monday, 29 March 2027 at 09:30 at Mitte" in written.email
    assert "Address: Invalidenstr. 1, Berlin" in written.email
    assert "Confirm: https://c.example/a/1" in written.email
    assert "Cancel: https://c.example/a/2" in written.email
    assert written.sms == (
        "Charité: booked: Check-up, Monday, 29 March 2027 at 09:30, Mitte. "
        "Reply C to confirm. Reply STOP to opt out."
    )


def test_german_and_spanish_use_their_words_dates_and_the_clinics_texts() -> None:
    german = write(replace(BASE, language="de", kind="reminder"))
    spanish = write(replace(BASE, language="es", kind="rescheduled"))

    assert german.subject == "Erinnerung: Vorsorge am Montag, 29. März 2027 um 09:30 Uhr"
    assert "Bitte beachten: Bitte nüchtern kommen." in german.email
    assert german.ics is None  # a reminder changes nothing in the calendar
    assert spanish.subject == "Su cita se ha cambiado al lunes, 29 de marzo de 2027 a las 09:30"
    assert "Revisión es ahora el lunes, 29 de marzo de 2027 a las 09:30" in spanish.email


@pytest.mark.parametrize("language", ["en", "de", "es", "fr"])
@pytest.mark.parametrize("kind", ["confirmation", "reminder", "rescheduled", "cancelled", "offer"])
def test_every_kind_renders_in_every_language_with_a_one_line_subject(
    language: str, kind: str
) -> None:
    written = write(replace(BASE, language=language, kind=kind, links={}))  # type: ignore[arg-type]

    assert written.subject
    assert "\n" not in written.subject
    assert written.email.startswith(("Hello Ana", "Guten Tag Ana", "Hola, Ana"))
    assert "Charité" in written.sms
    assert "STOP" in written.sms
    assert "{" not in written.email + written.sms


def test_the_calendar_entry_keeps_its_uid_counts_changes_and_cancels() -> None:
    booked = icalendar.Calendar.from_ical(write(BASE).ics)
    cancelled = icalendar.Calendar.from_ical(write(replace(BASE, kind="cancelled", version=4)).ics)

    [event] = booked.walk("VEVENT")
    [gone] = cancelled.walk("VEVENT")
    assert str(event["uid"]) == str(gone["uid"]) == f"{uuid.UUID(int=2)}@clinic"
    assert (booked["method"], event["status"], event["sequence"]) == ("REQUEST", "CONFIRMED", 3)
    assert (cancelled["method"], gone["status"], gone["sequence"]) == ("CANCEL", "CANCELLED", 4)
    assert event.decoded("dtstart") == START
    assert str(event["location"]) == "Mitte, Invalidenstr. 1, Berlin"


def test_an_address_is_written_street_first_whatever_order_its_parts_come_in() -> None:
    from clinic.notification.texts import postal

    assert postal({"city": "Berlin", "street": "Invalidenstr. 1"}) == "Invalidenstr. 1, Berlin"
    assert postal(
        {"country": "DE", "postal_code": "10115", "city": "Berlin", "line": "Invalidenstr. 1",
         "floor": "3"}
    ) == "Invalidenstr. 1, 10115 Berlin, DE, 3"  # fmt: skip
    assert postal({}) == ""


def test_an_offer_says_until_when_the_time_is_held_and_carries_only_its_accept_link() -> None:
    offer = replace(
        BASE, kind="offer", links={"accept": "https://c.example/l/TOKEN"},
        held_until=START - dt.timedelta(days=1, hours=2),
    )  # fmt: skip
    english, german = write(offer), write(replace(offer, language="de"))
    assert english.subject == "An earlier appointment is free: Monday, 29 March 2027 at 09:30"
    assert "holding it for you until Sunday, 28 March 2027 at 07:30" in english.email
    assert "Take this appointment: https://c.example/l/TOKEN" in english.email
    assert english.sms.endswith("until Sunday, 28 March 2027 at 07:30: https://c.example/l/TOKEN "
                                "Reply STOP to opt out.")  # fmt: skip
    assert "Reply C" not in english.sms
    assert english.ics is None  # not booked until accepted
    assert "Termin annehmen: https://c.example/l/TOKEN" in german.email
