"""Freed time goes to the waitlist, end to end on the real broker and PostgreSQL with booking
and notification as processes and the local mail sink: a cancellation gives the patient who
waited longest an offer backed by a hold in booking; letting it lapse (booking's sweeper
expires the hold) passes the same time to the next patient; accepting books it and takes
them off the waitlist; the time is never offered to two patients at once."""

from __future__ import annotations

import datetime as dt
import email
import re
import time
from collections.abc import Callable
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import psycopg
from notification_clinic import STAFF, email_of, open_clinic, register

from clinic.devstack.components import Infrastructure, free_port
from clinic.devstack.testing import NO_QUIET_HOURS, RunningService, command, wait_caught_up

BOUND = 30.0


def waited(
    check: Callable[[], Any], what: str, bound: float = BOUND, context: Callable[[], Any] = str
) -> Any:
    deadline = time.monotonic() + bound
    while not (found := check()):
        assert time.monotonic() < deadline, f"no {what} within {bound}s: {context()}"
        time.sleep(0.25)
    return found


def test_freed_time_is_offered_in_turn_lapses_to_the_next_patient_and_is_booked_on_accept(
    start_service: Callable[..., RunningService],
    infrastructure: Infrastructure,
    schema_name: str,
    tmp_path: Path,
) -> None:
    port, smtp = free_port(), free_port()
    sinks = start_service(
        "clinic.devstack.sinks", "SINKS_", SINKS_MAILDIR=str(tmp_path / "mail"),
        SINKS_SMTP_PORT=str(smtp),
    )  # fmt: skip
    booking = start_service(
        "clinic.booking", "BOOKING_", BOOKING_LOAD_DEMO_DATA="false",
        BOOKING_HOLD_SWEEP_SECONDS="0.5",
    )  # fmt: skip
    schema = f"{schema_name}_nt"
    notification = start_service(
        "clinic.notification",
        "NOTIFICATION_",
        schema=schema,
        port=port,
        NOTIFICATION_CONSUMER_GROUP=f"notification-{schema_name}",
        NOTIFICATION_PUBLIC_URL=f"http://127.0.0.1:{port}",
        NOTIFICATION_SMTP_PORT=str(smtp),
        NOTIFICATION_SMS_BASE_URL=sinks.url,
        NOTIFICATION_OFFER_HOLD_MINUTES="1",
        NOTIFICATION_OFFER_NOTICE_MINUTES="0",
        **NO_QUIET_HOURS,
        NOTIFICATION_CONSUMER_LAG_INTERVAL_SECONDS="1",
        NOTIFICATION_DISPATCH_INTERVAL_SECONDS="0.2",
        BOOKING_URL=booking.url,
    )
    # A new group reads the broker from its start: the earlier tests' events first.
    wait_caught_up(notification.url, within=300)
    b = httpx.Client(base_url=booking.url, timeout=30, headers=STAFF)
    s = httpx.Client(base_url=sinks.url, timeout=30)
    n = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    clinic = open_clinic(b, "Praxis Nord")
    org, location, kind, base = clinic.org, clinic.location, clinic.kind, clinic.base
    ana, bea, cara = (register(b, clinic, name) for name in ("Ana", "Bea", "Cara"))
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    visit = command(b, f"{base}/appointments", {
        "appointment_type_id": kind, "location_id": location, "patient_id": ana,
        "start": start.isoformat()})["id"]  # fmt: skip
    today = dt.date.today()
    for who in (bea, cara):  # Bea joins first: she is asked first
        command(
            b,
            f"{base}/waitlist",
            {
                "patient_id": who,
                "appointment_type_id": kind,
                "location_ids": [location],
                "earliest": today.isoformat(),
                "latest": (today + dt.timedelta(days=7)).isoformat(),
            },
        )
        time.sleep(0.05)  # fmt: skip

    def offers() -> list[tuple[str, str]]:
        with psycopg.connect(infrastructure.database_url,
                             options=f"-c search_path={schema}") as conn:  # fmt: skip
            try:
                # This clinic's offers only: the broker also holds other tests' waitlists.
                rows = conn.execute(
                    "SELECT p.given_name, o.status FROM offers o "
                    "JOIN patients p ON p.patient_id = o.patient_id "
                    "WHERE o.organization_id = %s ORDER BY o.offered_at",
                    [org],
                ).fetchall()
            except psycopg.errors.UndefinedTable:
                return []
            return [(r[0], r[1]) for r in rows]

    def state() -> dict[str, Any]:
        with psycopg.connect(infrastructure.database_url,
                             options=f"-c search_path={schema}") as conn:  # fmt: skip
            return {
                table: conn.execute(f"SELECT * FROM {table}").fetchall()
                for table in ("freed_times", "offers", "waitlist", "messages")
            }

    def offer_mail(to: str) -> list[dict[str, Any]]:
        return [m for m in s.get("/mail").json()
                if m["to"] == to and "earlier appointment" in m["subject"]]  # fmt: skip

    # Ana cancels: Bea (waited longest) is offered the time, held for her in booking.
    command(b, f"{base}/appointments/{visit}/cancel", {"reason": "travelling"})
    waited(lambda: offer_mail(email_of(clinic, "Bea")), "offer to Bea", context=state)
    assert offers() == [("Bea", "live")]
    mine = b.get(f"/organizations/{org}/patients/{bea}/appointments").json()
    [hold] = [a for a in mine["appointments"] if a["status"] == "pending"]
    assert hold["start"].replace("Z", "+00:00") == start.isoformat()
    assert offer_mail(email_of(clinic, "Cara")) == []  # never two offers of the same time
    # The offer is among the held time's messages, as ops and the front desk read them.
    sent = n.get(f"/organizations/{org}/appointments/{hold['id']}/messages")
    assert sent.status_code == 200, sent.text
    assert [m["kind"] for m in sent.json()["messages"]] == ["offer"]

    # Bea lets it lapse: booking's sweeper expires the hold, the time goes to Cara.
    waited(lambda: offer_mail(email_of(clinic, "Cara")), "offer to Cara", bound=100, context=state)
    assert offers() == [("Bea", "lapsed"), ("Cara", "live")]

    # Cara accepts from her email: booked, and off the waitlist.
    [mail] = offer_mail(email_of(clinic, "Cara"))
    parsed = email.message_from_string(s.get(f"/mail/{mail['n']}").text, policy=default)
    body = parsed.get_body(("plain",))
    assert body is not None
    [token] = re.findall(r"/links/([A-Za-z0-9_-]{94})", body.get_content())
    page = n.get(f"/links/{token}")
    assert page.status_code == 200, page.text
    assert "Take this appointment" in page.text
    accepted = n.post(f"/links/{token}", headers={"Accept": "application/json"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["appointment"]["status"] == "booked"
    waited(lambda: offers() == [("Bea", "lapsed"), ("Cara", "accepted")], "the offer accepted")
    entries = b.get(f"/organizations/{org}/patients/{cara}/appointments").json()["appointments"]
    assert [a["status"] for a in entries] == ["booked"]

    # What became of the freed time, as staff see it; bad input is a 4xx problem.
    [freed] = n.get(f"/organizations/{org}/waitlist-offers").json()["freed_times"]
    assert (freed["status"], freed["source_appointment_id"]) == ("filled", visit)
    assert [(o["patient_id"], o["status"]) for o in freed["offers"]] == [
        (bea, "lapsed"), (cara, "accepted")
    ]  # fmt: skip
    naive = n.get(f"/organizations/{org}/waitlist-offers", params={"since": "2027-01-01T00:00"})
    assert naive.status_code == 422
    assert naive.headers["content-type"] == "application/problem+json"
    assert n.get(f"/organizations/{org}/waitlist-offers?limit=0").status_code == 422
