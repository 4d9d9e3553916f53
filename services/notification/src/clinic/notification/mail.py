"""Email over SMTP (``aiosmtplib``): STARTTLS or implicit TLS and authentication as
configured, connections kept open and reused (one per concurrent send), a plain-text body,
the calendar entry attached as ``text/calendar``, ``Message-ID`` derived from the message
id (so a resend is recognisable as the same message), and ``List-Unsubscribe`` with
one-click unsubscription (RFC 8058).

SMTP replies are sorted the way RFC 5321 sorts them: 5xx for the recipient or the data is
permanent (``Failed``), 4xx and lost connections are worth another try (``Retry``).
"""

from __future__ import annotations

import asyncio
import email.utils
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default

import aiosmtplib

from clinic.notification.channels import Failed, Outcome, Outgoing, Retry, Sent

HEADERS = default.clone(max_line_length=998)
"""RFC 5322's hard limit: a long link in ``List-Unsubscribe`` stays one plain token (folded
at 78 characters, it would be encoded and mail clients would not find it)."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    """The From address (``Clinic <noreply@clinic.example>``)."""
    username: str | None = None
    password: str | None = None
    starttls: bool | None = None
    """True: require STARTTLS; False: never; None: when the server offers it."""
    implicit_tls: bool = False
    timeout: float = 30.0
    unsubscribe_mailto: str | None = None


def compose(message: Outgoing, sender: str, unsubscribe_mailto: str | None = None) -> EmailMessage:
    mail = EmailMessage(policy=HEADERS)
    mail["From"] = email.utils.formataddr((message.organization, email.utils.parseaddr(sender)[1]))
    mail["To"] = message.address
    mail["Subject"] = message.subject
    mail["Date"] = email.utils.formatdate(usegmt=True)
    domain = email.utils.parseaddr(sender)[1].rpartition("@")[2] or "clinic.invalid"
    mail["Message-ID"] = f"<{message.message_id}@{domain}>"
    mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to it
    targets = []
    if unsubscribe_mailto:
        targets.append(f"<mailto:{unsubscribe_mailto}?subject=unsubscribe>")
    if message.unsubscribe_url:
        targets.append(f"<{message.unsubscribe_url}>")
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if targets:
        mail["List-Unsubscribe"] = ", ".join(targets)
    mail.set_content(message.text)
    if message.ics is not None:
        mail.add_attachment(
            message.ics,
            maintype="text",
            subtype="calendar",
            filename="appointment.ics",
            params={"method": message.method},
        )
    return mail


class EmailChannel:
    name = "email"

    def __init__(self, config: SmtpConfig, connections: int = 4) -> None:
        self.config = config
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(connections)

    def _client(self) -> aiosmtplib.SMTP:
        c = self.config
        return aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password,
            use_tls=c.implicit_tls,
            start_tls=None if c.implicit_tls else c.starttls,
            timeout=c.timeout,
        )

    async def _connection(self) -> aiosmtplib.SMTP:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
        client = self._client()
        await client.connect()
        return client

    async def send(self, message: Outgoing) -> Outcome:
        mail = compose(message, self.config.sender, self.config.unsubscribe_mailto)
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            try:
                client = await self._connection()
                refused, _ = await client.send_message(mail)
            except aiosmtplib.SMTPRecipientsRefused as error:
                await _discard(client)
                return _by_code(error.recipients[0].code, error.recipients[0].message)
            except aiosmtplib.SMTPResponseException as error:
                await _discard(client)
                return _by_code(error.code, error.message)
            except (aiosmtplib.SMTPException, OSError) as error:
                await _discard(client)
                return Retry(f"{type(error).__name__}: {error}")
            self._idle.put_nowait(client)
        if refused:
            reply = next(iter(refused.values()))
            return _by_code(reply.code, reply.message)
        return Sent(mail["Message-ID"])

    async def close(self) -> None:
        while not self._idle.empty():
            await _discard(self._idle.get_nowait())


def _by_code(code: int, text: str) -> Outcome:
    reason = f"SMTP {code} {text}".strip()
    return Failed(reason) if 500 <= code < 600 else Retry(reason)


async def _discard(client: aiosmtplib.SMTP | None) -> None:
    if client is None:
        return
    if client.is_connected:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()
