"""Request bodies of the public API, on the platform's strict types
(``clinic.platform.strict``): unknown fields are refused, nothing is coerced, text carries no
control characters, dates and instants lie within the platform's calendar, sizes are
bounded. The gateway checks them before any service is asked; what the organisation and
actor are comes from the token, never from a body.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from clinic.platform.strict import (
    Count,
    Day,
    Flag,
    Instant,
    Line,
    Name,
    Short,
    StrictModel,
    Text,
    TimeOfDay,
    WallClock,
)

Language = Annotated[Line, Field(max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
Category = Literal["provider", "room", "device"]
PartOfDay = Literal["morning", "afternoon", "evening"]


class Body(StrictModel):
    def forwarded(self) -> dict[str, Any]:
        """What the service receives: the fields the client gave, as JSON."""
        return self.model_dump(mode="json", exclude_unset=True)


class _When(Body):
    """Exactly one of ``start`` (an instant) and ``local_start`` (wall-clock time there)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["start"]}, {"required": ["local_start"]}]}
    )

    start: Instant | None = Field(
        None,
        description="The instant, RFC 3339 with its offset.",
        examples=["2026-12-07T09:00:00Z"],
    )
    local_start: WallClock | None = Field(
        None,
        description="Wall-clock time at the location (no offset); refused when it does not "
        "exist or happens twice on a daylight saving night.",
    )

    @model_validator(mode="after")
    def _one_of(self) -> _When:
        if (self.start is None) == (self.local_start is None):
            raise ValueError("give exactly one of start (an instant) or local_start")
        return self


class Reservation(_When):
    appointment_type_id: UUID
    location_id: UUID
    patient_id: UUID | None = Field(
        None,
        description="The patient it is for. A patient's token books for that patient and may "
        "leave it out; staff name the patient.",
    )
    preferred_resources: dict[Short, UUID] = Field(
        default_factory=dict,
        max_length=10,
        description="Role -> resource, to pick a member of a pool (e.g. the patient's doctor).",
    )
    allow_overbooking: Flag = Field(
        False, description="Staff only: book beyond a provider's overbooking allowance."
    )
    note: Text = Field("", max_length=2000)


class BookingRequest(Reservation):
    """Book an appointment outright."""


class HoldRequest(Reservation):
    """Hold a time for a few minutes while the patient finishes booking."""

    hold_minutes: Count | None = Field(
        None, ge=1, le=120, description="How long the hold lasts; booking's default when left out."
    )


class RescheduleRequest(_When):
    preferred_resources: dict[Short, UUID] = Field(default_factory=dict, max_length=10)
    allow_overbooking: Flag = False


class ReasonRequest(Body):
    reason: Text = Field(min_length=1, max_length=500, examples=["the patient is unwell"])


class EmptyRequest(Body):
    """No fields: the command is named by its path."""


Weekday = Annotated[Count, Field(ge=1, le=7)]


def _distinct(values: list[int]) -> list[int]:
    if len(set(values)) != len(values):
        raise ValueError("each weekday at most once")
    return values


class JoinWaitlistRequest(Body):
    patient_id: UUID | None = Field(
        None, description="A patient's token joins for that patient; staff name the patient."
    )
    appointment_type_id: UUID
    location_ids: list[UUID] = Field(min_length=1, max_length=20)
    earliest: Day
    latest: Day
    times_of_day: list[PartOfDay] = Field(default_factory=list, max_length=3)
    provider_id: UUID | None = None
    note: Text = Field("", max_length=2000)
    priority: Count = Field(
        5, ge=1, le=9, description="1 (most urgent) to 9; set by the clinic (patients: 5)."
    )
    weekdays: Annotated[list[Weekday], Field(max_length=7), AfterValidator(_distinct)] = Field(
        default_factory=list, description="ISO weekdays the patient can come; empty: any."
    )


Channel = Literal["email", "sms", "phone", "none"]
Gender = Literal["male", "female", "other", "unknown"]
TimeZoneName = Annotated[
    Line,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$", examples=["Europe/Berlin"]),
]


class ContactItem(Body):
    system: Literal["phone", "email", "sms"]
    value: Line = Field(min_length=3, max_length=200)
    use: Literal["home", "work", "mobile", "temp", "old"] | None = None


