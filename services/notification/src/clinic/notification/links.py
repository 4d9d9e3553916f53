"""Signed action links: what a message lets its reader do (confirm, cancel, change the time,
unsubscribe, accept a waitlist offer) without logging in.

A token carries the organisation, the appointment, the message it was written into, the
action and when it expires, and an HMAC-SHA256 tag (truncated to 128 bits) over all of them
with the service's secret: nothing in it can be changed without the tag failing, and a
token for one organisation or appointment names that one only. Tokens are compact (94
URL-safe characters) because they travel in SMS too.

Single use is not the token's business: the store records each token used (``link_uses``),
so a second use is refused whatever the first one did. Verification is pure and
constant-time in the tag.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import struct
from dataclasses import dataclass
from typing import Literal, get_args
from uuid import UUID

Action = Literal["confirm", "cancel", "reschedule", "unsubscribe", "accept"]
ACTIONS: tuple[Action, ...] = get_args(Action)
VERSION = 1
_LAYOUT = struct.Struct(">BB16s16s16sI")
"""version, action index, organisation, appointment, message, expiry (Unix seconds)."""
_TAG_BYTES = 16


class LinkRefused(ValueError):
    """A token that is not one this service signed, or no longer valid. ``reason`` is a
    stable word (malformed, tampered, expired) for problem types and metrics."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Link:
    organization_id: UUID
    appointment_id: UUID
    message_id: UUID
    action: Action
    expires_at: dt.datetime


class Signer:
    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) < 16:
            raise ValueError("the link secret has at least 16 bytes")
        self._key = key

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def sign(self, link: Link) -> str:
        expires = int(link.expires_at.timestamp())
        payload = _LAYOUT.pack(
            VERSION,
            ACTIONS.index(link.action),
            link.organization_id.bytes,
            link.appointment_id.bytes,
            link.message_id.bytes,
            max(0, min(expires, 2**32 - 1)),
        )
        return base64.urlsafe_b64encode(payload + self._tag(payload)).rstrip(b"=").decode()

    def verify(self, token: str, now: dt.datetime) -> Link:
        """The link ``token`` stands for, or :class:`LinkRefused`."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            raise LinkRefused("malformed", "This link is not one of ours.") from None
        canonical = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        if len(raw) != _LAYOUT.size + _TAG_BYTES or canonical != token:
            # One link, one spelling: base64's unused trailing bits must not make another
            # token for the same link (single use is kept per link, not per string).
            raise LinkRefused("malformed", "This link is not one of ours.")
        payload, tag = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
        if not hmac.compare_digest(tag, self._tag(payload)):
            raise LinkRefused("tampered", "This link has been changed or was not signed by us.")
        version, action, org, appointment, message, expires = _LAYOUT.unpack(payload)
        if version != VERSION or action >= len(ACTIONS):
            raise LinkRefused("malformed", "This link is not one of ours.")
        expires_at = dt.datetime.fromtimestamp(expires, dt.UTC)
        if now >= expires_at:
            raise LinkRefused("expired", "This link has expired.")
        return Link(UUID(bytes=org), UUID(bytes=appointment), UUID(bytes=message),
                    ACTIONS[action], expires_at)  # fmt: skip


def digest(link: Link) -> bytes:
    """What the store keeps of a used link: which message's which action (never the
    token), so no other spelling of it can be used again."""
    return hashlib.sha256(link.message_id.bytes + link.action.encode()).digest()
