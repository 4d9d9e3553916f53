"""What the availability API answers, as schemas for its OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clinic.events.free_start import FreeStart


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlotsView(View):
    slots: list[FreeStart] = Field(description="Free starts, earliest first.")
    count: int


class NextAvailableView(View):
    by_location: dict[str, FreeStart | None] = Field(
        description="Location id -> its earliest free start (null when none is free)."
    )
    earliest: FreeStart | None


class RebuildFigures(View):
    source: Literal["booking", "topics"]
    events: int
    position: int | dict[str, int] = Field(
        description="Where the read ended: booking's notification id, or the end offset of "
        "each topic partition."
    )
    seconds: float
    read_seconds: float
    tail_seconds: float
    write_seconds: float
    log_seconds: float
    events_per_second: int | None
    rows: dict[str, int]


class TypeRef(View):
    id: str
    name: str | None


class CalendarParticipant(View):
    resource_id: str
    name: str | None
    role: str
    kind: str = Field(description="provider, room or device")
    start: str
    end: str


class CalendarCancellation(View):
    by: str | None
    reason: str | None
    at: str


class CalendarAppointment(View):
    id: str
    status: Literal[
        "proposed",
        "pending",
        "booked",
        "arrived",
        "checked-in",
        "fulfilled",
        "cancelled",
        "noshow",
        "entered-in-error",
    ]
    appointment_type: TypeRef
    location_id: str
    patient_id: str
    start: str = Field(description="UTC instant")
    end: str
    local_start: str = Field(description="Local time at the location, with its offset.")
    local_end: str
    hold_expires_at: str | None
    cancellation: CalendarCancellation | None
    participants: list[CalendarParticipant]
    version: int


class Span(View):
    start: str
    end: str
    local_start: str
    local_end: str
    location_id: str | None = None


class BlockedSpan(Span):
    kind: Literal["leave", "holiday", "blocked"]


class CalendarDay(View):
    date: str
    appointments: list[CalendarAppointment]
    free: list[Span] = Field(description="Working time no live claim (or buffer) holds.")
    blocked: list[BlockedSpan] = Field(description="Leave, holidays and blocked time.")


class CalendarResource(View):
    id: str
    name: str
    category: Literal["provider", "room", "device"]
    kind: str
    time_zone: str
    retired: bool


class ResourceCalendarView(View):
    resource: CalendarResource
    days: list[CalendarDay]


class ResourceColumn(CalendarDay):
    resource: CalendarResource


class CalendarLocation(View):
    id: str
    name: str
    time_zone: str
    retired: bool


class LocationDayView(View):
    location: CalendarLocation
    date: str
    resources: list[ResourceColumn]


class PatientCalendarView(View):
    patient_id: str
    appointments: list[CalendarAppointment]
    next_cursor: str | None


class Percentiles(View):
    median: float | None
    p90: float | None


class Funnel(View):
    holds_placed: int
    holds_confirmed: int = Field(description="Holds that became bookings.")
    holds_lapsed: int = Field(description="Holds that expired unconfirmed.")
    holds_released: int = Field(description="Holds cancelled before they were confirmed.")
    search_to_book_minutes: Percentiles = Field(
        description="From a session's first search (session_id) to its booking "
        "(the same UUID as X-Correlation-Id)."
    )


class KpiBucket(View):
    period_start: str
    group: str | None = Field(description="The location, provider or type id; null: all.")
    appointments_booked: int = Field(description="Appointments that were booked, by start.")
    no_show_rate: float | None = Field(description="No-shows / (no-shows + attended).")
    confirmed_appointments: int = Field(
        0,
        description="Of the appointments whose outcome is known (no-show or attended): "
        "those whose attendance the patient confirmed, whoever recorded it.",
    )
    unconfirmed_appointments: int = Field(
        0,
        description="Of the appointments whose outcome is known: those not confirmed.",
    )
    no_show_rate_confirmed: float | None = Field(
        None, description="No-shows / confirmed_appointments."
    )
    no_show_rate_unconfirmed: float | None = Field(
        None, description="No-shows / unconfirmed_appointments."
    )
    utilisation: float | None = Field(
        description="Booked provider minutes / working provider minutes."
    )
    booked_minutes: float
    working_minutes: float | None
    lead_time_minutes: Percentiles = Field(description="From booking to start.")
    cancellation_rate: float | None = Field(description="Cancelled / booked.")
    late_cancellation_rate: float | None = Field(
        description="Cancelled less than 24 hours before the start / booked."
    )
    reschedule_rate: float | None = Field(description="Moved at least once / booked.")
    fill_rate: float | None = Field(
        description="Freed provider minutes a later booking took again / freed minutes."
    )
    funnel: Funnel


class KpiView(View):
    organization_id: str
    from_: str = Field(alias="from")
    to: str
    period: Literal["day", "week", "month", "all"]
    group_by: Literal["location", "provider", "appointment_type"] | None
    buckets: list[KpiBucket]
