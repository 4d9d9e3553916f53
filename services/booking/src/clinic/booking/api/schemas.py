"""Request bodies of the booking API, on the platform's strict types
(``clinic.platform.strict``): unknown fields are refused, nothing is coerced (``"yes"`` is no
flag, ``"5"`` no number, a date no time), text has no control characters, dates and instants
lie within the platform's calendar, sizes are bounded. Each body builds its command
(``to_command``): the route adds the tenant, the request id and what comes from the path."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from clinic.booking import commands
from clinic.booking.domain.errors import InvalidRequestError
from clinic.booking.domain.values import (
    Address,
    Category,
    Contact,
    ExceptionKind,
    Identifier,
    PatientText,
    Reminder,
    Requirement,
    Step,
    WeeklyHours,
)
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

Strict = StrictModel

Language = Annotated[Line, Field(max_length=35, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
"""A BCP 47 language tag: en, de, es-MX."""


class RegisterOrganizationRequest(Strict):
    name: Name

    def to_command(self, request_id: str) -> commands.RegisterOrganization:
        return commands.RegisterOrganization(request_id=request_id, organization_name=self.name)


class RegisterLocationRequest(Strict):
    name: Name
    time_zone: Line = Field(min_length=1, max_length=64, examples=["Europe/Berlin"])
    address: dict[Short, Annotated[Line, Field(max_length=200)]] = Field(
        default_factory=dict, max_length=20
    )

    def to_command(self, org: UUID, request_id: str) -> commands.RegisterLocation:
        return commands.RegisterLocation(
            organization_id=org,
            request_id=request_id,
            location_name=self.name,
            address=dict(self.address),
            time_zone=self.time_zone,
        )


class RegisterResourceRequest(Strict):
    category: Literal["provider", "room", "device"]
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

    def to_command(self, org: UUID, request_id: str) -> commands.RegisterResource:
        return commands.RegisterResource(
            organization_id=org,
            request_id=request_id,
            category=Category(self.category),
            resource_name=self.name,
            kind=self.kind,
            specialties=tuple(self.specialties),
            location_ids=tuple(self.location_ids),
            overbooking_allowance=self.overbooking_allowance,
            languages=tuple(self.languages),
        )


class OverbookingAllowanceRequest(Strict):
    allowance: Count = Field(ge=0, le=10)

    def to_command(
        self, org: UUID, request_id: str, resource_id: UUID
    ) -> commands.SetOverbookingAllowance:
        return commands.SetOverbookingAllowance(
            organization_id=org,
            request_id=request_id,
            resource_id=resource_id,
            allowance=self.allowance,
        )


class WeeklyHoursItem(Strict):
    location_id: UUID
    weekday: Count = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    start: TimeOfDay
    end: TimeOfDay
    effective_from: Day | None = None
    effective_until: Day | None = None


class WeeklyHoursRequest(Strict):
    hours: list[WeeklyHoursItem] = Field(max_length=200)

    def to_command(self, org: UUID, request_id: str, resource_id: UUID) -> commands.SetWeeklyHours:
        return commands.SetWeeklyHours(
            organization_id=org,
            request_id=request_id,
            resource_id=resource_id,
            hours=tuple(
                WeeklyHours(
                    h.location_id, h.weekday, h.start, h.end, h.effective_from, h.effective_until
                )
                for h in self.hours
            ),
        )


class ScheduleExceptionRequest(Strict):
    kind: Literal["leave", "holiday", "blocked", "extra"]
    start: Instant
    end: Instant
    location_id: UUID | None = None
    reason: Text = Field("", max_length=500)

    def to_command(
        self, org: UUID, request_id: str, resource_id: UUID
    ) -> commands.AddScheduleException:
        return commands.AddScheduleException(
            organization_id=org,
            request_id=request_id,
            resource_id=resource_id,
            kind=ExceptionKind(self.kind),
            start=self.start,
            end=self.end,
            location_id=self.location_id,
            reason=self.reason,
        )


class RequirementItem(Strict):
    role: Short
    category: Literal["provider", "room", "device"]
    resource_id: UUID | None = None
    kind: Short | None = None
    specialty: Short | None = None


class StepItem(Strict):
    name: Short
    offset_minutes: Count = Field(0, ge=0, le=24 * 60)
    duration_minutes: Count = Field(ge=1, le=24 * 60)
    requirements: list[RequirementItem] = Field(min_length=1, max_length=10)

    def value_object(self) -> Step:
        return Step(
            self.name,
            self.offset_minutes,
            self.duration_minutes,
            tuple(
                Requirement(r.role, Category(r.category), r.resource_id, r.kind, r.specialty)
                for r in self.requirements
            ),
        )


class ReminderItem(Strict):
    before_minutes: Count = Field(
        ge=5, le=60 * 24 * 30, description="How long before the start.", examples=[1440]
    )
    channel: Literal["sms", "email"] | None = Field(
        None, description="Leave out for the patient's preferred channel."
    )


class PatientTextItem(Strict):
    name: Name
    description: Text = Field("", max_length=2000)
    preparation: Text = Field("", max_length=4000)


ReminderPlan = Annotated[
    list[ReminderItem],
    Field(max_length=5, description="When reminders go out, e.g. a day and two hours before."),
]
PatientFacing = Annotated[
    dict[Language, PatientTextItem],
    Field(max_length=20, description="Per BCP 47 language: what patients read."),
]


def reminders(items: list[ReminderItem]) -> tuple[Reminder, ...]:
    befores = [r.before_minutes for r in items]
    if len(set(befores)) != len(befores):
        raise InvalidRequestError("two reminders at the same time before the start")
    return tuple(
        Reminder(r.before_minutes, r.channel)
        for r in sorted(items, key=lambda r: -r.before_minutes)
    )


def texts(items: dict[str, PatientTextItem]) -> dict[str, PatientText]:
    return {
        language: PatientText(t.name, t.description, t.preparation)
        for language, t in sorted(items.items())
    }


class DefineAppointmentTypeRequest(Strict):
    name: Name
    steps: list[StepItem] = Field(min_length=1, max_length=10)
    buffer_before_minutes: Count = Field(0, ge=0, le=240)
    buffer_after_minutes: Count = Field(0, ge=0, le=240)
    seats: Count = Field(1, ge=1, le=500)
    minimum_notice_minutes: Count = Field(0, ge=0, le=60 * 24 * 90)
    maximum_horizon_days: Count = Field(365, ge=1, le=3650)
    cancellation_cutoff_minutes: Count = Field(0, ge=0, le=60 * 24 * 30)
    patient_bookable: Flag = True
    preparation: Text = Field("", max_length=4000)
    specialty: Short | None = None
    reschedule_cutoff_minutes: Count | None = Field(
        None,
        ge=0,
        le=60 * 24 * 30,
        description="Patients move a booking up to this long before its start; leave out "
        "for the cancellation cut-off.",
    )
    reminder_plan: ReminderPlan = []
    patient_facing: PatientFacing = {}

    def to_command(self, org: UUID, request_id: str) -> commands.DefineAppointmentType:
        return commands.DefineAppointmentType(
            organization_id=org,
            request_id=request_id,
            type_name=self.name,
            steps=tuple(s.value_object() for s in self.steps),
            buffer_before_minutes=self.buffer_before_minutes,
            buffer_after_minutes=self.buffer_after_minutes,
            seats=self.seats,
            minimum_notice_minutes=self.minimum_notice_minutes,
            maximum_horizon_days=self.maximum_horizon_days,
            cancellation_cutoff_minutes=self.cancellation_cutoff_minutes,
            patient_bookable=self.patient_bookable,
            preparation=self.preparation,
            specialty=self.specialty,
            reschedule_cutoff_minutes=self.reschedule_cutoff_minutes,
            reminder_plan=reminders(self.reminder_plan),
            patient_facing=texts(self.patient_facing),
        )


class UpdateAppointmentTypeRequest(Strict):
    """What to change; what is left out stays (``null`` resets the reschedule cut-off to the
    cancellation one, or clears the specialty)."""

    name: Name | None = None
    steps: list[StepItem] | None = Field(None, min_length=1, max_length=10)
    buffer_before_minutes: Count | None = Field(None, ge=0, le=240)
    buffer_after_minutes: Count | None = Field(None, ge=0, le=240)
    seats: Count | None = Field(None, ge=1, le=500)
    minimum_notice_minutes: Count | None = Field(None, ge=0, le=60 * 24 * 90)
    maximum_horizon_days: Count | None = Field(None, ge=1, le=3650)
    cancellation_cutoff_minutes: Count | None = Field(None, ge=0, le=60 * 24 * 30)
    patient_bookable: Flag | None = None
    preparation: Text | None = Field(None, max_length=4000)
    specialty: Short | None = None
    reschedule_cutoff_minutes: Count | None = Field(None, ge=0, le=60 * 24 * 30)
    reminder_plan: ReminderPlan | None = None
    patient_facing: PatientFacing | None = None

    @model_validator(mode="after")
    def _nullable(self) -> UpdateAppointmentTypeRequest:
        for name in self.model_fields_set - {"specialty", "reschedule_cutoff_minutes"}:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null, only changed")
        return self

    def to_command(
        self, org: UUID, request_id: str, type_id: UUID
    ) -> commands.UpdateAppointmentType:
        convert: dict[str, Any] = {
            "steps": lambda v: tuple(s.value_object() for s in v),
            "reminder_plan": reminders,
            "patient_facing": texts,
        }
        changes = {
            name: convert[name](getattr(self, name)) if name in convert else getattr(self, name)
            for name in self.model_fields_set
        }
        return commands.UpdateAppointmentType(
            organization_id=org,
            request_id=request_id,
            appointment_type_id=type_id,
            changes=changes,
        )


class UpdateLocationRequest(Strict):
    """A new name or address (the whole address); the time zone never changes."""

    name: Name | None = None
    address: dict[Short, Annotated[Line, Field(max_length=200)]] | None = Field(None, max_length=20)

    def to_command(self, org: UUID, request_id: str, location_id: UUID) -> commands.UpdateLocation:
        return commands.UpdateLocation(
            organization_id=org,
            request_id=request_id,
            location_id=location_id,
            location_name=self.name,
            address=dict(self.address) if self.address is not None else None,
        )


class UpdateResourceRequest(Strict):
    """What to change; what is left out stays."""

    name: Name | None = None
    kind: Short | None = None
    specialties: list[Short] | None = Field(None, max_length=20)
    location_ids: list[UUID] | None = Field(None, min_length=1, max_length=50)
    languages: list[Language] | None = Field(None, max_length=20)

    def to_command(self, org: UUID, request_id: str, resource_id: UUID) -> commands.UpdateResource:
        return commands.UpdateResource(
            organization_id=org,
            request_id=request_id,
            resource_id=resource_id,
            resource_name=self.name,
            kind=self.kind,
            specialties=tuple(self.specialties) if self.specialties is not None else None,
            location_ids=tuple(self.location_ids) if self.location_ids is not None else None,
            languages=tuple(self.languages) if self.languages is not None else None,
        )


class RetireRequest(Strict):
    reason: Text = Field("", max_length=500, examples=["the clinic moved to Mitte"])

    def to_command(
        self, org: UUID, request_id: str, target_id: UUID, command: type[commands.Retire]
    ) -> commands.Retire:
        return command(
            organization_id=org, request_id=request_id, target_id=target_id, reason=self.reason
        )


class ContactItem(Strict):
    system: Literal["phone", "email", "sms"]
    value: Line = Field(min_length=3, max_length=200)
    use: Literal["home", "work", "mobile", "temp", "old"] | None = None

    def value_object(self) -> Contact:
        return Contact(self.system, self.value, self.use)


class AddressItem(Strict):
    lines: list[Annotated[Line, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=4
    )
    city: Line = Field("", max_length=100)
    district: Line = Field("", max_length=100)
    state: Line = Field("", max_length=100)
    postal_code: Line = Field("", max_length=20)
    country: Line = Field(
        "", max_length=2, pattern=r"^([A-Z]{2})?$", description="ISO 3166 alpha-2, e.g. DE."
    )

    def value_object(self) -> Address:
        return Address(
            tuple(self.lines), self.city, self.district, self.state, self.postal_code, self.country
        )


class IdentifierItem(Strict):
    system: Line = Field(
        min_length=1,
        max_length=200,
        description="Who gave it: a URI, e.g. urn:oid:1.2.3 or https://emr.example/mrn.",
        examples=["https://emr.example/mrn"],
    )
    value: Line = Field(min_length=1, max_length=100, examples=["MRN-004711"])

    def value_object(self) -> Identifier:
        return Identifier(self.system, self.value)


Channel = Literal["email", "sms", "phone", "none"]
Gender = Literal["male", "female", "other", "unknown"]
TimeZoneName = Annotated[
    Line, Field(min_length=1, max_length=64, description="IANA zone, e.g. Europe/Berlin.")
]


class RegisterPatientRequest(Strict):
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

    def to_command(self, org: UUID, request_id: str) -> commands.RegisterPatient:
        return commands.RegisterPatient(
            organization_id=org,
            request_id=request_id,
            given_name=self.given_name,
            family_name=self.family_name,
            birth_date=self.birth_date,
            contacts=tuple(c.value_object() for c in self.contacts),
            preferred_channel=self.preferred_channel,
            language=self.language,
            gender=self.gender,
            address=self.address.value_object() if self.address else None,
            consent_sms=self.consent_sms,
            consent_email=self.consent_email,
            time_zone=self.time_zone,
            identifiers=tuple(i.value_object() for i in self.identifiers),
        )


class UpdatePatientRequest(Strict):
    """The details to change; those left out stay as they are (``null`` clears the address
    or the time zone)."""

    given_name: Name | None = None
    family_name: Name | None = None
    birth_date: Day | None = None
    gender: Gender | None = None
    address: AddressItem | None = None
    contacts: list[ContactItem] | None = Field(None, max_length=10)
    time_zone: TimeZoneName | None = None

    @model_validator(mode="after")
    def _required_stay(self) -> UpdatePatientRequest:
        for name in ("given_name", "family_name", "birth_date", "gender", "contacts"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be cleared, only changed")
        return self

    def to_command(
        self, org: UUID, request_id: str, patient_id: UUID
    ) -> commands.UpdatePatientDetails:
        changes: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            if name == "address":
                value = value.value_object() if value is not None else None
            elif name == "contacts":
                value = tuple(c.value_object() for c in value)
            changes[name] = value
        return commands.UpdatePatientDetails(
            organization_id=org, request_id=request_id, patient_id=patient_id, changes=changes
        )


class PatientPreferencesRequest(Strict):
    """How to reach the patient; those left out stay as they are."""

    preferred_channel: Channel | None = None
    language: Language | None = None
    consent_sms: Flag | None = None
    consent_email: Flag | None = None

    def to_command(
        self, org: UUID, request_id: str, patient_id: UUID
    ) -> commands.SetPatientPreferences:
        return commands.SetPatientPreferences(
            organization_id=org,
            request_id=request_id,
            patient_id=patient_id,
            preferred_channel=self.preferred_channel,
            language=self.language,
            consent_sms=self.consent_sms,
            consent_email=self.consent_email,
        )


class RecordIdentifierRequest(IdentifierItem):
    def to_command(
        self, org: UUID, request_id: str, patient_id: UUID
    ) -> commands.RecordPatientIdentifier:
        return commands.RecordPatientIdentifier(
            organization_id=org,
            request_id=request_id,
            patient_id=patient_id,
            identifier=self.value_object(),
        )


class MergePatientRequest(Strict):
    duplicate_id: UUID = Field(description="The record that is the same person as this one.")

    def to_command(self, org: UUID, request_id: str, survivor_id: UUID) -> commands.MergePatients:
        return commands.MergePatients(
            organization_id=org,
            request_id=request_id,
            survivor_id=survivor_id,
            duplicate_id=self.duplicate_id,
        )


class _When(Strict):
    """Exactly one of ``start`` (an instant) and ``local_start`` (wall-clock time there)."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["start"]}, {"required": ["local_start"]}]}
    )

    start: Instant | None = Field(None, description="The instant, with its offset.")
    local_start: WallClock | None = Field(
        None,
        description="Wall-clock time at the location (no offset); refused when it does "
        "not exist or happens twice on a daylight saving night.",
    )

    @model_validator(mode="after")
    def _one_of(self) -> _When:
        if (self.start is None) == (self.local_start is None):
            raise ValueError("give exactly one of start (an instant) or local_start")
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
    booked_by: Literal["patient", "clinic"] | None = Field(
        None,
        deprecated=True,
        description="Deprecated and ignored: who acts comes from the X-Actor-Id and "
        "X-Actor-Role headers. When given, it must agree with them (patient for a patient, "
        "clinic for staff), or the request is refused.",
    )
    allow_overbooking: Flag = False
    note: Text = Field("", max_length=2000)

    def to_command(
        self, org: UUID, request_id: str, start: dt.datetime
    ) -> commands.BookAppointment:
        """``start``: the instant meant, ``start`` or ``local_start`` at the location."""
        return commands.BookAppointment(**self._reservation(org, request_id, start))

    def _reservation(self, org: UUID, request_id: str, start: dt.datetime) -> dict[str, Any]:
        return {
            "organization_id": org,
            "request_id": request_id,
            "appointment_type_id": self.appointment_type_id,
            "location_id": self.location_id,
            "patient_id": self.patient_id,
            "start": start,
            "preferred": dict(self.preferred_resources),
            "allow_overbooking": self.allow_overbooking,
            "note": self.note,
        }


