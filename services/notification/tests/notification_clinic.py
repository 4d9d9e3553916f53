"""What notification's process-level tests (and its benchmark) set up through booking's API:
a clinic open around the clock with one doctor and one appointment type, and patients with
the channels and consents a test needs; and a channel that stops mid-round, to kill a
dispatcher there."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from clinic.devstack.testing import command
from clinic.notification.channels import Outcome, Outgoing

STAFF = {"X-Actor-Id": "desk-1", "X-Actor-Role": "front_desk", "X-Actor-Channel": "front-desk"}


@dataclass(frozen=True)
class ClinicIds:
    org: str
    location: str
    doctor: str
    kind: str

    @property
    def base(self) -> str:
        return f"/organizations/{self.org}"


def open_clinic(
    b: httpx.Client,
    name: str,
    *,
    address: dict[str, str] | None = None,
    minutes: int = 30,
    reminder_plan: list[dict[str, Any]] | None = None,
) -> ClinicIds:
    """An organisation with one location in Berlin, a doctor working every hour of every
    day there, and a check-up of ``minutes`` with the doctor."""
    org = command(b, "/organizations", {"name": name})["id"]
    base = f"/organizations/{org}"
    place = {"name": name.split()[-1], "time_zone": "Europe/Berlin", "address": address or {}}
    location = command(b, f"{base}/locations", place)["id"]
    doctor = command(
        b, f"{base}/resources",
        {"category": "provider", "name": "Dr. A", "kind": "physician", "location_ids": [location]},
    )["id"]  # fmt: skip
    hours = [{"location_id": location, "weekday": d, "start": "00:00", "end": "23:59"}
             for d in range(7)]  # fmt: skip
    command(b, f"{base}/resources/{doctor}/schedule/weekly-hours", {"hours": hours}, "PUT")
    step = {"name": "visit", "duration_minutes": minutes,
            "requirements": [{"role": "physician", "category": "provider"}]}  # fmt: skip
    body: dict[str, Any] = {"name": "Check-up", "steps": [step]}
    if reminder_plan is not None:
        body["reminder_plan"] = reminder_plan
    kind = command(b, f"{base}/appointment-types", body)["id"]
    return ClinicIds(org, location, doctor, kind)


def register(
    b: httpx.Client,
    clinic: ClinicIds,
    name: str,
    *,
    phone: str | None = None,
    channel: str = "email",
    language: str = "en",
) -> str:
    """A patient with an email address (``email_of``) and a phone, consenting to both."""
    contacts = [{"system": "email", "value": email_of(clinic, name)}]
    if phone is not None:
        contacts.append({"system": "phone", "value": phone})
    pid: str = command(b, f"{clinic.base}/patients", {
        "given_name": name, "family_name": "Lind", "birth_date": "1970-05-05",
        "contacts": contacts, "language": language, "consent_email": True,
        "consent_sms": phone is not None})["id"]  # fmt: skip
    if channel != "email":
        command(b, f"{clinic.base}/patients/{pid}/preferences",
                {"preferred_channel": channel, "consent_sms": True}, "PUT")  # fmt: skip
    return pid


def email_of(clinic: ClinicIds, name: str) -> str:
    """The patient's address, unique to the clinic: every test's notification reads the whole
    broker, other tests' clinics included, and must not write to this test's patients."""
    return f"{name.lower()}.{clinic.org[:8]}@example.org"


class Stalling:
    """A channel that sends ``allowed`` messages, then hangs: the instance is killed there."""

    def __init__(self, inner: Any, allowed: int) -> None:
        self.inner, self.allowed, self.name = inner, allowed, inner.name
        self.stuck = asyncio.Event()

    async def send(self, message: Outgoing) -> Outcome:
        if self.allowed <= 0:
            self.stuck.set()
            await asyncio.Event().wait()
        self.allowed -= 1
        return await self.inner.send(message)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.inner.close()
