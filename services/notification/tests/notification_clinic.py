"""What notification's process-level tests (and its benchmark) set up through booking's API:
a clinic (``open_clinic``, shared by the services' tests), patients with the channels and
consents a test needs; and a channel that stops mid-round, to kill a
dispatcher there."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from clinic.devstack.testing import STAFF, ClinicIds, command, open_clinic
from clinic.notification.channels import Outcome, Outgoing


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


__all__ = ["STAFF", "ClinicIds", "Stalling", "email_of", "open_clinic", "register"]