class AddressItem(Body):
    lines: list[Annotated[Line, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=4
    )
    city: Line = Field("", max_length=100)
    district: Line = Field("", max_length=100)
    state: Line = Field("", max_length=100)
    postal_code: Line = Field("", max_length=20)
    country: Line = Field("", max_length=2, description="ISO 3166-1 alpha-2, e.g. DE.")


class IdentifierItem(Body):
    system: Line = Field(min_length=1, max_length=200, examples=["urn:oid:1.2.276.0.76.4.8"])
    value: Line = Field(min_length=1, max_length=100, examples=["MRN-004711"])


class RegisterPatientRequest(Body):
    given_name: Name
    family_name: Name
    birth_date: Day
    gender: Gender = "unknown"
    address: AddressItem | None = None
    contacts: list[ContactItem] = Field(default_factory=list, max_length=10)
    time_zone: TimeZoneName | None = None
    preferred_channel: Channel = "email"
    language: Language = "en"
    consent_sms: Flag = False
    consent_email: Flag = False
    identifiers: list[IdentifierItem] = Field(default_factory=list, max_length=10)


class UpdatePatientRequest(Body):
    """Only the fields given change."""

    given_name: Name | None = None
    family_name: Name | None = None
    birth_date: Day | None = None
    gender: Gender | None = None
    address: AddressItem | None = None
    contacts: list[ContactItem] | None = Field(None, max_length=10)
    time_zone: TimeZoneName | None = None


class PreferencesRequest(Body):
    """How the patient wants to hear from the clinic; only the fields given change."""

    preferred_channel: Channel | None = None
    language: Language | None = None
    consent_sms: Flag | None = None
    consent_email: Flag | None = None


# Reference data administration.


class RegisterLocationRequest(Body):
    name: Name
    time_zone: TimeZoneName
    address: dict[Short, Annotated[Line, Field(max_length=200)]] = Field(
        default_factory=dict, max_length=20
    )


class UpdateLocationRequest(Body):
    name: Name | None = None
    address: dict[Short, Annotated[Line, Field(max_length=200)]] | None = Field(None, max_length=20)


class RegisterResourceRequest(Body):
    name: Name
    kind: Short = Field(description="e.g. 'physician', 'exam-room', 'ultrasound'")
    specialties: list[Short] = Field(default_factory=list, max_length=20)
    location_ids: list[UUID] = Field(min_length=1, max_length=50)
    overbooking_allowance: Count = Field(0, ge=0, le=10)
    languages: list[Language] = Field(
        default_factory=list,
        max_length=20,
        description="A provider's languages with patients (BCP 47), most fluent first.",
    )


class UpdateResourceRequest(Body):
    name: Name | None = None
    kind: Short | None = None
    specialties: list[Short] | None = Field(None, max_length=20)
    location_ids: list[UUID] | None = Field(None, min_length=1, max_length=50)
    languages: list[Language] | None = Field(None, max_length=20)


class RetireRequest(Body):
    reason: Text = Field("", max_length=500, examples=["the clinic moved"])


class WeeklyHoursItem(Body):
    location_id: UUID
    weekday: Count = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    start: TimeOfDay
    end: TimeOfDay
    effective_from: Day | None = None
    effective_until: Day | None = None


class WeeklyHoursRequest(Body):
    hours: list[WeeklyHoursItem] = Field(max_length=200)


class ScheduleExceptionRequest(Body):
    kind: Literal["leave", "holiday", "blocked", "extra"]
    start: Instant
    end: Instant
    location_id: UUID | None = None
    reason: Text = Field("", max_length=500)


class RequirementItem(Body):
    role: Short
    category: Category
    resource_id: UUID | None = None
    kind: Short | None = None
    specialty: Short | None = None


class StepItem(Body):
    name: Short
    offset_minutes: Count = Field(0, ge=0, le=24 * 60)
    duration_minutes: Count = Field(ge=1, le=24 * 60)
    requirements: list[RequirementItem] = Field(min_length=1, max_length=10)


class ReminderItem(Body):
    before_minutes: Count = Field(ge=5, le=60 * 24 * 30, description="How long before the start.")
    channel: Literal["sms", "email"] | None = Field(
        None, description="Leave out for the patient's preferred channel."
    )


class PatientTextItem(Body):
    name: Name
    description: Text = Field("", max_length=2000)
    preparation: Text = Field("", max_length=4000)


class AppointmentTypeFields(Body):
    buffer_before_minutes: Count | None = Field(None, ge=0, le=240)
    buffer_after_minutes: Count | None = Field(None, ge=0, le=240)
    seats: Count | None = Field(None, ge=1, le=500)
    minimum_notice_minutes: Count | None = Field(None, ge=0, le=60 * 24 * 90)
    maximum_horizon_days: Count | None = Field(None, ge=1, le=3650)
    cancellation_cutoff_minutes: Count | None = Field(None, ge=0, le=60 * 24 * 30)
    reschedule_cutoff_minutes: Count | None = Field(None, ge=0, le=60 * 24 * 30)
    patient_bookable: Flag | None = None
    preparation: Text | None = Field(None, max_length=4000)
    specialty: Short | None = None
    reminder_plan: list[ReminderItem] | None = Field(
        None, max_length=5, description="When reminders go out, e.g. a day and two hours before."
    )
    patient_facing: dict[Language, PatientTextItem] | None = Field(
        None, max_length=20, description="Per BCP 47 language: what patients read."
    )


class DefineAppointmentTypeRequest(AppointmentTypeFields):
    name: Name
    steps: list[StepItem] = Field(min_length=1, max_length=10)


class UpdateAppointmentTypeRequest(AppointmentTypeFields):
    """Only the fields given change."""

    name: Name | None = None
    steps: list[StepItem] | None = Field(None, min_length=1, max_length=10)