class HoldRequest(ReserveRequest):
    hold_minutes: Count | None = Field(None, ge=1, le=120)

    def to_command(
        self, org: UUID, request_id: str, start: dt.datetime
    ) -> commands.HoldAppointment:
        return commands.HoldAppointment(
            **self._reservation(org, request_id, start), hold_minutes=self.hold_minutes
        )


class RescheduleRequest(_When):
    preferred_resources: dict[Short, UUID] = Field(default_factory=dict, max_length=10)
    actor: Literal["patient", "clinic"] | None = Field(
        None,
        deprecated=True,
        description="Deprecated and ignored: who acts comes from the X-Actor-Id and "
        "X-Actor-Role headers. When given, it must agree with them (patient for a patient, "
        "clinic for staff), or the request is refused.",
    )
    allow_overbooking: Flag = False

    def to_command(
        self,
        org: UUID,
        request_id: str,
        appointment_id: UUID,
        start: dt.datetime,
        expected_version: int | None = None,
    ) -> commands.Reschedule:
        return commands.Reschedule(
            organization_id=org,
            request_id=request_id,
            appointment_id=appointment_id,
            expected_version=expected_version,
            start=start,
            preferred=dict(self.preferred_resources),
            allow_overbooking=self.allow_overbooking,
        )


class CancelRequest(Strict):
    by: Literal["patient", "clinic"] | None = Field(
        None,
        deprecated=True,
        description="Deprecated and ignored: who acts comes from the X-Actor-Id and "
        "X-Actor-Role headers. When given, it must agree with them (patient for a patient, "
        "clinic for staff), or the request is refused.",
    )
    reason: Text = Field(min_length=1, max_length=500)

    def to_command(
        self,
        org: UUID,
        request_id: str,
        appointment_id: UUID,
        expected_version: int | None = None,
    ) -> commands.CancelAppointment:
        return commands.CancelAppointment(
            organization_id=org,
            request_id=request_id,
            appointment_id=appointment_id,
            expected_version=expected_version,
            reason=self.reason,
        )


