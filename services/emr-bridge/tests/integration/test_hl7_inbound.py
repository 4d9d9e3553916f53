"""HL7 from an EMR over MLLP, end to end with booking and the bridge as processes: SRM^S01
books and SRR^S01 answers with our appointment id after booking decided; the same message
again gets the same answer and books nothing more; S03 moves and S04 cancels; a taken time
is AE; malformed messages, unknown peers and facilities, unknown patients are AR and change
nothing; ADT^A08 and FHIR PUT Patient update demographics only where the organisation made
the EMR their source of truth."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from emr_client import ADMIN_TOKEN, admin_client, fhir_client

from clinic.devstack.components import free_port
from clinic.devstack.testing import STAFF, ClinicIds, RunningService, command, open_clinic
from clinic.emr_bridge.fhir import validated
from clinic.emr_bridge.inbound import Message

MRN = "urn:oid:1.2.3"


def exchange(port: int, text: str) -> Message:
    async def go() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x0b" + text.replace("\n", "\r").encode() + b"\x1c\r")
        await writer.drain()
        block = await asyncio.wait_for(reader.readuntil(b"\x1c\r"), 30)
        writer.close()
        return block[1:-2]

    return Message.parse(asyncio.run(go()).decode())


class Platform:
    def __init__(self, start: Callable[..., RunningService], schema: str) -> None:
        self.mllp = free_port()
        self.booking = start("clinic.booking", "BOOKING_", BOOKING_LOAD_DEMO_DATA="false")
        self.bridge = start(
            "clinic.emr_bridge",
            "EMR_BRIDGE_",
            schema=f"{schema}_br",
            EMR_BRIDGE_CONSUMER_GROUP=f"bridge-{schema}",
            BOOKING_URL=self.booking.url,
            EMR_BRIDGE_MLLP_PORT=str(self.mllp),
            EMR_BRIDGE_HL7_SEND_ENABLED="false",
            EMR_BRIDGE_ADMIN_TOKEN=ADMIN_TOKEN,
        )
        self.b = httpx.Client(base_url=self.booking.url, timeout=30, headers=STAFF)
        self.a = admin_client(self.bridge.url)
        self.clinic: ClinicIds = open_clinic(self.b, "Praxis Ost")
        self.org = self.clinic.org
        self.patient = command(
            self.b,
            f"{self.clinic.base}/patients",
            {
                "given_name": "Ana",
                "family_name": "Ruiz",
                "birth_date": "1980-02-29",
                "language": "en",
                "identifiers": [{"system": MRN, "value": "MRN-9"}],
            },
        )["id"]
        endpoint = {
            "host": "127.0.0.1",
            "port": 9,
            "receiving_application": "EPIC",
            "receiving_facility": "MAIN",
            "allowed_addresses": ["127.0.0.1/32"],
        }
        assert (
            self.a.put(
                f"/admin/organizations/{self.org}/hl7-endpoints/epic", json=endpoint
            ).status_code
            == 200
        )
        self.f = fhir_client(self.bridge.url, self.org)
        deadline = dt.datetime.now() + dt.timedelta(seconds=30)
        while self.f.get(f"/Patient/{self.patient}").status_code != 200:
            assert dt.datetime.now() < deadline, "the patient never reached the bridge"

    def appointments(self) -> list[dict[str, Any]]:
        found = self.b.get(f"{self.clinic.base}/patients/{self.patient}/appointments")
        assert found.status_code == 200, found.text
        items: list[dict[str, Any]] = found.json()["appointments"]
        return items


@pytest.fixture
def platform(start_service: Callable[..., RunningService], schema_name: str) -> Iterator[Platform]:
    running = Platform(start_service, schema_name)
    yield running
    for client in (running.a, running.b, running.f):
        client.close()


def srm(
    p: Platform,
    trigger: str,
    control: str,
    start: dt.datetime | None = None,
    filler: str = "",
    facility: str = "MAIN",
    mrn: str = "MRN-9",
) -> str:
    when = start.strftime("%Y%m%d%H%M%S+0000") if start else ""
    return "\r".join(
        [
            f"MSH|^~\\&|EPIC|{facility}|CLINIC|CHARITE|20270101120000||SRM^{trigger}^SRM_S01|"
            f"{control}|P|2.5.1",
            f"ARQ|PL-{control}|{filler}||||ROUTINE^changed plans",
            f"PID|1||{mrn}^^^{MRN}^MR||Ruiz^Ana||19800229|F",
            "RGS|1|A",
            f"AIS|1|A|{p.clinic.kind}^Check-up|{when}",
            f"AIL|1|A|{p.clinic.location}",
            f"AIP|1|A|{p.clinic.doctor}^Dr. A|physician",
        ]
    )


def day(days: int, hour: int) -> dt.datetime:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )


def test_srm_books_moves_and_cancels_once_each_after_booking_decided(platform: Platform) -> None:
    p = platform
    answer = exchange(p.mllp, srm(p, "S01", "C1", day(3, 9)))
    assert answer.value("MSA", 1) == "AA", answer.text
    assert answer.value("MSH", 9, 0) == "SRR"
    assert answer.value("MSA", 2) == "C1"
    aid = answer.value("SCH", 2)
    assert answer.value("SCH", 1) == "PL-C1"
    assert exchange(p.mllp, srm(p, "S01", "C1", day(3, 9))).text == answer.text  # replayed
    history = p.b.get(f"{p.clinic.base}/appointments/{aid}/history").json()["events"]
    assert [e["actor"]["channel"] for e in history] == ["hl7"]

    taken = exchange(p.mllp, srm(p, "S01", "C2", day(3, 9)))
    assert taken.value("MSA", 1) == "AE", taken.text
    assert taken.segment("ERR") is not None

    moved = exchange(p.mllp, srm(p, "S03", "C3", day(4, 10), filler=f"{aid}^CLINIC"))
    assert moved.value("MSA", 1) == "AA", moved.text
    booked = p.b.get(f"{p.clinic.base}/appointments/{aid}").json()
    assert dt.datetime.fromisoformat(booked["start"]) == day(4, 10)
    cancelled = exchange(p.mllp, srm(p, "S04", "C4", filler=f"{aid}^CLINIC"))
    assert cancelled.value("MSA", 1) == "AA", cancelled.text
    assert p.b.get(f"{p.clinic.base}/appointments/{aid}").json()["status"] == "cancelled"
    trail = p.f.get("/AuditEvent", params={"agent": "hl7:epic", "_count": "50"}).json()
    done = [
        (e["resource"]["subtype"][-1]["display"], e["resource"]["outcome"]) for e in trail["entry"]
    ]
    assert ("SRM^S01", "0") in done
    assert ("SRM^S01", "4") in done  # the taken time
    assert ("SRM^S04", "0") in done


def test_what_cannot_be_acted_on_is_rejected_and_changes_nothing(platform: Platform) -> None:
    p = platform
    cases = [
        ("garbage", "hello there", "AR"),
        ("other delimiters", "MSH|*~\\&|EPIC|MAIN|||x||SRM^S01|Z1|P|2.5.1", "AR"),
        ("an unknown facility", srm(p, "S01", "Z2", day(5, 9), facility="ELSEWHERE"), "AR"),
        ("an unknown patient", srm(p, "S01", "Z3", day(5, 9), mrn="MRN-404"), "AR"),
        ("an unsupported message", srm(p, "S01", "Z4").replace("SRM^S01", "ORM^O01"), "AR"),
        (
            "a start that is no time",
            srm(p, "S01", "Z5").replace("|Check-up|", "|Check-up|soon"),
            "AR",
        ),
        (
            "a move of someone else's appointment",
            srm(p, "S03", "Z6", day(5, 9), filler=str(uuid.uuid4())),
            "AR",
        ),
        (
            "an offset of 24 hours",
            srm(p, "S01", "Z8").replace("|Check-up|", "|Check-up|202705101000+2400"),
            "AR",
        ),
        ("a NUL in the control id", srm(p, "S01", "Z9\x00", day(5, 9)), "AR"),
        (
            "a start in year 1",
            srm(p, "S01", "Z7").replace("|Check-up|", "|Check-up|000101010900"),
            "AR",
        ),
    ]
    for name, text, code in cases:
        answer = exchange(p.mllp, text)
        assert answer.value("MSA", 1) == code, (name, answer.text)
    assert p.appointments() == []


def test_demographics_change_only_where_the_emr_is_the_source_of_truth(platform: Platform) -> None:
    p = platform
    adt = "\r".join(
        [
            "MSH|^~\\&|EPIC|MAIN|CLINIC|CHARITE|20270101120000||ADT^A08^ADT_A01|D1|P|2.5.1",
            "EVN|A08|20270101120000",
            f"PID|1||MRN-9^^^{MRN}^MR||Ruiz-Soto^Ana||19800229|F|||"
            "Invalidenstr. 1^^Berlin^^10115^DE||^PRN^CP^^^^^^^^^+4915100001",
            "PV1|1|O",
        ]
    )
    refused = exchange(p.mllp, adt)
    assert refused.value("MSA", 1) == "AR"
    current = p.f.get(f"/Patient/{p.patient}").json()
    put = p.f.put(
        f"/Patient/{p.patient}",
        json={**current, "gender": "other"},
        headers={"Content-Type": "application/fhir+json"},
    )
    assert put.status_code == 422, put.text
    assert put.json()["resourceType"] == "OperationOutcome"

    chosen = p.a.put(f"/admin/organizations/{p.org}/demographics-source", json={"source": "emr"})
    assert chosen.status_code == 200, chosen.text
    unknown_sex = exchange(p.mllp, adt.replace("|D1|", "|D3|").replace("|F|||", "|Z|||"))
    assert unknown_sex.value("MSA", 1) == "AR", unknown_sex.text
    accepted = exchange(p.mllp, adt.replace("|D1|", "|D2|"))
    assert accepted.value("MSA", 1) == "AA", accepted.text
    record = p.b.get(f"{p.clinic.base}/patients/{p.patient}").json()
    assert record["family_name"] == "Ruiz-Soto"
    assert record["address"]["city"] == "Berlin"

    deadline = dt.datetime.now() + dt.timedelta(seconds=30)
    while (latest := p.f.get(f"/Patient/{p.patient}")).json()["name"][0]["family"] != "Ruiz-Soto":
        assert dt.datetime.now() < deadline
    stale = p.f.put(
        f"/Patient/{p.patient}",
        json={**latest.json(), "gender": "other"},
        headers={"Content-Type": "application/fhir+json", "If-Match": 'W/"1"'},
    )
    assert stale.status_code == 412, stale.text
    changed = {
        **latest.json(),
        "gender": "other",
        "identifier": [*latest.json()["identifier"], {"system": "urn:oid:9.9", "value": "EXT-1"}],
    }
    done = p.f.put(
        f"/Patient/{p.patient}",
        json=changed,
        headers={"Content-Type": "application/fhir+json", "If-Match": latest.headers["etag"]},
    )
    assert done.status_code == 200, done.text
    served = validated(done.json())
    assert served["gender"] == "other"
    assert {"system": "urn:oid:9.9", "value": "EXT-1"} in served["identifier"]
    assert done.headers["etag"] != latest.headers["etag"]
    wrong = p.f.put(
        f"/Patient/{p.patient}",
        json={**served, "id": str(uuid.uuid4())},
        headers={"Content-Type": "application/fhir+json"},
    )
    assert wrong.status_code == 400
