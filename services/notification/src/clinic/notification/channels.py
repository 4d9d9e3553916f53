"""What every channel answers for one message, and what the dispatcher does with it.

A channel hands one written message to its provider (an SMTP server, an SMS API) and says
how that went, in the dispatcher's terms:
- ``Sent``: the provider took it (its reference kept for delivery reports);
- ``Retry``: it may work later (a connection refused, a 4xx SMTP reply, an HTTP 429 or
  5xx): the dispatcher tries again with backoff;
- ``Failed``: it will never work (a 5xx SMTP reply for the recipient, an invalid number):
  recorded with the provider's reason and not tried again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID


@dataclass(frozen=True)
class Outgoing:
    """A message as written, ready for its channel."""

    message_id: UUID
    organization_id: UUID
    organization: str
    channel: str
    address: str
    subject: str
    text: str
    """The email body or the SMS."""
    ics: bytes | None = None
    method: str = "REQUEST"
    """The calendar entry's iTIP method (REQUEST, CANCEL)."""
    unsubscribe_url: str | None = None


@dataclass(frozen=True)
class Sent:
    reference: str
    """The provider's id of what it took (an SMS sid, the email's Message-ID)."""
    delivery: str = "sent"


@dataclass(frozen=True)
class Retry:
    reason: str


@dataclass(frozen=True)
class Failed:
    reason: str


Outcome = Sent | Retry | Failed


class Channel(Protocol):
    name: str

    async def send(self, message: Outgoing) -> Outcome: ...

    async def close(self) -> None: ...
