"""Patients act from their messages, end to end on the real broker and PostgreSQL, with
booking, availability and notification as processes and the local mail and SMS sinks: a
booking's confirmation arrives with signed links; a link scanner's GET changes nothing;
tampered, expired, cross-organisation and reused links are refused with a clear page or
problem+json; the confirm, move and cancel links act once through booking with the patient
as the actor; an SMS reply C confirms, STOP opts the number out and nothing more is sent to
it; delivery reports and webhooks are accepted only when signed."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import time
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from notification_clinic import STAFF, email_of, open_clinic, register

from clinic.devstack.components import free_port
from clinic.devstack.testing import NO_QUIET_HOURS, RunningService, command, wait_caught_up
from clinic.notification.links import Link, Signer
from clinic.notification.sms import signature

SECRET = "links-test-secret-0123456789"
BOUND = 30.0
LINK = re.compile(r"https?://\S+?/(?:links|unsubscribe)/[A-Za-z0-9_-]{94}")


def waited(check: Callable[[], Any], what: str, context: Callable[[], Any] = lambda: "") -> Any:
    deadline = time.monotonic() + BOUND
    while not (found := check()):
        assert time.monotonic() < deadline, f"no {what} within {BOUND}s {context()}"
        time.sleep(0.2)
    return found


class Platform:
    def __init__(self, start: Callable[..., RunningService], schema: str, maildir: Path) -> None:
        port, sink_port, smtp = free_port(), free_port(), free_port()
        self.sinks = start(
            "clinic.devstack.sinks",
            "SINKS_",
            port=sink_port,
            SINKS_MAILDIR=str(maildir),
            SINKS_SMTP_PORT=str(smtp),
            SINKS_INBOUND_URL=f"http://127.0.0.1:{port}/sms/inbound",
        )
        self.booking = start("clinic.booking", "BOOKING_", BOOKING_LOAD_DEMO_DATA="false")
        self.availability = start(
            "clinic.availability",
            "AVAILABILITY_",
            schema=f"{schema}_av",
            AVAILABILITY_CONSUMER_GROUP=f"availability-{schema}",
            AVAILABILITY_CONSUMER_LAG_INTERVAL_SECONDS="1",
            BOOKING_URL=self.booking.url,
        )
        self.notification = start(
            "clinic.notification",
            "NOTIFICATION_",
            schema=f"{schema}_nt",
            port=port,
            NOTIFICATION_CONSUMER_GROUP=f"notification-{schema}",
            NOTIFICATION_PUBLIC_URL=f"http://127.0.0.1:{port}",
            NOTIFICATION_LINK_SECRET=SECRET,
            NOTIFICATION_SMTP_PORT=str(smtp),
            NOTIFICATION_SMS_BASE_URL=self.sinks.url,
            NOTIFICATION_DISPATCH_INTERVAL_SECONDS="0.1",
            NOTIFICATION_CONSUMER_LAG_INTERVAL_SECONDS="1",
            BOOKING_URL=self.booking.url,
            AVAILABILITY_URL=self.availability.url,
            **NO_QUIET_HOURS,  # the tests run at any hour; a confirmation must leave at once
        )
        # New groups read the broker from its start: the earlier tests' events first.
        wait_caught_up(self.availability.url, within=300)
        wait_caught_up(self.notification.url, within=300)
        self.b = httpx.Client(base_url=self.booking.url, timeout=30, headers=STAFF)
        self.n = httpx.Client(base_url=self.notification.url, timeout=30)
        self.s = httpx.Client(base_url=self.sinks.url, timeout=30)
        self.clinic = open_clinic(
            self.b, "Praxis Mitte", address={"street": "Invalidenstr. 1", "city": "Berlin"}
        )
        self.org, self.location, self.kind = self.clinic.org, self.clinic.location, self.clinic.kind

    def patient(self, name: str, channel: str, phone: str) -> str:
        return register(self.b, self.clinic, name, phone=phone, channel=channel)

    def book(self, patient: str, days: int, hour: int = 9) -> str:
        start = (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).replace(
            hour=hour, minute=0, second=0, microsecond=0
        )
        body = {"appointment_type_id": self.kind, "location_id": self.location,
                "patient_id": patient, "start": start.isoformat()}  # fmt: skip
        appointment: str = command(self.b, f"/organizations/{self.org}/appointments", body)["id"]
        return appointment

    def appointment(self, aid: str) -> dict[str, Any]:
        response = self.b.get(f"/organizations/{self.org}/appointments/{aid}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def mails_to(self, address: str) -> list[EmailMessage]:
        found = []
        for entry in self.s.get("/mail").json():
            if entry["to"] == address:
                raw = self.s.get(f"/mail/{entry['n']}").text
                parsed = email.message_from_string(raw, policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                found.append(parsed)
        return found

    def sms_to(self, number: str) -> list[dict[str, Any]]:
        return [m for m in self.s.get("/sms").json() if m["to"] == number]

    def history(self, aid: str) -> list[dict[str, Any]]:
        response = self.n.get(f"/organizations/{self.org}/appointments/{aid}/messages")
        if response.status_code == 404:
            return []
        assert response.status_code == 200, response.text
        return response.json()["messages"]  # type: ignore[no-any-return]


def links_in(mail: EmailMessage) -> dict[str, str]:
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    labels = {"Confirm": "confirm", "Cancel": "cancel", "Change the time": "reschedule"}
    found = {}
    for line in text.splitlines():
        label, _, rest = line.partition(": ")
        if label in labels and LINK.fullmatch(rest.strip()):
            found[labels[label]] = rest.strip()
    return found


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


@pytest.fixture
def platform(
    start_service: Callable[..., RunningService], schema_name: str, tmp_path: Path
) -> Platform:
    return Platform(start_service, schema_name, tmp_path / "mail")


def test_a_patient_confirms_moves_and_cancels_from_the_email_and_each_link_acts_once(
    platform: Platform,
) -> None:
    p = platform
    ana = p.patient("Ana", "email", "+491510000001")
    visit = p.book(ana, days=3)
    [mail] = waited(
        lambda: p.mails_to(email_of(p.clinic, "Ana")),
        "confirmation email",
        lambda: p.history(visit),
    )
    assert "is booked" in mail["Subject"]
    links = links_in(mail)
    assert set(links) == {"confirm", "cancel", "reschedule"}
    version = p.appointment(visit)["version"]

    # A mail scanner follows every link: pages, nothing changes.
    for url in links.values():
        page = p.n.get(path_of(url))
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert '<form method="post">' in page.text
    assert p.appointment(visit)["version"] == version

    # Tampered, expired, another organisation's: refused, as a page or as problem+json.
    token = links["confirm"].rsplit("/", 1)[1]
    tampered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    page = p.n.post(f"/links/{tampered}")
    assert page.status_code == 400
    assert "This link is not valid" in page.text
    problem = p.n.get(f"/links/{tampered}", headers={"Accept": "application/json"})
    assert problem.headers["content-type"] == "application/problem+json"
    assert problem.json()["type"].endswith("/link-invalid")
    signer = Signer(SECRET)
    [confirmation] = [m for m in p.history(visit) if m["kind"] == "confirmation"]
    message = uuid.UUID(confirmation["message_id"])
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    expired = signer.sign(Link(uuid.UUID(p.org), uuid.UUID(visit), message, "confirm", past))
    assert p.n.post(f"/links/{expired}").status_code == 410
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    foreign = signer.sign(Link(uuid.uuid4(), uuid.UUID(visit), message, "confirm", soon))
    answer = p.n.post(f"/links/{foreign}", headers={"Accept": "application/json"})
    assert answer.status_code == 404
    assert answer.json()["type"].endswith("/link-not-found")
    assert p.appointment(visit)["version"] == version

    # Confirm: once, through booking, as the patient, by link.
    done = p.n.post(path_of(links["confirm"]))
    assert done.status_code == 200, done.text
    assert "your appointment is confirmed" in done.text
    assert p.appointment(visit)["attendance_confirmed_at"] is not None
    again = p.n.post(path_of(links["confirm"]), headers={"Accept": "application/json"})
    assert again.status_code == 409
    assert again.json()["type"].endswith("/link-used")
    assert p.n.get(path_of(links["confirm"])).status_code == 409
    history = p.b.get(f"/organizations/{p.org}/appointments/{visit}/history").json()
    last = history["events"][-1] if isinstance(history, dict) else history[-1]
    assert str(last).count(ana) >= 1  # the patient acted

    # Move: the page offers free times; the chosen one is booked.
    choices = p.n.get(path_of(links["reschedule"]), headers={"Accept": "application/json"})
    assert choices.status_code == 200
    new_start = choices.json()["choices"][0]["value"]
    at = dt.datetime.fromisoformat(new_start)
    for bad, status, slug in (
        ({"start": at.strftime("%G-W%V-%uT%H:%MZ")}, 400, "link-invalid"),  # an ISO week date
        ({"start": ["garbage", new_start]}, 400, "link-invalid"),  # two times
        ({"start": "9999-12-31T23:59:59-01:00"}, 400, "link-invalid"),
        ({"start": (at + dt.timedelta(minutes=7)).isoformat()}, 409, "time-not-offered"),
    ):
        refused = p.n.post(path_of(links["reschedule"]), data=bad,
                           headers={"Accept": "application/json"})  # fmt: skip
        assert (refused.status_code, refused.json()["type"].rsplit("/", 1)[1]) == (status, slug)
    assert p.appointment(visit)["version"] == version + 1  # only the confirmation
    moved = p.n.post(path_of(links["reschedule"]), data={"start": new_start})
    assert moved.status_code == 200, moved.text
    assert p.appointment(visit)["start"] == dt.datetime.fromisoformat(new_start).astimezone(
        dt.UTC
    ).isoformat().replace("+00:00", "Z")
    waited(lambda: [m for m in p.history(visit) if m["kind"] == "rescheduled"], "move notice")

    # Cancel: booking cancels; links of later messages can no longer move it.
    cancelled = p.n.post(path_of(links["cancel"]))
    assert cancelled.status_code == 200, cancelled.text
    assert p.appointment(visit)["status"] == "cancelled"
    waited(
        lambda: [m for m in p.history(visit) if m["kind"] == "cancelled" and m["status"] == "sent"],
        "cancellation notice",
    )
    moved_mail = next(m for m in p.mails_to(email_of(p.clinic, "Ana")) if "moved" in m["Subject"])
    later_link = links_in(moved_mail)["reschedule"]  # unused, but the visit is cancelled
    closed = p.n.get(path_of(later_link), headers={"Accept": "application/json"})
    assert closed.status_code == 409
    assert closed.json()["type"].endswith("/appointment-closed")


def test_sms_replies_confirm_and_opt_out_and_only_signed_webhooks_count(
    platform: Platform,
) -> None:
    p = platform
    phone = "+491510000002"
    bea = p.patient("Bea", "sms", phone)
    visit = p.book(bea, days=4)
    [sms] = waited(lambda: p.sms_to(phone), "confirmation SMS", lambda: p.history(visit))
    assert "Reply C to confirm" in sms["body"]
    waited(lambda: [m for m in p.history(visit) if m["delivery"] == "delivered"], "delivery report")

    # An unsigned report or reply changes nothing.
    forged = {"MessageSid": sms["sid"], "MessageStatus": "failed", "ErrorCode": "30005"}
    refused = p.n.post("/sms/status", data=forged, headers={"X-Twilio-Signature": "bad"})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    stop = {"MessageSid": "SMforged", "From": phone, "Body": "STOP"}
    assert p.n.post("/sms/inbound", data=stop).status_code == 403
    assert {m["delivery"] for m in p.history(visit)} >= {"delivered"}

    # C confirms the coming visit, through booking, as the patient.
    answer = p.s.post("/replies", json={"from": phone, "body": "C"}).json()
    assert answer["webhook_status"] == 200
    assert "confirmed" in answer["webhook_body"]
    assert p.appointment(visit)["attendance_confirmed_at"] is not None
    again = p.s.post("/replies", json={"from": phone, "body": "c"}).json()
    assert "confirmed already" in again["webhook_body"]

    # STOP: the number is opted out; the next booking's SMS is skipped, nothing sent.
    answer = p.s.post("/replies", json={"from": phone, "body": "STOP"}).json()
    assert answer["webhook_status"] == 200
    preferences = p.n.get(f"/organizations/{p.org}/patients/{bea}/contact-preferences").json()
    assert {(a["channel"], a["opted_out"]) for a in preferences["addresses"]} == {
        ("sms", True), ("email", False)
    }  # fmt: skip
    second = p.book(bea, days=5)
    [skipped] = waited(lambda: p.history(second), "planned confirmation")
    assert (skipped["status"], skipped["reason"]) == ("skipped", "the address opted out")
    time.sleep(1)  # the dispatcher polls every 0.1 s: it had ten chances to send it
    assert len(p.sms_to(phone)) == 1

    # Another organisation that lists the same number can neither lift Bea's STOP nor
    # learn when she sent it; its own opt-out stops only its own messages.
    rival = open_clinic(p.b, "Rival Praxis")
    twin = register(p.b, rival, "Bea", phone=phone, channel="sms")
    base = f"/organizations/{rival.org}/patients/{twin}"
    waited(lambda: p.n.get(f"{base}/contact-preferences").status_code == 200, "rival patient")
    assert p.n.delete(f"{base}/opt-outs/sms").status_code == 200
    theirs = p.n.get(f"{base}/contact-preferences").json()["addresses"]
    assert [(a["opted_out"], a["since"], a["source"]) for a in theirs
            if a["channel"] == "sms"] == [(True, None, "STOP reply")]  # fmt: skip
    assert p.n.put(f"{base}/opt-outs/email").status_code == 200
    ours = p.n.get(f"/organizations/{p.org}/patients/{bea}/contact-preferences").json()
    assert {(a["channel"], a["opted_out"]) for a in ours["addresses"]} == {
        ("sms", True), ("email", False)
    }  # fmt: skip

    # Signed or not, what no provider sends is refused, and nothing changes.
    url = f"{p.notification.url}/sms/status"
    odd = p.n.post("/sms/status", data={"MessageSid": "SM1", "MessageStatus": "sent"},
                   headers={"X-Twilio-Signature": b"\xe9"})  # fmt: skip
    assert odd.status_code == 403
    nul = {"MessageSid": sms["sid"], "MessageStatus": "failed", "ErrorCode": "\x00"}
    signed_nul = {"X-Twilio-Signature": signature("local-sms-token", url, nul)}
    answer = p.n.post("/sms/status", data=nul, headers=signed_nul)
    assert (answer.status_code, answer.json()["type"].rsplit("/", 1)[1]) == (400, "invalid-webhook")
    multipart = p.n.post(
        "/sms/status",
        content=b'--B\r\nContent-Disposition: form-data; name="MessageSid"\r\n\r\n\\ud800\r\n--B--',
        headers={"Content-Type": "multipart/form-data; boundary=B; charset=raw_unicode_escape",
                 "X-Twilio-Signature": "x"},
    )  # fmt: skip
    assert 400 <= multipart.status_code < 500
    assert {m["delivery"] for m in p.history(visit)} == {"delivered"}

    # A signed report about no message of ours is accepted and ignored, replayed too.
    form = {"MessageSid": "SMunknown", "MessageStatus": "delivered"}
    url = f"{p.notification.url}/sms/status"
    signed = {"X-Twilio-Signature": signature("local-sms-token", url, form)}
    assert p.n.post("/sms/status", data=form, headers=signed).status_code == 200
    assert p.n.post("/sms/status", data=form, headers=signed).status_code == 200


def test_the_internal_routes_answer_unknown_and_other_organisations_ids_and_bad_input_with_4xx(
    platform: Platform,
) -> None:
    p = platform
    ana = p.patient("Ana", "email", "+491510000003")
    visit = p.book(ana, days=3)
    waited(lambda: p.history(visit), "planned messages")
    other = str(uuid.uuid4())
    for path in (
        f"/organizations/{other}/appointments/{visit}/messages",
        f"/organizations/{p.org}/appointments/{other}/messages",
        f"/organizations/{other}/patients/{ana}/contact-preferences",
        f"/organizations/{p.org}/patients/{other}/contact-preferences",
    ):
        answer = p.n.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"
    assert p.n.put(f"/organizations/{other}/patients/{ana}/opt-outs/email").status_code == 404
    for path in (
        f"/organizations/not-a-uuid/appointments/{visit}/messages",
        f"/organizations/{p.org}/patients/{ana}/opt-outs/fax",
        f"/organizations/{p.org}/waitlist-offers?limit=100000",
    ):
        method = "PUT" if "opt-outs" in path else "GET"
        answer = p.n.request(method, path)
        assert answer.status_code == 422, path
        assert answer.headers["content-type"] == "application/problem+json"

    # Opting out by staff and back in: the patient's email address, idempotently.
    base = f"/organizations/{p.org}/patients/{ana}"
    for _ in range(2):
        out = p.n.put(f"{base}/opt-outs/email").json()
        assert [(a["channel"], a["opted_out"], a["source"]) for a in out["addresses"]
                if a["channel"] == "email"] == [("email", True, "staff")]  # fmt: skip
    back = p.n.delete(f"{base}/opt-outs/email").json()
    assert {a["opted_out"] for a in back["addresses"]} == {False}
