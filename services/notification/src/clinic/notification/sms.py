"""SMS through a Twilio-style HTTP API: ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``
with HTTP basic authentication (account sid, auth token), the form fields ``To``, ``From``,
``Body`` and ``StatusCallback``, answered with the provider's message ``sid`` and a first
status. The base URL is configurable (the local sink in ``make up`` and tests, the provider
in production).

Replies are sorted as such an API sorts them: 201 is taken; 429 and 5xx, or no answer, are
worth another try; other 4xx (an invalid number, a number that opted out at the carrier) are
permanent, with the provider's code and message as the reason. 401/403 (wrong credentials)
are retried: an operator can fix them, and the message must not be lost meanwhile.

Status callbacks and inbound replies come back signed the Twilio way (``X-Twilio-Signature``:
base64 HMAC-SHA1, keyed by the auth token, of the full URL followed by each form field's
name and value in name order), checked by :func:`signature`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from clinic.notification.channels import Failed, Outcome, Outgoing, Retry, Sent

DELIVERY_STATES = ("accepted", "queued", "sending", "sent", "delivered", "undelivered", "failed")
"""The states a provider reports, in the order a message goes through them."""


@dataclass(frozen=True)
class SmsConfig:
    base_url: str
    account_sid: str
    auth_token: str
    sender: str
    """The From number (E.164) or messaging service."""
    status_callback_url: str | None = None
    timeout: float = 15.0


class SmsChannel:
    name = "sms"

    def __init__(self, config: SmsConfig, connections: int = 8) -> None:
        self.config = config
        self._http = httpx.AsyncClient(
            base_url=config.base_url.rstrip("/"),
            auth=(config.account_sid, config.auth_token),
            timeout=config.timeout,
            limits=httpx.Limits(max_connections=connections),
        )
        # At most as many requests as connections: httpcore's pool finds a connection for
        # each waiting request on every change, which costs quadratically in the waiters.
        self._slots = asyncio.Semaphore(connections)

    async def send(self, message: Outgoing) -> Outcome:
        form = {"To": message.address, "From": self.config.sender, "Body": message.text}
        if self.config.status_callback_url:
            form["StatusCallback"] = self.config.status_callback_url
        path = f"/2010-04-01/Accounts/{self.config.account_sid}/Messages.json"
        try:
            async with self._slots:
                response = await self._http.post(path, data=form)
        except httpx.HTTPError as error:
            return Retry(f"{type(error).__name__}: {error}")
        if response.status_code in (200, 201):
            try:
                body = response.json()
                return Sent(str(body["sid"]), str(body.get("status") or "queued"))
            except (ValueError, KeyError, TypeError):
                return Retry(f"HTTP {response.status_code} without a message sid")
        reason = _reason(response)
        if response.status_code in (401, 403, 408, 409, 429) or response.status_code >= 500:
            return Retry(reason)
        return Failed(reason)

    async def close(self) -> None:
        await self._http.aclose()


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"HTTP {response.status_code} code {body.get('code')}: {body.get('message')}"
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]}"


def signature(auth_token: str, url: str, form: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` of a request to ``url`` with ``form``."""
    data = url + "".join(f"{k}{form[k]}" for k in sorted(form))
    # surrogatepass: text no provider would send still gets a (non-matching) signature
    mac = hmac.new(auth_token.encode(), data.encode("utf-8", "surrogatepass"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def signed_by(auth_token: str, url: str, form: Mapping[str, str], given: str | None) -> bool:
    if given is None or not given.isascii():  # a base64 signature is ASCII
        return False
    return hmac.compare_digest(signature(auth_token, url, form).encode(), given.encode())
