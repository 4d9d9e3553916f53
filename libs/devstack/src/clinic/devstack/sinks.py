"""Local stand-ins for the providers notification sends through, kept on this machine:

- **Mail sink**: a real SMTP server (``aiosmtpd``) that keeps every message it accepts in a
  Maildir (each one a file you can open) and in memory for tests. Recipients can be set to
  be refused with a given reply (``refuse``), the way a real server refuses a mailbox.
- **SMS sink**: an HTTP server that speaks the Twilio-style Messages API notification's SMS
  adapter uses (``POST /2010-04-01/Accounts/{sid}/Messages.json`` with basic auth; 201 with
  a ``sid``; 400 with a code for an invalid number), keeps what it receives, and reports each
  message's delivery to its ``StatusCallback`` (sent, then delivered; ``+15005550010``
  gives ``undelivered``, ``+15005550011`` ``failed``), signed with ``X-Twilio-Signature``.
  ``POST /replies`` makes a phone answer (``{"from": "+49...", "body": "STOP"}``): the sink
  posts it to the inbound webhook, signed, as the provider would.
- Both listed over HTTP: ``GET /mail`` (each message's recipient, subject, Message-ID and
  when it was received), ``GET /mail/{n}`` (the message as received), ``GET /sms``.

``python -m clinic.devstack.sinks --maildir DIR --smtp-port N --http-port M`` runs both (what
``make up`` starts; ``SINKS_MAILDIR``, ``SINKS_SMTP_PORT``, ``SINKS_PORT``,
``SINKS_INBOUND_URL`` set the same); tests run them in-process with :class:`Sinks`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import email
import email.policy
import functools
import hashlib
import hmac
import itertools
import logging
import mailbox
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from clinic.devstack.components import free_port

log = logging.getLogger(__name__)
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
INVALID = {"+15005550001": (21211, "The 'To' number is not a valid phone number.")}
UNDELIVERED = {"+15005550010": ("undelivered", 30003), "+15005550011": ("failed", 30005)}


@dataclass
class Received:
    sender: str
    recipients: list[str]
    raw: bytes
    at: float = field(default_factory=time.time)
    """When the server accepted it (seconds since the epoch)."""

    @functools.cached_property
    def message(self) -> EmailMessage:
        """Parsed when first read: receiving stays as cheap as a real server's."""
        return _parsed(self.raw)


class MailHandler:
    def __init__(self, maildir: Path | None, refuse: Mapping[str, str] | None = None) -> None:
        self.box = None
        if maildir is not None:
            for part in ("tmp", "new", "cur"):  # Maildir makes them only for a new directory
                (maildir / part).mkdir(parents=True, exist_ok=True)
            self.box = mailbox.Maildir(maildir, create=True)
        self.refuse = dict(refuse or {})
        self.received: list[Received] = []
        self.lock = threading.Lock()

    def stored(self) -> list[EmailMessage]:
        """Every message kept, oldest first: the Maildir's when there is one (it outlives
        the process), else those received since start."""
        return [message for _, message in self.stored_with_times()]

    def stored_with_times(self) -> list[tuple[float, EmailMessage]]:
        """Every message kept, oldest first, with when it was received (a Maildir file's
        name begins with its seconds and microseconds)."""
        with self.lock:
            if self.box is None:
                return [(r.at, r.message) for r in self.received]
            timed = sorted((_received_at(k), k) for k in self.box.iterkeys())
            return [(at, _parsed(self.box.get_bytes(k))) for at, k in timed]

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        with self.lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), raw))
            if self.box is not None:
                self.box.add(raw)
        return "250 Message accepted for delivery"


def _received_at(key: str) -> float:
    """A Maildir key's time: ``<seconds>.M<microseconds>P<pid>...``."""
    seconds, unique = key.split(".")[0:2]
    micro = re.match(r"M(\d+)", unique)
    return int(seconds) + (int(micro.group(1)) / 1e6 if micro else 0.0)


