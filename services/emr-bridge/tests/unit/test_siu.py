"""SIU messages are HL7 v2.5.1 the hl7 package parses back: the segments an EMR expects, times
at the clinic's offset, every identifier, text escaped; each fact becomes the trigger an EMR
expects, and an ACK is read for its code and the control id it answers."""

import datetime as dt

import hl7
import pytest

from clinic.emr_bridge import siu

ENDPOINT = siu.Endpoint("CHARITE", "EPIC", "MAIN")
AT = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.UTC)
START = dt.datetime(2027, 3, 22, 9, 0, tzinfo=dt.UTC)
ANA = siu.Person(
    "p-1", "Ana|Maria", "Ruiz^Soto", dt.date(1980, 2, 29), "female", (("urn:oid:1.2.3", "MRN-1"),)
)
VISIT = siu.Visit(
    "a-1",
    "booked",
    START,
    START + dt.timedelta(minutes=30),
    "t-1",
    "Check-up & ECG",
    "l-1",
    "Mitte",
    "Europe/Berlin",
    ANA,
    (
        siu.Resource("d-1", "provider", "Dr. Adler", "physician"),
        siu.Resource("r-1", "room", "Room 3", "room"),
        siu.Resource("e-1", "device", "ECG 1", "ecg"),
    ),
)


def test_a_booking_is_an_s12_with_every_segment_parsed_back() -> None:
    text = siu.appointment_message(ENDPOINT, "S12", "CB000000000001", AT, VISIT)
    message = hl7.parse(text)
    assert siu.segment_names(text) == [
        "MSH",
        "SCH",
        "PID",
        "PV1",
        "RGS",
        "AIS",
        "AIL",
        "AIP",
        "AIL",
        "AIG",
    ]
    assert str(message.segment("MSH")[9]) == "SIU^S12^SIU_S12"
    assert str(message.segment("MSH")[10]) == "CB000000000001"
    assert str(message.segment("MSH")[12]) == "2.5.1"
    sch = message.segment("SCH")
    assert str(sch[2]) == "a-1^CLINIC"
    assert str(sch[11]) == "^^30^20270322100000+0100^20270322103000+0100"
    assert str(sch[25]).startswith("Booked")
    pid = message.segment("PID")
    assert str(pid[3]).split("~")[0] == "MRN-1^^^urn:oid:1.2.3^MR"
    assert str(pid[5]) == "Ruiz\\S\\Soto^Ana\\F\\Maria"  # escaped, not split
    assert str(pid[7]) == "19800229"
    assert str(message.segment("AIS")[3]) == "t-1^Check-up \\T\\ ECG"
    assert str(message.segment("AIS")[4]) == "20270322100000+0100"  # AIS-4: the start
    assert str(message.segment("AIP")[6]) == "20270322100000+0100"
    assert str(message.segment("AIG")[8]) == "20270322100000+0100"
    assert [str(s[6]) for s in message.segments("AIL")] == ["20270322100000+0100"] * 2
    assert str(message.segment("AIP")[3]) == "d-1^Dr. Adler"


def test_blocked_time_is_an_s23_and_opening_it_an_s24() -> None:
    doctor = siu.Resource("d-1", "provider", "Dr. Adler", "physician")
    text = siu.blocked_message(
        ENDPOINT,
        "S23",
        "CB2",
        AT,
        "x-1",
        "leave",
        START,
        START + dt.timedelta(hours=2),
        "Europe/Berlin",
        doctor,
    )
    assert siu.segment_names(text) == ["MSH", "SCH", "RGS", "AIP"]
    assert "Leave" in str(hl7.parse(text).segment("SCH")[6])
    opened = siu.blocked_message(
        ENDPOINT,
        "S24",
        "CB3",
        AT,
        "x-1",
        "leave",
        START,
        START + dt.timedelta(hours=2),
        "UTC",
        doctor,
    )
    assert str(hl7.parse(opened).segment("RGS")[2]) == "D"


@pytest.mark.parametrize(
    ("event", "payload", "announced", "trigger"),
    [
        ("Appointment.Booked", {}, False, "S12"),
        ("Appointment.Booked", {}, True, None),
        ("Appointment.Held", {}, False, None),
        ("Appointment.HoldExpired", {}, False, None),
        ("Appointment.Cancelled", {}, False, None),
        ("Appointment.Rescheduled", {}, True, "S13"),
        ("Appointment.Cancelled", {}, True, "S15"),
        ("Appointment.AttendanceConfirmed", {}, True, "S14"),
        ("Appointment.StatusChanged", {"status": "noshow"}, True, "S26"),
        ("Appointment.StatusChanged", {"status": "entered-in-error"}, True, "S17"),
        ("Appointment.StatusChanged", {"status": "checked-in"}, True, "S14"),
        ("Appointment.StatusChanged", {"status": "fulfilled"}, True, "S14"),
    ],
)
def test_each_fact_becomes_the_trigger_an_emr_expects(
    event: str, payload: dict[str, str], announced: bool, trigger: str | None
) -> None:
    assert siu.trigger_of(event, payload, announced) == trigger


def test_an_ack_is_read_for_its_code_control_id_and_error() -> None:
    message = hl7.parse(siu.appointment_message(ENDPOINT, "S12", "CB9", AT, VISIT))
    assert siu.parse_ack(str(message.create_ack("AA"))) == ("AA", "CB9", "")
    rejected = (
        "MSH|^~\\&|EPIC|MAIN|CLINIC|CHARITE|20270301||ACK^S12|X|P|2.5.1\rMSA|AR|CB9\r"
        "ERR|^^^207&Application internal error&HL70357"
    )
    code, control, error = siu.parse_ack(rejected)
    assert (code, control) == ("AR", "CB9")
    assert "Application internal error" in error


def test_control_characters_in_text_cannot_start_a_segment() -> None:
    assert siu.escape("a\rb\nc") == "a\\X0D\\b\\X0A\\c"