class EnterInErrorRequest(Strict):
    reason: Text = Field(min_length=1, max_length=500, examples=["booked for the wrong patient"])

    def to_command(
        self,
        org: UUID,
        request_id: str,
        appointment_id: UUID,
        expected_version: int | None = None,
    ) -> commands.EnterInError:
        return commands.EnterInError(
            organization_id=org,
            request_id=request_id,
            appointment_id=appointment_id,
            expected_version=expected_version,
            reason=self.reason,
        )


def _distinct(values: list[int]) -> list[int]:
    if len(set(values)) != len(values):
        raise ValueError("each weekday at most once")
    return values


Weekdays = Annotated[
    list[Annotated[Count, Field(ge=1, le=7)]],
    Field(
        max_length=7,
        json_schema_extra={"uniqueItems": True},
        description="The ISO weekdays the patient can come (1 = Monday .. 7 = Sunday), each "
        "once; empty or left out: any day.",
        examples=[[1, 3, 5]],
    ),
    AfterValidator(_distinct),
]


class JoinWaitlistRequest(Strict):
    patient_id: UUID
    appointment_type_id: UUID
    location_ids: list[UUID] = Field(min_length=1, max_length=20)
    earliest: Day
    latest: Day
    times_of_day: list[Literal["morning", "afternoon", "evening"]] = Field(
        default_factory=list, max_length=3
    )
    provider_id: UUID | None = None
    note: Text = Field("", max_length=2000)
    priority: Count = Field(
        5,
        ge=1,
        le=9,
        description="1 (most urgent) to 9 (least): the order in which waiting patients are "
        "offered freed time. Set by the clinic; a patient may leave it out or send 5.",
    )
    weekdays: Weekdays = []

    def to_command(self, org: UUID, request_id: str) -> commands.JoinWaitlist:
        return commands.JoinWaitlist(
            organization_id=org,
            request_id=request_id,
            patient_id=self.patient_id,
            appointment_type_id=self.appointment_type_id,
            location_ids=tuple(self.location_ids),
            earliest=self.earliest,
            latest=self.latest,
            times_of_day=tuple(self.times_of_day),
            provider_id=self.provider_id,
            note=self.note,
            priority=self.priority,
            weekdays=tuple(self.weekdays),
        )


class LeaveWaitlistRequest(Strict):
    reason: Text = Field(min_length=1, max_length=500)

    def to_command(self, org: UUID, request_id: str, entry_id: UUID) -> commands.LeaveWaitlist:
        return commands.LeaveWaitlist(
            organization_id=org, request_id=request_id, entry_id=entry_id, reason=self.reason
        )
