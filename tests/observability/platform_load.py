"""The platform the observability tests look at, and the short load they put on it: searches,
holds, bookings, a conflict, an idempotent replay, a move, cancellations, a waitlist entry,
a refused token through the gateway with the demo users' tokens; an EMR's MLLP listener
taking the bridge's SIU feed; an inbound HL7 message; a FHIR read."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from clinic.devstack.mllp_peer import Peer
from clinic.devstack.prometheus import RunningPrometheus
from clinic.devstack.stack import LOCAL_PROCESSES, RunningService, Stack, demo_tokens, local_secret

BOUND = 60.0


def within(check: Callable[[], Any], what: str, bound: float = BOUND) -> Any:
    deadline = time.monotonic() + bound
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within {bound}s: {what}"
        time.sleep(0.3)
    return found


@dataclass
class Platform:
    stack: Stack
    services: dict[str, RunningService]

    @property
    def scraped(self) -> dict[str, str]:
        """The five services (what Prometheus scrapes), name -> base URL."""
        return {n: s.url for n, s in self.services.items() if n not in LOCAL_PROCESSES}


def _weekday_ahead(days: int) -> dt.date:
    day = dt.date.today() + dt.timedelta(days=days)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _send_mllp(port: int, text: str) -> str:
    from hl7.mllp import open_hl7_connection

    async def exchange() -> str:
        reader, writer = await open_hl7_connection("127.0.0.1", port, encoding="utf-8")
        try:
            writer.writemessage(text)
            await writer.drain()
            answer = await asyncio.wait_for(reader.readmessage(), 30)
            return str(answer)
        finally:
            writer.close()

    return asyncio.run(exchange())


@dataclass(frozen=True)
class Load:
    ended: float
    """time.time() when the last request of the load was answered."""
    appointments: list[str]


def drive_load(platform: Platform, emr: Peer, endpoint_name: str = "observability") -> Load:
    """A short, realistic load through the gateway with the demo users' tokens: searches,
    holds and bookings, a conflict, an idempotent replay, a move, cancellations, a waitlist
    entry, a refused token, the messages of an appointment; an EMR endpoint that takes the
    SIU feed; one inbound HL7 message; a FHIR read. It can run again: each run books other
    times."""
    services, state = platform.services, platform.stack.state_dir
    siu_before = len(emr.received)
    gateway, bridge = services["gateway"].url, services["emr-bridge"].url
    demo = httpx.get(f"{services['booking'].url}/demo", timeout=30).json()
    org = demo["organization_id"]
    tokens = {
        role: path.read_text()
        for role, path in demo_tokens(state, services["issuer"].url, demo).items()
    }

    def client(role: str) -> httpx.Client:
        return httpx.Client(
            base_url=gateway, headers={"Authorization": f"Bearer {tokens[role]}"}, timeout=30
        )

    def key() -> dict[str, str]:
        return {"Idempotency-Key": str(uuid.uuid4())}

    patient, desk = client("patient"), client("front_desk")

    # 1. An EMR endpoint for the organisation: the bridge sends it an SIU message per change.
    admin = {"Authorization": f"Bearer {local_secret(state, 'admin-token')}"}
    endpoint = {
        "host": "127.0.0.1",
        "port": emr.port,
        "receiving_application": "EPIC",
        "receiving_facility": "MAIN",
        "allowed_addresses": ["127.0.0.1"],
    }
    answer = httpx.put(
        f"{bridge}/admin/organizations/{org}/hl7-endpoints/{endpoint_name}",
        json=endpoint,
        headers=admin,
        timeout=30,
    )
    assert answer.status_code in (200, 201), answer.text

    # 2. Searches over two days at the desk's location.
    me = patient.get("/v1/me").json()
    location = desk.get("/v1/me").json()["location_ids"][0]
    kinds = patient.get("/v1/appointment-types", params={"location_id": location}).json()
    kind = kinds["appointment_types"][0]["id"]
    day = _weekday_ahead(7)
    query = {"appointment_type_id": kind, "location_id": location,
             "from": day.isoformat(), "to": day.isoformat()}  # fmt: skip
    found = within(lambda: patient.get("/v1/slots", params=query).json().get("slots"), "slots")
    slots = []  # times that do not overlap each other
    for slot in found:
        if not slots or slot["start"] >= slots[-1]["end"]:
            slots.append(slot)
    assert len(slots) >= 3, found
    for offset in (8, 9):
        other = _weekday_ahead(offset).isoformat()
        assert patient.get("/v1/slots", params={**query, "from": other, "to": other}).is_success
    patient.get("/v1/slots/next-available", params={"appointment_type_id": kind})

    # 3. The patient holds a time and books it; a second hold of that time is a conflict; the
    #    same request again is answered from the gateway's idempotency store.
    hold = {"appointment_type_id": kind, "location_id": location, "start": slots[0]["start"]}
    first_key = key()
    held = patient.post("/v1/holds", json=hold, headers=first_key)
    assert held.status_code == 201, held.text
    appointment = held.json()["id"]
    assert patient.post("/v1/holds", json=hold, headers=first_key).status_code == 201
    taken = patient.post("/v1/holds", json=hold, headers=key())
    assert taken.status_code == 409, taken.text
    booked = patient.post(f"/v1/appointments/{appointment}/confirm", headers=key())
    assert booked.status_code == 200, booked.text

    # 4. The patient joins the waitlist for the day; the desk books another time for the
    #    patient, moves it and cancels it (freed time the waitlist may be offered).
    entry = {"appointment_type_id": kind, "location_ids": [location],
             "earliest": day.isoformat(), "latest": day.isoformat()}  # fmt: skip
    joined = patient.post("/v1/waitlist-entries", json=entry, headers=key())
    assert joined.status_code == 201, joined.text
    booking = {"appointment_type_id": kind, "location_id": location,
               "start": slots[1]["start"], "patient_id": me["patient_id"]}  # fmt: skip
    second = desk.post("/v1/appointments", json=booking, headers=key())
    assert second.status_code == 201, second.text
    other_appointment = second.json()["id"]
    moved = desk.post(f"/v1/appointments/{other_appointment}/reschedule",
                      json={"start": slots[2]["start"]}, headers=key())  # fmt: skip
    assert moved.status_code == 200, moved.text
    cancelled = desk.post(f"/v1/appointments/{other_appointment}/cancel",
                          json={"reason": "observability load"}, headers=key())  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    desk.get(f"/v1/locations/{location}/calendar", params={"date": day.isoformat()})

    # 5. A request with a token the gateway refuses.
    refused = httpx.get(f"{gateway}/v1/me", headers={"Authorization": "Bearer x.y.z"}, timeout=30)
    assert refused.status_code == 401

    # 6. An EMR reads the bridge's capabilities and sends an SRM it cannot act on.
    httpx.get(f"{bridge}/fhir/{org}/metadata", timeout=30)
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    srm = "\r".join([
        f"MSH|^~\\&|EPIC|MAIN|CLINIC|CLINIC|{now}||SRM^S01^SRM_S01|OBS-{uuid.uuid4().hex[:8]}|P|2.5.1",
        "ARQ|OBS-1||||||ROUTINE^Routine",
        f"PID|1||{uuid.uuid4()}^^^CLINIC^PI||Doe^Jane",
    ]) + "\r"  # fmt: skip
    mllp = services["emr-bridge"].mllp_port
    assert mllp is not None
    assert "MSA|" in _send_mllp(mllp, srm)

    # 7. The consequences arrive: the confirmation email, the SIU messages at the EMR; the
    #    patient reads what was sent about the appointment (from notification).
    def sent() -> list[dict[str, Any]]:
        return [
            m
            for m in patient.get(f"/v1/appointments/{appointment}/messages").json()["messages"]
            if m["status"] == "sent"
        ]

    within(sent, "the confirmation of the booking sent")
    within(lambda: len(emr.received) >= siu_before + 2, "SIU messages at the EMR's listener")
    return Load(time.time(), [appointment, other_appointment])


def wait_for_scrapes(prometheus: RunningPrometheus, after: float, scrapes: int) -> None:
    """Until every target was scraped ``scrapes`` times after ``after`` (a unix time)."""
    interval = 5.0

    def scraped() -> bool:
        targets = httpx.get(f"{prometheus.url}/api/v1/targets", timeout=10).json()
        last = [  # RFC 3339 with nanoseconds: cut to what datetime reads
            dt.datetime.fromisoformat(
                re.sub(r"(\.\d{6})\d+", r"\1", t["lastScrape"]).replace("Z", "+00:00")
            ).timestamp()
            for t in targets["data"]["activeTargets"]
        ]
        healthy = all(t["health"] == "up" for t in targets["data"]["activeTargets"])
        return healthy and bool(last) and min(last) >= after + (scrapes - 1) * interval

    within(scraped, f"{scrapes} scrapes of every service after the load", 60)
