"""What the public API answers, as schemas for its OpenAPI document. The services build the
answers; these say which fields a client may rely on (more may come: clients ignore fields
they do not know, and schemathesis checks every answer against these)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Status = Literal[
    "proposed",
    "pending",
    "booked",
    "arrived",
    "fulfilled",
    "cancelled",
    "noshow",
    "entered-in-error",
    "checked-in",
    "waitlist",
]
Side = Literal["patient", "clinic", "system"]


class View(BaseModel):
    model_config = ConfigDict(extra="allow")


class ParticipantView(View):
    resource_id: UUID
    category: Literal["provider", "room", "device"]
    role: str
    start: AwareDatetime
    end: AwareDatetime


class CancellationView(View):
    by: str
    reason: str
    at: AwareDatetime | None


class AppointmentView(View):
    id: UUID
    organization_id: UUID
    status: Status
    location_id: UUID
    appointment_type_id: UUID
    patient_id: UUID
    start: AwareDatetime
    end: AwareDatetime
    hold_expires_at: AwareDatetime | None
    booked_by: Side
    note: str
    participants: list[ParticipantView]
    cancellation: CancellationView | None
    attendance_confirmed_at: AwareDatetime | None = None
    version: int = Field(description="Also the ETag; send it as If-Match to change safely.")


class ActorView(View):
    user_id: str
    role: str
    channel: str


class AppointmentEventView(View):
    version: int
    event: str = Field(description="Held, Booked, Rescheduled, Cancelled, StatusChanged, ...")
    recorded_at: AwareDatetime | None
    by: Side | None
    reason: str | None
    status: Status
    start: AwareDatetime
    end: AwareDatetime
    resource_ids: list[UUID]
    actor: ActorView | None = None
    correlation_id: UUID | None = None
    trace_id: str | None = None


class AppointmentHistoryView(View):
    appointment_id: UUID
    events: list[AppointmentEventView]


class SlotView(View):
    start: AwareDatetime
    end: AwareDatetime
    local_start: str = Field(description="Wall-clock time at the location, with its offset.")
    local_end: str
    time_zone: str
    location_id: UUID
    resources: dict[str, UUID] = Field(
        description="Role -> the resource that would fill it (send as preferred_resources)."
    )
    resource_names: dict[str, str | None] = Field(description="Role -> the resource's name.")
    seats_left: int | None = Field(description="Seats still free in a group session.")


class SlotsPage(View):
    slots: list[SlotView]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")


class NextAvailableView(View):
    by_location: dict[str, SlotView | None] = Field(
        description="Location id -> its earliest free time (null: none within the days)."
    )
    earliest: SlotView | None


class MeView(View):
    subject: str
    role: Literal["patient", "front_desk", "provider", "clinic_admin", "org_admin", "ops"]
    organization_id: UUID
    location_ids: list[UUID] | None = Field(description="null: every location.")
    patient_id: UUID | None


class ContactView(View):
    system: str
    value: str
    use: str | None = None


class PatientView(View):
    id: UUID
    organization_id: UUID
    given_name: str
    family_name: str
    birth_date: str = Field(json_schema_extra={"format": "date"})
    gender: Literal["male", "female", "other", "unknown"]
    contacts: list[ContactView]
    preferred_channel: str
    language: str
    version: int | None = None


class PatientsPage(View):
    patients: list[PatientView]
    next_page_token: str | None


class PatientAppointmentView(View):
    id: UUID
    patient_id: UUID
    appointment_type_id: UUID
    location_id: UUID
    status: Status
    start: AwareDatetime
    end: AwareDatetime
    hold_expires_at: AwareDatetime | None
    resource_ids: list[UUID]
    version: int


class PatientAppointmentsPage(View):
    patient_id: UUID
    appointments: list[PatientAppointmentView]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")


class ContactPreferencesView(View):
    """How notification reaches the patient."""


class MessageHistoryView(View):
    """The messages notification sent (or skipped) about an appointment."""


class CalendarResourceView(View):
    id: UUID
    name: str
    category: Literal["provider", "room", "device"]
    kind: str
    time_zone: str
    retired: bool


class CalendarDayView(View):
    date: str = Field(json_schema_extra={"format": "date"})
    appointments: list[dict[str, object]]
    free: list[dict[str, object]]
    blocked: list[dict[str, object]]


class ResourceCalendarView(View):
    resource: CalendarResourceView
    days: list[CalendarDayView]


class LocationDayView(View):
    location: dict[str, object]
    date: str = Field(json_schema_extra={"format": "date"})
    resources: list[dict[str, object]] = Field(description="One column per resource.")


class LocationView(View):
    id: UUID
    name: str
    time_zone: str
    address: dict[str, str]
    retired: bool = False


class LocationsPage(View):
    locations: list[LocationView]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")


class ResourceView(View):
    id: UUID
    category: Literal["provider", "room", "device"]
    name: str
    kind: str
    specialties: list[str]
    languages: list[str] = Field(
        default_factory=list,
        description="The languages a provider sees patients in (BCP 47), most fluent first.",
    )
    location_ids: list[UUID]
    time_zone: str
    retired: bool = False


class ResourcesPage(View):
    resources: list[ResourceView]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")


class RequirementView(View):
    role: str = Field(description="What the step needs the resource for, e.g. physician.")
    category: Literal["provider", "room", "device"]
    resource_id: UUID | None = Field(description="A named resource; null: any that fits.")
    kind: str | None
    specialty: str | None


class StepView(View):
    name: str
    offset_minutes: int = Field(description="From the appointment's start.")
    duration_minutes: int
    requirements: list[RequirementView]


class PatientTextView(View):
    name: str
    description: str = ""
    preparation: str = ""


class ReminderView(View):
    before_minutes: int
    channel: str | None = Field(description="null: the patient's preferred channel.")


class AppointmentTypeView(View):
    id: UUID
    name: str
    duration_minutes: int
    patient_bookable: bool
    retired: bool = False
    steps: list[StepView] = Field(default_factory=list)
    specialty: str | None = None
    seats: int = 1
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    minimum_notice_minutes: int = 0
    maximum_horizon_days: int | None = None
    cancellation_cutoff_minutes: int = 0
    reschedule_cutoff_minutes: int | None = Field(
        default=None,
        description="Patients move a booking up to this long before its start; null: as "
        "cancelling.",
    )
    preparation: str = Field(default="", description="What to do or bring, for every patient.")
    patient_facing: dict[str, PatientTextView] = Field(
        default_factory=dict,
        description="BCP 47 language -> the name, description and preparation patients read.",
    )
    reminder_plan: list[ReminderView] = Field(default_factory=list)


class AppointmentTypesPage(View):
    appointment_types: list[AppointmentTypeView]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")


class ScheduleView(View):
    resource_id: UUID
    weekly_hours: list[dict[str, object]]
    exceptions: list[dict[str, object]]
    version: int


class WaitlistEntryView(View):
    id: UUID
    status: Literal["waitlist", "left"]
    patient_id: UUID
    appointment_type_id: UUID
    location_ids: list[UUID]
    earliest: str = Field(json_schema_extra={"format": "date"})
    latest: str = Field(json_schema_extra={"format": "date"})


class KpisView(View):
    organization_id: UUID
    period: str
    buckets: list[dict[str, object]]


class AuditEventView(View):
    id: UUID
    recorded_at: AwareDatetime
    actor: str
    role: str
    client_id: str | None
    operation: str
    method: str
    route: str
    path: str
    target_ids: list[UUID]
    patient_id: UUID | None
    outcome: int = Field(description="The HTTP status the caller got.")
    client_address: str | None
    trace_id: str | None
    replayed: bool = Field(description="A repeat answered with the first answer.")


class AuditEventsPage(View):
    audit_events: list[AuditEventView]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")


class WaitlistOfferView(View):
    offer_id: UUID
    entry_id: UUID = Field(description="The waitlist entry the offer answered.")
    patient_id: UUID
    status: Literal["placing", "live", "accepted", "lapsed", "declined", "refused"]
    reason: str | None = Field(description="Why booking refused to hold the time, if it did.")
    hold_appointment_id: UUID | None = Field(description="The hold booking placed.")
    offered_at: AwareDatetime
    expires_at: AwareDatetime | None = Field(description="When the hold lapses unless accepted.")


class FreedTimeView(View):
    freed_id: UUID
    location_id: UUID
    appointment_type_id: UUID
    start: AwareDatetime
    end: AwareDatetime
    source_appointment_id: UUID = Field(description="The appointment whose time this was.")
    status: Literal["open", "offered", "filled", "gone"]
    reason: str | None = Field(description="Why it is not offered now, when it is not.")
    found_at: AwareDatetime
    offers: list[WaitlistOfferView] = Field(description="Every offer of this time, in order.")


class FreedTimesView(View):
    freed_times: list[FreedTimeView] = Field(description="Latest start first.")
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")


class WaitlistItemView(View):
    id: UUID
    patient_id: UUID
    appointment_type_id: UUID
    location_ids: list[UUID]
    earliest: str = Field(json_schema_extra={"format": "date"})
    latest: str = Field(json_schema_extra={"format": "date"})
    priority: int
    joined_at: AwareDatetime
    active: bool = Field(description="Still waiting.")


class WaitlistPage(View):
    entries: list[WaitlistItemView]
    next_page_token: str | None = Field(description="Pass as page_token; null: the last page.")
