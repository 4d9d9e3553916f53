"""What notification's API answers, as schemas for its OpenAPI document."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


MessageStatus = Literal["pending", "sending", "sent", "failed", "skipped", "superseded", "expired"]


class MessageView(View):
    message_id: UUID
    kind: Literal["confirmation", "reminder", "rescheduled", "cancelled"]
    channel: Literal["email", "sms"] | None
    address: str | None
    language: str
    due_at: dt.datetime = Field(description="When it is (was) to go out, after quiet hours.")
    before_minutes: int | None = Field(description="A reminder's distance to the start.")
    status: MessageStatus
    reason: str | None = Field(description="Why it was skipped, retried, failed or expired.")
    attempts: int
    sent_at: dt.datetime | None = Field(description="When the provider took it.")
    delivery: str | None = Field(
        description="The provider's last report: accepted, queued, sending, sent, delivered, "
        "undelivered, failed (SMS); sent (email, once the server took it)."
    )
    delivery_at: dt.datetime | None


class MessageHistory(View):
    appointment_id: UUID
    messages: list[MessageView] = Field(description="Every message, by due time.")


class OptOutView(View):
    channel: Literal["email", "sms"]
    address: str
    opted_out: bool
    since: dt.datetime | None
    source: str | None


class ContactPreferences(View):
    patient_id: UUID
    preferred_channel: str
    language: str
    consent_sms: bool
    consent_email: bool
    time_zone: str | None
    addresses: list[OptOutView] = Field(
        description="Each address messages could go to, and whether it opted out."
    )
