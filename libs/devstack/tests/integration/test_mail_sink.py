"""The local mail sink over real sockets on 127.0.0.1: what its SMTP server accepts is listed
over HTTP, oldest first, with when it was received, also from the Maildir it keeps (which
outlives the process; make chaos reads those times to tell a resend after a kill from a
message sent twice)."""

from __future__ import annotations

import asyncio
import smtplib
import time
from email.message import EmailMessage
from pathlib import Path

import httpx

from clinic.devstack.sinks import Sinks


def send(port: int, message_id: str) -> None:
    message = EmailMessage()
    message["From"], message["To"] = "clinic@example.org", "ana@example.org"
    message["Subject"], message["Message-ID"] = "Your appointment", message_id
    message.set_content("See you on Friday.")
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.send_message(message)


async def test_each_message_is_listed_once_per_delivery_in_order_with_when_it_arrived(
    tmp_path: Path,
) -> None:
    for maildir in (tmp_path / "mail", None):
        sinks = await Sinks(maildir=maildir).start()
        try:
            began = time.time()
            for message_id in ("<m1@clinic.test>", "<m2@clinic.test>", "<m1@clinic.test>"):
                await asyncio.to_thread(send, sinks.smtp_port, message_id)
            async with httpx.AsyncClient() as client:
                listed = (await client.get(f"{sinks.sms_base_url}/mail")).json()
        finally:
            await sinks.stop()
        assert [m["message_id"] for m in listed] == [
            "<m1@clinic.test>",
            "<m2@clinic.test>",
            "<m1@clinic.test>",
        ]
        times = [m["received_at"] for m in listed]
        assert times == sorted(times)
        assert began - 1 <= times[0] <= times[-1] <= time.time() + 1