def _parsed(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@dataclass
class Sms:
    sid: str
    to: str
    sender: str
    body: str
    status: str
    status_callback: str | None
    statuses: list[str] = field(default_factory=list)


class SmsSink:
    def __init__(self, account_sid: str, auth_token: str, inbound_url: str | None = None) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.inbound_url = inbound_url
        self.messages: list[Sms] = []
        self.replies: list[dict[str, Any]] = []
        self._counter = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            sid, _, token = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(f"{sid}:{token}", f"{self.account_sid}:{self.auth_token}")

    async def create(self, request: Request) -> Response:
        if request.path_params["account"] != self.account_sid or not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        form = await request.form()
        to, body = str(form.get("To") or ""), str(form.get("Body") or "")
        if not E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in INVALID:
            return _error(400, *INVALID[to])
        if not body:
            return _error(400, 21602, "Message body is required.")
        callback = str(form.get("StatusCallback") or "") or None
        sid = f"SM{uuid.uuid4().hex}"
        sms = Sms(sid, to, str(form.get("From") or ""), body, "queued", callback, ["queued"])
        self.messages.append(sms)
        if callback:
            task = asyncio.create_task(self._report(sms))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return JSONResponse(
            {"sid": sid, "status": "queued", "to": to, "from": sms.sender, "body": body,
             "account_sid": self.account_sid, "num_segments": str(1 + len(body) // 153)},
            status_code=201,
        )  # fmt: skip

    async def _report(self, sms: Sms) -> None:
        final, code = UNDELIVERED.get(sms.to, ("delivered", None))
        async with httpx.AsyncClient(timeout=10) as http:
            for status in ("sent", final):
                sms.status = status
                sms.statuses.append(status)
                form = {"MessageSid": sms.sid, "MessageStatus": status, "To": sms.to,
                        "From": sms.sender, "AccountSid": self.account_sid}  # fmt: skip
                if code is not None and status == final:
                    form["ErrorCode"] = str(code)
                await self._post(http, str(sms.status_callback), form)

    async def _post(self, http: httpx.AsyncClient, url: str, form: dict[str, str]) -> None:
        signature = twilio_signature(self.auth_token, url, form)
        try:
            await http.post(url, data=form, headers={"X-Twilio-Signature": signature})
        except httpx.HTTPError as error:
            log.warning("webhook not reached", extra={"url": url, "error": repr(error)})

    async def reply(self, request: Request) -> Response:
        """A phone answers: posted to the inbound webhook as the provider would."""
        try:
            body = await request.json()
            sender, text = str(body["from"]), str(body["body"])
        except (ValueError, KeyError, TypeError):
            return _error(400, 21602, 'Send {"from": "+E164", "body": "text"}.')
        if not self.inbound_url:
            return _error(409, 0, "no inbound webhook is configured")
        to = next((m.sender for m in reversed(self.messages) if m.to == sender), "")
        form = {"MessageSid": f"SM{uuid.uuid4().hex}", "From": sender, "To": to,
                "Body": text, "AccountSid": self.account_sid}  # fmt: skip
        async with httpx.AsyncClient(timeout=10) as http:
            signature = twilio_signature(self.auth_token, self.inbound_url, form)
            answer = await http.post(
                self.inbound_url, data=form, headers={"X-Twilio-Signature": signature}
            )
        self.replies.append({**form, "answer": answer.status_code})
        return JSONResponse({"webhook_status": answer.status_code, "webhook_body": answer.text})

    async def listing(self, request: Request) -> Response:
        return JSONResponse(
            [
                {"sid": m.sid, "to": m.to, "from": m.sender, "body": m.body, "statuses": m.statuses}
                for m in self.messages
            ]
        )

    async def settle(self) -> None:
        """Wait for every status report under way (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def twilio_signature(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    data = url + "".join(f"{k}{form[k]}" for k in sorted(form))
    return base64.b64encode(
        hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    ).decode()


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "status": status, "more_info": ""},
        status_code=status,
    )


class Sinks:
    """Both sinks, in-process: the SMTP server in aiosmtpd's thread, the HTTP server as a
    task of the running loop. Ports 0 pick free ones."""

    def __init__(
        self,
        maildir: Path | None = None,
        smtp_port: int = 0,
        http_port: int = 0,
        account_sid: str = "AClocal",
        auth_token: str = "local-sms-token",  # noqa: S107 - the local sink's own
        inbound_url: str | None = None,
        refuse: Mapping[str, str] | None = None,
    ) -> None:
        self.mail = MailHandler(maildir, refuse)
        self.sms = SmsSink(account_sid, auth_token, inbound_url)
        self._smtp_port = smtp_port
        self._http_port = http_port
        self.controller: Controller | None = None
        self.server: uvicorn.Server | None = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def smtp_port(self) -> int:
        assert self.controller is not None
        return int(self.controller.port)

    @property
    def http_port(self) -> int:
        assert self.server is not None
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def sms_base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def app(self) -> Starlette:
        def ready(request: Request) -> Response:
            return JSONResponse({"status": "ready"})

        def mail_list(request: Request) -> Response:
            return JSONResponse(
                [
                    {
                        "n": n,
                        "to": m["To"],
                        "subject": m["Subject"],
                        "date": m["Date"],
                        "message_id": m["Message-ID"],
                        "received_at": at,
                    }
                    for n, (at, m) in enumerate(self.mail.stored_with_times())
                ]
            )

        def mail_one(request: Request) -> Response:
            n, stored = request.path_params["n"], self.mail.stored()
            if n >= len(stored):
                return PlainTextResponse("no such message", status_code=404)
            return PlainTextResponse(stored[n].as_string())

        return Starlette(
            routes=[
                Route("/2010-04-01/Accounts/{account}/Messages.json", self.sms.create,
                      methods=["POST"]),
                Route("/replies", self.sms.reply, methods=["POST"]),
                Route("/sms", self.sms.listing),
                Route("/mail", mail_list),
                Route("/mail/{n:int}", mail_one),
                Route("/healthz", ready),
                Route("/readyz", ready),
            ]
        )  # fmt: skip

    async def start(self) -> Sinks:
        port = self._smtp_port or free_port()  # aiosmtpd checks its port by connecting
        self.controller = Controller(self.mail, hostname="127.0.0.1", port=port)
        await asyncio.to_thread(self.controller.start)
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self._http_port, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self._serving = asyncio.create_task(self.server.serve())
        for _ in range(1000):  # uvicorn says when it listens by a flag only
            if self.server.started:
                return self
            await asyncio.sleep(0.01)
        raise RuntimeError("the sinks' HTTP server did not start")

    async def stop(self) -> None:
        await self.sms.settle()
        if self.server is not None:
            self.server.should_exit = True
        if self._serving is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._serving
        if self.controller is not None:
            await asyncio.to_thread(self.controller.stop)


async def _serve(args: argparse.Namespace) -> None:
    sinks = Sinks(
        Path(args.maildir),
        args.smtp_port,
        args.http_port,
        args.account_sid,
        args.auth_token,
        args.inbound_url,
    )
    await sinks.start()
    print(f"mail sink: smtp://127.0.0.1:{sinks.smtp_port} keeping mail in {args.maildir}")
    print(f"sms sink and listings: {sinks.sms_base_url}/sms {sinks.sms_base_url}/mail", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sinks.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m clinic.devstack.sinks", description=__doc__)
    env = os.environ.get
    parser.add_argument(
        "--maildir", default=env("SINKS_MAILDIR"), required="SINKS_MAILDIR" not in os.environ
    )
    parser.add_argument("--smtp-port", type=int, default=int(env("SINKS_SMTP_PORT", "2525")))
    parser.add_argument("--http-port", type=int, default=int(env("SINKS_PORT", "8025")))
    parser.add_argument("--account-sid", default=env("SINKS_ACCOUNT_SID", "AClocal"))
    parser.add_argument("--auth-token", default=env("SINKS_AUTH_TOKEN", "local-sms-token"))
    parser.add_argument("--inbound-url", default=env("SINKS_INBOUND_URL"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
