"""What notification's API answers, as schemas for its OpenAPI document."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from clinic.notification.planning import Kind


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


MessageStatus = Literal["pending", "sending", "sent", "failed", "skipped", "superseded", "expired"]


class MessageView(View):
    message_id: UUID
    kind: Kind = Field(description="offer: a freed time offered to a waiting patient.")
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


class OfferView(View):
    offer_id: UUID
    entry_id: UUID = Field(description="The waitlist entry the offer answered.")
    patient_id: UUID
    status: Literal["placing", "live", "accepted", "lapsed", "declined", "refused"]
    reason: str | None = Field(description="Why booking refused to hold the time, if it did.")
    hold_appointment_id: UUID | None = Field(description="The hold booking placed.")
    offered_at: dt.datetime
    expires_at: dt.datetime | None = Field(description="When the hold lapses unless accepted.")


class FreedTimeView(View):
    freed_id: UUID
    location_id: UUID
    appointment_type_id: UUID
    start: dt.datetime
    end: dt.datetime
    source_appointment_id: UUID = Field(description="The appointment whose time this was.")
    status: Literal["open", "offered", "filled", "gone"]
    reason: str | None = Field(description="Why it is not offered now, when it is not.")
    found_at: dt.datetime
    offers: list[OfferView] = Field(description="Every offer of this time, in order.")


class FreedTimes(View):
    freed_times: list[FreedTimeView] = Field(description="Latest start first.")
    next_page_token: str | None = Field(
        None, description="Pass as page_token for the next page; null: the last page."
    )


class WaitlistEntryItem(View):
    entry_id: UUID
    patient_id: UUID
    appointment_type_id: UUID
    location_ids: list[UUID]
    earliest: dt.date
    latest: dt.date
    times_of_day: list[Literal["morning", "afternoon", "evening"]]
    weekdays: list[int] = Field(description="ISO weekdays the patient can come; empty: any.")
    provider_id: UUID | None
    priority: int = Field(description="1 (most urgent) to 9.")
    joined_at: dt.datetime
    active: bool = Field(description="Still waiting (false: left, or booked from an offer).")


class WaitlistPage(View):
    entries: list[WaitlistEntryItem]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")
