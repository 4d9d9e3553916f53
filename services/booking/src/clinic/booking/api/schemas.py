"""Request bodies of the booking API. Unknown fields are refused; instants must carry an
offset (``Z`` or ``+01:00``); sizes are bounded."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(min_length=1, max_length=200)]
Short = Annotated[str, Field(min_length=1, max_length=80)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterOrganizationRequest(Strict):
    name: Name


class RegisterLocationRequest(Strict):
    name: Name
    time_zone: Annotated[str, Field(examples=["Europe/Berlin"], max_length=64)]
    address: dict[str, Annotated[str, Field(max_length=200)]] = Field(
        default_factory=dict, max_length=20
    )


class RegisterResourceRequest(Strict):
    category: Literal["provider", "room", "device"]
    name: Name
    kind: Short = Field(description="e.g. 'physician', 'exam-room', 'ultrasound'")
    specialties: list[Short] = Field(default_factory=list, max_length=20)
    location_ids: list[UUID] = Field(min_length=1, max_length=50)
    overbooking_allowance: int = Field(0, ge=0, le=10)


class OverbookingAllowanceRequest(Strict):
    allowance: int = Field(ge=0, le=10)


class WeeklyHoursItem(Strict):
    location_id: UUID
    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    start: dt.time
    end: dt.time
    effective_from: dt.date | None = None
    effective_until: dt.date | None = None


class WeeklyHoursRequest(Strict):
    hours: list[WeeklyHoursItem] = Field(max_length=200)


class ScheduleExceptionRequest(Strict):
    kind: Literal["leave", "holiday", "blocked", "extra"]
    start: AwareDatetime
    end: AwareDatetime
    location_id: UUID | None = None
    reason: str = Field("", max_length=500)


class RequirementItem(Strict):
    role: Short
    category: Literal["provider", "room", "device"]
    resource_id: UUID | None = None
    kind: Short | None = None
    specialty: Short | None = None


class StepItem(Strict):
    name: Short
    offset_minutes: int = Field(0, ge=0, le=24 * 60)
    duration_minutes: int = Field(gt=0, le=24 * 60)
    requirements: list[RequirementItem] = Field(min_length=1, max_length=10)


class DefineAppointmentTypeRequest(Strict):
    name: Name
    steps: list[StepItem] = Field(min_length=1, max_length=10)
    buffer_before_minutes: int = Field(0, ge=0, le=240)
    buffer_after_minutes: int = Field(0, ge=0, le=240)
    seats: int = Field(1, ge=1, le=500)
    minimum_notice_minutes: int = Field(0, ge=0, le=60 * 24 * 90)
    maximum_horizon_days: int = Field(365, ge=1, le=3650)
    cancellation_cutoff_minutes: int = Field(0, ge=0, le=60 * 24 * 30)
    patient_bookable: bool = True
    preparation: str = Field("", max_length=4000)
    specialty: Short | None = None


class ContactItem(Strict):
    system: Literal["phone", "email", "sms"]
    value: Annotated[str, Field(min_length=3, max_length=200)]


class RegisterPatientRequest(Strict):
    given_name: Name
    family_name: Name
    birth_date: dt.date
    contacts: list[ContactItem] = Field(default_factory=list, max_length=10)
    preferred_channel: Literal["email", "sms", "phone", "none"] = "email"
    language: Annotated[str, Field(min_length=2, max_length=35)] = "en"


class _When(Strict):
    start: AwareDatetime | None = Field(None, description="The instant, with its offset.")
    local_start: dt.datetime | None = Field(
        None,
        description="Wall-clock time at the location (no offset); refused when it does "
        "not exist or happens twice on a daylight saving night.",
    )

    @model_validator(mode="after")
    def _one_of(self) -> _When:
        if (self.start is None) == (self.local_start is None):
            raise ValueError("give exactly one of start (an instant) or local_start")
        if self.local_start is not None and self.local_start.tzinfo is not None:
            raise ValueError("local_start is a wall-clock time without an offset; use start")
        return self


class ReserveRequest(_When):
    appointment_type_id: UUID
    location_id: UUID
    patient_id: UUID
    preferred_resources: dict[Short, UUID] = Field(
        default_factory=dict,
        max_length=10,
        description="Role -> resource, to pick a member of a pool (e.g. the patient's doctor).",
    )
    booked_by: Literal["patient", "clinic"] = "clinic"
    allow_overbooking: bool = False
    note: str = Field("", max_length=2000)


class HoldRequest(ReserveRequest):
    hold_minutes: int | None = Field(None, ge=1, le=120)


class RescheduleRequest(_When):
    preferred_resources: dict[Short, UUID] = Field(default_factory=dict, max_length=10)
    actor: Literal["patient", "clinic"] = "clinic"
    allow_overbooking: bool = False


class CancelRequest(Strict):
    by: Literal["patient", "clinic"]
    reason: str = Field(min_length=1, max_length=500)


class JoinWaitlistRequest(Strict):
    patient_id: UUID
    appointment_type_id: UUID
    location_ids: list[UUID] = Field(min_length=1, max_length=20)
    earliest: dt.date
    latest: dt.date
    times_of_day: list[Literal["morning", "afternoon", "evening"]] = Field(
        default_factory=list, max_length=3
    )
    provider_id: UUID | None = None
    note: str = Field("", max_length=2000)


class LeaveWaitlistRequest(Strict):
    reason: str = Field(min_length=1, max_length=500)


def dumped(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json")
