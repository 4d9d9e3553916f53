"""What the booking API answers, as schemas for its OpenAPI document (the views themselves are
built in ``views.py`` and ``queries.py``; the contract tests and schemathesis check that every
answer conforms to these)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from clinic.events.appointments import AppointmentStatus
from clinic.events.free_start import FreeStart

Instant = AwareDatetime
LocalTime = str


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganizationRegistered(View):
    id: UUID
    name: str


class OrganizationView(View):
    id: UUID
    name: str
    location_ids: list[UUID]
    resource_ids: list[UUID]
    appointment_type_ids: list[UUID]


class LocationView(View):
    id: UUID
    organization_id: UUID
    name: str
    address: dict[str, str]
    time_zone: str
    retired: bool = Field(False, description="A retired location takes no new bookings.")
    version: int | None = None


class ResourceView(View):
    id: UUID
    organization_id: UUID
    category: Literal["provider", "room", "device"]
    name: str
    kind: str
    specialties: list[str]
    languages: list[str] = Field(
        default_factory=list, description="BCP 47 tags a provider sees patients in."
    )
    location_ids: list[UUID]
    time_zone: str
    overbooking_allowance: int
    retired: bool = Field(False, description="A retired resource is in no pool any more.")
    version: int | None = None


class RequirementView(View):
    role: str
    category: Literal["provider", "room", "device"]
    resource_id: UUID | None
    kind: str | None
    specialty: str | None


class StepView(View):
    name: str
    offset_minutes: int
    duration_minutes: int
    requirements: list[RequirementView]


class ReminderView(View):
    before_minutes: int
    channel: Literal["sms", "email"] | None = Field(
        description="null: the patient's preferred channel."
    )


class PatientTextView(View):
    name: str
    description: str
    preparation: str


class AppointmentTypeView(View):
    id: UUID
    organization_id: UUID
    name: str
    duration_minutes: int
    steps: list[StepView]
    buffer_before_minutes: int
    buffer_after_minutes: int
    seats: int
    minimum_notice_minutes: int
    maximum_horizon_days: int
    cancellation_cutoff_minutes: int
    patient_bookable: bool
    preparation: str
    specialty: str | None
    reschedule_cutoff_minutes: int | None = Field(
        None, description="Patients move a booking up to this long before its start."
    )
    reminder_plan: list[ReminderView] = []
    patient_facing: dict[str, PatientTextView] = Field(
        {}, description="BCP 47 language -> what patients read."
    )
    retired: bool = Field(False, description="A retired type takes no new bookings.")
    version: int | None = None


class ContactView(View):
    system: str
    value: str
    use: str | None = None


class AddressView(View):
    lines: list[str]
    city: str
    district: str
    state: str
    postal_code: str
    country: str


class IdentifierView(View):
    system: str
    value: str


class ConsentView(View):
    sms: bool
    email: bool


class PatientView(View):
    id: UUID
    organization_id: UUID
    given_name: str
    family_name: str
    birth_date: str = Field(json_schema_extra={"format": "date"})
    gender: Literal["male", "female", "other", "unknown"] = "unknown"
    address: AddressView | None = None
    contacts: list[ContactView]
    time_zone: str | None = None
    preferred_channel: str
    language: str
    consent: ConsentView | None = None
    identifiers: list[IdentifierView] = []
    merged_into: UUID | None = Field(None, description="Set when merged into another record.")
    merged_ids: list[UUID] = Field([], description="Duplicates merged into this record.")
    version: int | None = None


class PatientSearchView(View):
    patients: list[PatientView]


class PatientAppointmentView(View):
    id: UUID
    patient_id: UUID = Field(description="The record it was booked for (a merged duplicate's).")
    appointment_type_id: UUID
    location_id: UUID
    status: AppointmentStatus
    start: Instant
    end: Instant
    hold_expires_at: Instant | None
    resource_ids: list[UUID]
    version: int


class PatientAppointmentsView(View):
    patient_id: UUID
    appointments: list[PatientAppointmentView]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null: none.")


class WeeklyHoursView(View):
    location_id: UUID
    weekday: int
    start: str = Field(description="HH:MM local wall-clock time")
    end: str
    effective_from: str | None
    effective_until: str | None


class ExceptionView(View):
    id: UUID
    kind: Literal["leave", "holiday", "blocked", "extra"]
    start: Instant
    end: Instant
    location_id: UUID | None
    reason: str


class ScheduleView(View):
    resource_id: UUID
    weekly_hours: list[WeeklyHoursView]
    exceptions: list[ExceptionView]
    version: int


class ParticipantView(View):
    resource_id: UUID
    category: Literal["provider", "room", "device"]
    role: str
    start: Instant
    end: Instant


class CancellationView(View):
    by: str
    reason: str
    at: Instant | None


class AppointmentView(View):
    id: UUID
    organization_id: UUID
    status: AppointmentStatus
    location_id: UUID
    appointment_type_id: UUID
    patient_id: UUID
    start: Instant
    end: Instant
    hold_expires_at: Instant | None
    booked_by: Literal["patient", "clinic", "system"]
    note: str
    participants: list[ParticipantView]
    cancellation: CancellationView | None
    attendance_confirmed_at: Instant | None = Field(
        None,
        description="When the patient confirmed they will come (FHIR: the patient "
        "participant accepted); null: not confirmed.",
    )
    attendance_confirmed_by: Literal["patient", "clinic", "system"] | None = Field(
        None, description="The side that recorded the confirmation; null: not confirmed."
    )
    version: int


class ActorView(View):
    user_id: str
    role: str
    channel: str


class AppointmentEventView(View):
    version: int
    event: str = Field(
        description="Held, Booked, HoldConfirmed, Rescheduled, Cancelled, AttendanceConfirmed, ..."
    )
    recorded_at: Instant | None
    by: Literal["patient", "clinic", "system"] | None = Field(
        description="Which side asked for it: the actor's side, or where the event says."
    )
    reason: str | None
    status: AppointmentStatus = Field(description="The status after this event.")
    start: Instant
    end: Instant
    resource_ids: list[UUID]
    actor: ActorView | None = Field(
        None, description="Who asked for it (absent on events recorded before actors were)."
    )
    correlation_id: UUID | None = None
    trace_id: str | None = Field(None, description="The W3C trace id of the request.")


class AppointmentHistoryView(View):
    appointment_id: UUID
    events: list[AppointmentEventView]


class WaitlistEntryView(View):
    id: UUID
    organization_id: UUID
    status: Literal["waitlist", "left"]
    patient_id: UUID
    appointment_type_id: UUID
    location_ids: list[UUID]
    earliest: str = Field(json_schema_extra={"format": "date"})
    latest: str = Field(json_schema_extra={"format": "date"})
    times_of_day: list[Literal["morning", "afternoon", "evening"]]
    provider_id: UUID | None
    note: str
    priority: int = Field(
        5, ge=1, le=9, description="1 (most urgent) to 9 (least), set by the clinic; 5 unranked."
    )
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] = Field(
        [],
        description="ISO weekdays the patient can come (1 = Monday .. 7 = Sunday), in order; "
        "empty: any day.",
    )
    joined_at: Instant


class ClaimEventView(View):
    aggregate_id: UUID
    version: int
    event: str
    recorded_at: Instant | None
    appointment_id: UUID | None = None


class ClaimView(View):
    appointment_id: UUID
    role: str
    start: Instant
    end: Instant
    blocked_from: Instant
    blocked_until: Instant
    local_start: LocalTime
    local_end: LocalTime
    seats: int
    session: str | None
    overbooked: bool
    hold_expires_at: Instant | None
    state: Literal["held", "booked", "hold-expired (free)"]
    claimed_by_event: ClaimEventView


class HistoryEntryView(View):
    version: int
    event: str
    recorded_at: Instant | None
    appointment_id: UUID | None = None


class WindowView(View):
    location_id: UUID
    start: Instant
    end: Instant
    local_start: LocalTime
    local_end: LocalTime


class ResourceDayView(View):
    resource_id: UUID
    resource_day_id: UUID
    local_date: str = Field(json_schema_extra={"format": "date"})
    time_zone: str
    day_start: Instant
    day_end: Instant
    working_windows: list[WindowView]
    claims: list[ClaimView]
    history: list[HistoryEntryView]


class OwnerView(View):
    resource_id: UUID
    at: Instant
    owners: list[ClaimView]
    free: bool
    resource_day_id: UUID


class DemoView(View):
    organization_id: UUID
    locations: dict[str, UUID]
    providers: list[UUID]
    appointment_types: dict[str, UUID]
    patients: list[UUID]
    patient_names: dict[UUID, str] = Field(default_factory=dict, description="Id -> full name.")


class ReplayPage(View):
    top: int = Field(description="The newest notification id in the store.")
    next: int = Field(description="Pass as ``after`` for the following page.")
    events: list[dict[str, object]] = Field(description="Envelopes, as the relay publishes.")


class Republishing(View):
    status: Literal["republishing"]
    from_position: int


class Alternatives(View):
    """On a 409 for a time that cannot be had, the free starts nearest to it."""

    alternatives: list[FreeStart]
