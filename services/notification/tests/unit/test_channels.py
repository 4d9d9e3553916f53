"""What leaves for each channel: the email's headers and parts, the SMS provider's webhook
signature (Twilio's published example), the backoff between attempts, and what a reply
asks for."""

import datetime as dt
import random
import uuid

import pytest

from clinic.notification.channels import Outgoing
from clinic.notification.dispatcher import Policy
from clinic.notification.mail import compose
from clinic.notification.replies import intent
from clinic.notification.sms import signature, signed_by

MESSAGE = Outgoing(
    message_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
    organization_id=uuid.uuid4(),
    organization="Charité",
    channel="email",
    address="ana@example.org",
    subject="Your appointment on Friday, 12 March 2027 at 10:00 is booked",
    text="Hello Ana,\n\nyour appointment is booked.\n",
    ics=b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
    unsubscribe_url="https://clinic.example/unsubscribe/TOKEN",
)


def test_an_email_names_the_clinic_carries_its_message_id_and_one_click_unsubscribe() -> None:
    mail = compose(MESSAGE, "noreply@clinic.example", "unsubscribe@clinic.example")
    assert str(mail["From"]) == "Charité <noreply@clinic.example>"
    assert "From: =?utf-8?q?Charit=C3=A9?= <noreply@clinic.example>" in mail.as_string()
    assert mail["To"] == "ana@example.org"
    assert mail["Message-ID"] == "<00000000-0000-4000-8000-000000000001@clinic.example>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["List-Unsubscribe"] == (
        "<mailto:unsubscribe@clinic.example?subject=unsubscribe>, "
        "<https://clinic.example/unsubscribe/TOKEN>"
    )
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.get_body(("plain",)).get_content() == MESSAGE.text
    [ics] = list(mail.iter_attachments())
    assert ics.get_content_type() == "text/calendar"
    assert ics.get_param("method") == "REQUEST"
    assert ics.get_filename() == "appointment.ics"


def test_an_email_without_an_unsubscribe_link_claims_no_one_click() -> None:
    plain = Outgoing(**{**MESSAGE.__dict__, "unsubscribe_url": None, "ics": None})
    mail = compose(plain, "noreply@clinic.example")
    assert mail["List-Unsubscribe"] is None
    assert mail["List-Unsubscribe-Post"] is None
    assert not mail.is_multipart()


def test_the_webhook_signature_is_twilios_published_example() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    form = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    assert signature("12345", url, form) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert signed_by("12345", url, form, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signed_by("12345", url, form | {"Digits": "9999"}, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signed_by("12345", url + "&x=1", form, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert not signed_by("12345", url, form, None)


def test_retries_wait_longer_each_time_up_to_the_cap_and_spread_out() -> None:
    policy = Policy(backoff_base=dt.timedelta(seconds=30), backoff_cap=dt.timedelta(minutes=10))
    rng = random.Random(1)
    for attempts, ceiling in [(1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (20, 600)]:
        waits = [policy.backoff(attempts, rng).total_seconds() for _ in range(200)]
        assert ceiling / 2 <= min(waits)
        assert max(waits) <= ceiling
        assert max(waits) - min(waits) > ceiling / 4  # jittered, not all at once


@pytest.mark.parametrize(
    ("body", "wanted"),
    [
        ("STOP", "opt-out"),
        (" stop ", "opt-out"),
        ("Unsubscribe", "opt-out"),
        ("START", "opt-in"),
        ("help", "help"),
        ("C", "confirm"),
        ("c.", "confirm"),
        ("Sí", "confirm"),
        ("Ja", "confirm"),
        ("please stop calling me", "other"),
        ("", "other"),
    ],
)
def test_a_reply_is_read_by_its_keyword(body: str, wanted: str) -> None:
    assert intent(body) == wanted


def test_a_long_unsubscribe_link_stays_readable_in_the_header() -> None:
    long = Outgoing(**{**MESSAGE.__dict__, "unsubscribe_url": "https://c.example/u/" + "A" * 94})
    raw = compose(long, "noreply@clinic.example").as_string()
    assert f"<https://c.example/u/{'A' * 94}>" in raw
    assert "=?utf-8?" not in raw.split("\n\n", 1)[0].split("List-Unsubscribe:", 1)[1]
