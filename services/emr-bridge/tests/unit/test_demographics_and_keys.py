"""What the bridge sends to booking on an EMR's behalf: demographics read from FHIR and PID
as booking's change, refused whole when any part would be refused; idempotency keys booking
accepts, distinct for distinct requests."""

import pytest

from clinic.emr_bridge import demographics
from clinic.emr_bridge.clinics import idempotency_key
from clinic.emr_bridge.inbound import Message


def pid(text: str) -> list[list[list[str]]]:
    message = Message.parse(f"MSH|^~\\&|A|B|C|D|2027||ADT^A08|1|P|2.5.1\r{text}")
    found = message.segment("PID")
    assert found is not None
    return found


def test_a_pid_becomes_booking_change_with_address_and_phones() -> None:
    change = demographics.from_pid(
        pid(
            "PID|1||M1^^^urn:x^MR||Ruiz^Ana||19800229|F|||Main 1^^Berlin^^10115^DE||"
            "^PRN^CP^^^^^^^^^+4915100001~^NET^Internet^ana@example.org"
        )
    )
    assert change["gender"] == "female"
    assert change["birth_date"] == "1980-02-29"
    assert change["address"]["city"] == "Berlin"
    assert {"system": "email", "value": "ana@example.org"} in change["contacts"]


@pytest.mark.parametrize(
    ("segment", "why"),
    [
        ("PID|1||M1||Ruiz||19800229|F", "given name"),
        ("PID|1||M1||Ruiz^Ana||1980|F", "date"),
        ("PID|1||M1||Ruiz^Ana||19800229|Z", "administrative sex"),
    ],
)
def test_a_pid_booking_would_refuse_is_refused_whole(segment: str, why: str) -> None:
    with pytest.raises(demographics.DemographicsError, match=why):
        demographics.from_pid(pid(segment))


def test_an_update_with_an_identifier_booking_refuses_is_refused_before_anything_changes() -> None:
    change = {"given_name": "Ana", "family_name": "Ruiz", "birth_date": "1980-02-29"}
    demographics.check(change, [("urn:x", "M1")])
    with pytest.raises(demographics.DemographicsError):
        demographics.check(change, [("urn:x", "M" * 101)])
    with pytest.raises(demographics.DemographicsError):
        demographics.check({**change, "birth_date": "1899-12-31"}, [])


def test_idempotency_keys_are_printable_ascii_and_distinct() -> None:
    assert idempotency_key("emr-bridge:a:b") == "emr-bridge:a:b"
    long_a, long_b = "k" * 150 + "a" * 100, "k" * 150 + "b" * 100
    assert idempotency_key(long_a) != idempotency_key(long_b)
    for key in (long_a, "clé", "a\x00b"):
        sent = idempotency_key(key)
        assert sent.isascii()
        assert sent.isprintable()
        assert len(sent) <= 200
