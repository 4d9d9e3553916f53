"""SIU out over MLLP, end to end: booking and the bridge as processes on the real broker and
PostgreSQL, and an EMR's listener written with the hl7 package's server on 127.0.0.1.

A booking, its move, its cancellation and another's no-show reach the EMR in order, each
acknowledged once; a message the EMR answers AE, or whose connection it drops before
answering, comes again with the same control id and text, and nothing is lost or reordered;
one it rejects (AR) is parked where ops see it, the appointment's later messages wait behind
it, and a replay delivers both in order; blocked time is S23, opening it S24."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from emr_client import ADMIN_TOKEN, admin_client

from clinic.devstack.mllp_peer import Peer, Received
from clinic.devstack.testing import STAFF, ClinicIds, RunningService, command, open_clinic

BOUND = 60.0


def waited(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + BOUND
    while not (found := check()):
        assert time.monotonic() < deadline, f"no {what} within {BOUND}s"
        time.sleep(0.1)
    return found


class Platform:
    def __init__(self, start: Callable[..., RunningService], schema: str) -> None:
        self.booking = start("clinic.booking", "BOOKING_", BOOKING_LOAD_DEMO_DATA="false")
        self.bridge = start(
            "clinic.emr_bridge",
            "EMR_BRIDGE_",
            schema=f"{schema}_br",
            EMR_BRIDGE_CONSUMER_GROUP=f"bridge-{schema}",
            EMR_BRIDGE_MLLP_PORT="0",
            EMR_BRIDGE_ADMIN_TOKEN=ADMIN_TOKEN,
            BOOKING_URL=self.booking.url,
            EMR_BRIDGE_HL7_INTERVAL_SECONDS="0.1",
            EMR_BRIDGE_HL7_BACKOFF_SECONDS="0.05",
            EMR_BRIDGE_HL7_BACKOFF_CAP_SECONDS="0.3",
            EMR_BRIDGE_HL7_ACK_TIMEOUT_SECONDS="3",
        )
        self.b = httpx.Client(base_url=self.booking.url, timeout=30, headers=STAFF)
        self.a = admin_client(self.bridge.url)
        self.clinic: ClinicIds = open_clinic(self.b, "Praxis Nord")
        self.patient = command(
            self.b,
            f"{self.clinic.base}/patients",
            {
                "given_name": "Ana",
                "family_name": "Ruiz",
                "birth_date": "1980-02-29",
                "language": "en",
                "identifiers": [{"system": "urn:oid:1.2.3", "value": "MRN-7"}],
            },
        )["id"]

    def connect(self, peer: Peer) -> None:
        body = {
            "host": "127.0.0.1",
            "port": peer.port,
            "receiving_application": "EPIC",
            "receiving_facility": "MAIN",
        }
        response = self.a.put(
            f"/admin/organizations/{self.clinic.org}/hl7-endpoints/epic", json=body
        )
        assert response.status_code == 200, response.text

    def book(self, start: dt.datetime) -> str:
        body = {
            "appointment_type_id": self.clinic.kind,
            "location_id": self.clinic.location,
            "patient_id": self.patient,
            "start": start.isoformat(),
        }
        aid: str = command(self.b, f"{self.clinic.base}/appointments", body)["id"]
        return aid

    def act(self, aid: str, verb: str, body: dict[str, Any] | None = None) -> None:
        command(self.b, f"{self.clinic.base}/appointments/{aid}/{verb}", body or {})

    def messages(self, **params: str) -> list[dict[str, Any]]:
        response = self.a.get(f"/admin/organizations/{self.clinic.org}/hl7-messages", params=params)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["messages"]
        return found


@pytest.fixture
def platform(start_service: Callable[..., RunningService], schema_name: str) -> Iterator[Platform]:
    running = Platform(start_service, schema_name)
    yield running
    running.b.close()
    running.a.close()


def soon(minutes: int = 0) -> dt.datetime:
    """Tomorrow, ``minutes`` after 06:00 UTC: always ahead, and inside the test clinic's
    hours (00:00-23:59 in Berlin) whatever the time of day the test runs at (a time that
    crossed local midnight was refused as outside working hours)."""
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time(6), dt.UTC) + dt.timedelta(minutes=minutes)


def of(received: list[Received], aid: str) -> list[tuple[str, str]]:
    return [(r.trigger, r.control_id) for r in received if r.filler_id == aid]


def test_book_move_cancel_and_no_show_arrive_in_order_through_errors_and_drops(
    platform: Platform,
) -> None:
    def emr(message: Any, seen: int) -> str:
        trigger = str(message.segment("MSH")[9]).split("^")[1]
        if trigger == "S13" and seen == 0:
            return "AE"  # an error on the EMR's side: the same message again
        if trigger == "S15" and seen == 0:
            return "drop"  # the connection dropped before the ACK
        return "AA"

    with Peer(emr) as peer:
        platform.connect(peer)
        first = platform.book(soon(60))
        platform.act(first, "reschedule", {"start": soon(150).isoformat()})
        platform.act(first, "cancel", {"reason": "feeling better"})
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=20)
        second = platform.book(start)
        waited(lambda: dt.datetime.now(dt.UTC) > start + dt.timedelta(seconds=1), "the start")
        platform.act(second, "no-show")

        waited(lambda: len(peer.acked()) >= 5, "five acknowledged messages")
        time.sleep(1)  # nothing more may come
        acked = peer.acked()

    assert [t for t, _ in of(acked, first)] == ["S12", "S13", "S15"]
    assert [t for t, _ in of(acked, second)] == ["S12", "S26"]
    assert len({r.control_id for r in acked}) == len(acked) == 5  # each acknowledged once
    tries = [r for r in peer.received if r.filler_id == first]
    assert [(r.trigger, r.answer) for r in tries] == [
        ("S12", "AA"),
        ("S13", "AE"),
        ("S13", "AA"),
        ("S15", "drop"),
        ("S15", "AA"),
    ]
    assert tries[1].text == tries[2].text  # the same message, control id and all
    assert tries[3].text == tries[4].text
    assert "MRN-7^^^urn:oid:1.2.3^MR" in tries[0].text
    assert {m["status"] for m in platform.messages()} == {"acked"}


def test_a_rejected_message_is_parked_the_rest_waits_and_a_replay_delivers_in_order(
    platform: Platform,
) -> None:
    rejecting = {"on": True}

    def emr(message: Any, seen: int) -> str:
        trigger = str(message.segment("MSH")[9]).split("^")[1]
        return "AR" if trigger == "S12" and rejecting["on"] else "AA"

    with Peer(emr) as peer:
        platform.connect(peer)
        aid = platform.book(soon(200))
        [parked] = waited(lambda: platform.messages(status="parked"), "a parked message")
        assert parked["trigger"] == "S12"
        assert parked["ack_code"] == "AR"
        platform.act(aid, "reschedule", {"start": soon(260).isoformat()})
        waited(lambda: len(platform.messages(status="pending")) == 1, "the move waiting")
        time.sleep(1)
        assert [r.trigger for r in peer.received] == ["S12"]  # the move waits behind it

        rejecting["on"] = False
        replay = platform.a.post(
            f"/admin/organizations/{platform.clinic.org}/hl7-messages/{parked['control_id']}/replay"
        )
        assert replay.status_code == 200, replay.text
        waited(lambda: len(peer.acked()) == 2, "the replay and the move")
        assert [t for t, _ in of(peer.acked(), aid)] == ["S12", "S13"]
        again = platform.a.post(
            f"/admin/organizations/{platform.clinic.org}/hl7-messages/{parked['control_id']}/replay"
        )
        assert again.status_code == 409  # acknowledged now: nothing to replay

        blocked = command(
            platform.b,
            f"{platform.clinic.base}/resources/{platform.clinic.doctor}/schedule/exceptions",
            {"kind": "leave", "start": soon(400).isoformat(), "end": soon(520).isoformat()},
        )
        exception = blocked["exceptions"][-1]["id"]
        removed = platform.b.delete(
            f"{platform.clinic.base}/resources/{platform.clinic.doctor}/schedule/exceptions/"
            f"{exception}",
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert removed.status_code == 200, removed.text
        waited(lambda: len(peer.acked()) == 4, "blocked and opened time")
        assert [r.trigger for r in peer.acked()[2:]] == ["S23", "S24"]
        assert {r.filler_id for r in peer.acked()[2:]} == {exception}


def test_an_endpoint_moved_while_messages_wait_gets_them_at_its_new_address(
    platform: Platform,
) -> None:
    """The EMR's listener moves (a new host or port through the admin API) while messages
    fail against the old one: the next attempt goes to the new address, in order."""
    with Peer(lambda message, seen: "AA") as old:
        gone = old.port  # the old address answers nothing from here on
    body = {"host": "127.0.0.1", "port": gone, "receiving_application": "EPIC",
            "receiving_facility": "MAIN"}  # fmt: skip
    endpoint = f"/admin/organizations/{platform.clinic.org}/hl7-endpoints/epic"
    assert platform.a.put(endpoint, json=body).status_code == 200
    aid = platform.book(soon(330))
    waited(
        lambda: [m for m in platform.messages(status="pending") if m["last_error"]],
        "a failed attempt at the old address",
    )
    with Peer(lambda message, seen: "AA") as moved:
        assert platform.a.put(endpoint, json={**body, "port": moved.port}).status_code == 200
        waited(lambda: moved.acked(), "the message at the new address")
        assert [t for t, _ in of(moved.acked(), aid)] == ["S12"]
    assert {m["status"] for m in platform.messages()} == {"acked"}
