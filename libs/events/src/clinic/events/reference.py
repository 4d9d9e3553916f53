"""Reference data events, on ``booking.reference.v1``.

``Patient.Registered`` v1 and ``Patient.PreferencesUpdated`` v1 are retired: they carried
personal data on a topic every service reads, and are no longer published. Their successors
(v2, with the full record) travel on ``booking.patients.v1`` (``clinic.events.patients``).
They stay here so that records already on the topic still decode.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from clinic.events.payload import EventPayload
from clinic.events.topics import Topic


class _ReferenceEvent(EventPayload):
    topic: ClassVar[Topic] = Topic.REFERENCE


class OrganizationRegistered(_ReferenceEvent):
    """A tenant (hospital group) exists."""

    event_type: ClassVar[str] = "Organization.Registered"
    organization_id: UUID
    name: str


class LocationRegistered(_ReferenceEvent):
    """A clinic location and the IANA time zone its schedules are written in."""

    event_type: ClassVar[str] = "Location.Registered"
    location_id: UUID
    name: str
    time_zone: str
    address: dict[str, str] = Field(default_factory=dict)


class LocationUpdated(LocationRegistered):
    """A location's name or address changed (its time zone never does); the whole location."""

    event_type: ClassVar[str] = "Location.Updated"


class LocationRetired(_ReferenceEvent):
    """The location takes no new bookings; its past and booked appointments stay."""

    event_type: ClassVar[str] = "Location.Retired"
    location_id: UUID
    reason: str = ""


class ResourceRegistered(_ReferenceEvent):
    """A provider, room or device whose time can be booked."""

    event_type: ClassVar[str] = "Resource.Registered"
    resource_id: UUID
    category: str = Field(description="provider, room or device")
    name: str
    kind: str
    specialties: tuple[str, ...] = ()
    location_ids: tuple[UUID, ...]
    time_zone: str = Field(description="The zone the resource's days are cut in.")
    overbooking_allowance: int = 0
    languages: tuple[str, ...] = Field(
        default=(),
        description="The languages a provider sees patients in (BCP 47 tags, e.g. de, en, "
        "tr), most fluent first; empty when not said. Added later: older events lack it.",
    )


class ResourceUpdated(ResourceRegistered):
    """A resource's name, kind, specialties, languages or locations changed; the whole
    resource."""

    event_type: ClassVar[str] = "Resource.Updated"


class ResourceRetired(_ReferenceEvent):
    """The resource takes no new bookings (it left, or was decommissioned); its booked
    appointments stay until the clinic moves or cancels them."""

    event_type: ClassVar[str] = "Resource.Retired"
    resource_id: UUID
    reason: str = ""


class OverbookingAllowanceSet(_ReferenceEvent):
    event_type: ClassVar[str] = "Resource.OverbookingAllowanceSet"
    resource_id: UUID
    allowance: int


class RequirementSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    role: str
    category: str
    resource_id: UUID | None = None
    kind: str | None = None
    specialty: str | None = None


class StepSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    offset_minutes: int
    duration_minutes: int
    requirements: tuple[RequirementSpec, ...]


class ReminderSpec(BaseModel):
    """One reminder of a type's plan: sent ``before_minutes`` before the start, by the
    patient's preferred channel unless ``channel`` names one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    before_minutes: int
    channel: str | None = None


class PatientFacingText(BaseModel):
    """What patients read about a type, in one language."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    preparation: str = ""


class AppointmentTypeDefined(_ReferenceEvent):
    """What a visit needs: steps and their resources, buffers, seats and booking policy,
    and what patients are told: its reminder plan and its texts per language."""

    event_type: ClassVar[str] = "AppointmentType.Defined"
    appointment_type_id: UUID
    name: str
    steps: tuple[StepSpec, ...]
    buffer_before_minutes: int
    buffer_after_minutes: int
    seats: int
    minimum_notice_minutes: int
    maximum_horizon_days: int
    cancellation_cutoff_minutes: int
    patient_bookable: bool
    preparation: str = ""
    specialty: str | None = None
    reschedule_cutoff_minutes: int | None = Field(
        None, description="Patients move up to this long before the start; null: as cancelling."
    )
    reminder_plan: tuple[ReminderSpec, ...] = ()
    patient_facing: dict[str, PatientFacingText] = Field(
        default_factory=dict, description="BCP 47 language -> name, description, preparation."
    )


class AppointmentTypeUpdated(AppointmentTypeDefined):
    """A type's definition changed (new bookings follow it; booked ones keep their time)."""

    event_type: ClassVar[str] = "AppointmentType.Updated"


class AppointmentTypeRetired(_ReferenceEvent):
    """The type takes no new bookings; booked appointments of it stay."""

    event_type: ClassVar[str] = "AppointmentType.Retired"
    appointment_type_id: UUID
    reason: str = ""


class ContactPoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str
    value: str


class PatientRegistered(_ReferenceEvent):
    """Retired (see the module docstring): ``clinic.events.patients.PatientRegistered``."""

    event_type: ClassVar[str] = "Patient.Registered"
    patient_id: UUID
    given_name: str
    family_name: str
    birth_date: dt.date
    contacts: tuple[ContactPoint, ...] = ()
    preferred_channel: str
    language: str


class PatientPreferencesUpdated(_ReferenceEvent):
    """Retired (see the module docstring)."""

    event_type: ClassVar[str] = "Patient.PreferencesUpdated"
    patient_id: UUID
    preferred_channel: str
    language: str
