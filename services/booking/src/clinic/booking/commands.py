"""Every command booking takes, as data: a frozen dataclass per command.

A command names its tenant (``organization_id``) and the client's request id, and carries
what it asks for, written once. From the dataclass come:
- ``name``: the command's name in metrics and logs (``booking_commands_total{command=}``);
- ``creates``: whether a success creates something (the API answers 201 instead of 200);
- ``fingerprint()``: a digest of what it asks for, so that a request id reused for another
  request is refused. Digests stay as earlier releases computed them (the ``tag`` and the
  field order), so a client retrying across an upgrade still gets its first answer.

Commands check what needs no data (shapes, orders of dates, offsets); every rule that reads
the calendar or the reference data is decided by the use case.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar
from uuid import UUID

from clinic.booking.domain.acting import Acting, RequestContext, Role
from clinic.booking.domain.errors import InvalidRequestError
from clinic.booking.domain.timezones import as_utc, zone
from clinic.booking.domain.values import (
    Actor,
    Address,
    Category,
    Contact,
    ExceptionKind,
    Identifier,
    PatientText,
    Reminder,
    Step,
    WeeklyHours,
)
from clinic.booking.domain.waitlist import DEFAULT_PRIORITY, PRIORITIES, WEEKDAYS

PLATFORM = UUID(int=0)
"""The scope of commands that concern no tenant yet (registering one)."""

NOT_FINGERPRINTED = {"fingerprinted": False}
LONGEST_EXCEPTION = dt.timedelta(days=731)
"""Leave or blocked time of two years at most in one exception."""


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=_text).encode()).hexdigest()


def _text(value: Any) -> str:
    """How a value the JSON encoder does not know enters a digest: its ``str``, except that a
    value object leaves out the fields added after its first release while they hold their
    default (``metadata={"since_release": True}``), so it reads as it did then."""
    if is_dataclass(value) and not isinstance(value, type):
        shown = [
            f"{f.name}={getattr(value, f.name)!r}"
            for f in fields(value)
            if not (f.metadata.get("since_release") and getattr(value, f.name) == f.default)
        ]
        return f"{type(value).__qualname__}({', '.join(shown)})"
    return str(value)


@dataclass(frozen=True, kw_only=True)
class Command:
    organization_id: UUID
    request_id: str
    context: RequestContext = field(default_factory=RequestContext, metadata=NOT_FINGERPRINTED)
    """Who asks and which request carries it: recorded on the events, never fingerprinted."""

    name: ClassVar[str]
    tag: ClassVar[str]
    creates: ClassVar[bool] = False
    since_release: ClassVar[tuple[str, ...]] = ()
    """Fields added after the command was first released: left out of the digest while they
    hold their default, so a request retried across the upgrade still gets its first answer."""

    def __post_init__(self) -> None:
        if not self.request_id or len(self.request_id) > 200:
            raise InvalidRequestError("a client request id of 1 to 200 characters is required")

    def fingerprint(self) -> str:
        """What the request asked for: every field but the tenant, the request id and the
        values the command makes for itself."""
        asked = [
            getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("organization_id", "request_id")
            and f.metadata.get("fingerprinted", True)
            and not (f.name in self.since_release and getattr(self, f.name) == _default(f))
        ]
        return digest(self.tag, *asked)


def _default(spec: Field[Any]) -> Any:
    if spec.default_factory is not MISSING:
        return spec.default_factory()
    return spec.default


# ---------------------------------------------------------------------- reference data


@dataclass(frozen=True, kw_only=True)
class RegisterOrganization(Command):
    name: ClassVar[str] = "register_organization"
    tag: ClassVar[str] = "org"
    creates: ClassVar[bool] = True

    organization_id: UUID = PLATFORM
    organization_name: str


@dataclass(frozen=True, kw_only=True)
class RegisterLocation(Command):
    name: ClassVar[str] = "register_location"
    tag: ClassVar[str] = "location"
    creates: ClassVar[bool] = True

    location_name: str
    address: dict[str, str] = field(default_factory=dict)
    time_zone: str

    def __post_init__(self) -> None:
        super().__post_init__()
        zone(self.time_zone)


@dataclass(frozen=True, kw_only=True)
class RegisterResource(Command):
    name: ClassVar[str] = "register_resource"
    tag: ClassVar[str] = "resource"
    creates: ClassVar[bool] = True

    category: Category
    resource_name: str
    kind: str
    specialties: tuple[str, ...] = ()
    location_ids: tuple[UUID, ...]
    overbooking_allowance: int = 0
    languages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.location_ids:
            raise InvalidRequestError("a resource works at one location at least")
        if self.overbooking_allowance and self.category != Category.PROVIDER:
            raise InvalidRequestError("only providers have an overbooking allowance")


@dataclass(frozen=True, kw_only=True)
class SetOverbookingAllowance(Command):
    name: ClassVar[str] = "set_overbooking_allowance"
    tag: ClassVar[str] = "overbook"

    resource_id: UUID
    allowance: int


@dataclass(frozen=True, kw_only=True)
class DefineAppointmentType(Command):
    name: ClassVar[str] = "define_appointment_type"
    tag: ClassVar[str] = "type"
    creates: ClassVar[bool] = True

    type_name: str
    steps: tuple[Step, ...]
    buffer_before_minutes: int = 0
    buffer_after_minutes: int = 0
    seats: int = 1
    minimum_notice_minutes: int = 0
    maximum_horizon_days: int = 365
    cancellation_cutoff_minutes: int = 0
    patient_bookable: bool = True
    preparation: str = ""
    specialty: str | None = None
    reschedule_cutoff_minutes: int | None = None
    reminder_plan: tuple[Reminder, ...] = ()
    patient_facing: dict[str, PatientText] = field(default_factory=dict)

    since_release: ClassVar[tuple[str, ...]] = (
        "reschedule_cutoff_minutes",
        "reminder_plan",
        "patient_facing",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_steps(self.steps)


def check_steps(steps: tuple[Step, ...]) -> None:
    if not steps or any(not s.requirements for s in steps):
        raise InvalidRequestError("an appointment type needs steps, each needing a resource")
    if any(s.duration_minutes <= 0 or s.offset_minutes < 0 for s in steps):
        raise InvalidRequestError("steps need a positive duration and a non-negative offset")


@dataclass(frozen=True, kw_only=True)
class UpdateLocation(Command):
    name: ClassVar[str] = "update_location"
    tag: ClassVar[str] = "location-update"

    location_id: UUID
    location_name: str | None = None
    address: dict[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class UpdateResource(Command):
    name: ClassVar[str] = "update_resource"
    tag: ClassVar[str] = "resource-update"

    resource_id: UUID
    resource_name: str | None = None
    kind: str | None = None
    specialties: tuple[str, ...] | None = None
    location_ids: tuple[UUID, ...] | None = None
    languages: tuple[str, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class UpdateAppointmentType(Command):
    """Change what defines a type (``changes``: names of ``TYPE_DEFINITION``)."""

    name: ClassVar[str] = "update_appointment_type"
    tag: ClassVar[str] = "type-update"

    appointment_type_id: UUID
    changes: dict[str, Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.changes:
            raise InvalidRequestError("name at least one thing to change")
        if "steps" in self.changes:
            check_steps(self.changes["steps"])


@dataclass(frozen=True, kw_only=True)
class Retire(Command):
    """Retire reference data: it takes no new bookings and no more changes; what was booked
    with it stays. The subclasses name what (``retires``)."""

    retires: ClassVar[str]
    target_id: UUID
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RetireLocation(Retire):
    name: ClassVar[str] = "retire_location"
    tag: ClassVar[str] = "retire-location"
    retires: ClassVar[str] = "location"


@dataclass(frozen=True, kw_only=True)
class RetireResource(Retire):
    name: ClassVar[str] = "retire_resource"
    tag: ClassVar[str] = "retire-resource"
    retires: ClassVar[str] = "resource"


@dataclass(frozen=True, kw_only=True)
class RetireAppointmentType(Retire):
    name: ClassVar[str] = "retire_appointment_type"
    tag: ClassVar[str] = "retire-type"
    retires: ClassVar[str] = "appointment type"


@dataclass(frozen=True, kw_only=True)
class RegisterPatient(Command):
    name: ClassVar[str] = "register_patient"
    tag: ClassVar[str] = "patient"
    creates: ClassVar[bool] = True

    given_name: str
    family_name: str
    birth_date: dt.date
    contacts: tuple[Contact, ...] = ()
    preferred_channel: str = "email"
    language: str = "en"
    gender: str = "unknown"
    address: Address | None = None
    consent_sms: bool = False
    consent_email: bool = False
    time_zone: str | None = None
    identifiers: tuple[Identifier, ...] = ()

    since_release: ClassVar[tuple[str, ...]] = (
        "gender",
        "address",
        "consent_sms",
        "consent_email",
        "time_zone",
        "identifiers",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.time_zone is not None:
            zone(self.time_zone)
        systems = [i.system for i in self.identifiers]
        if len(set(systems)) != len(systems):
            raise InvalidRequestError("one identifier per system")


@dataclass(frozen=True, kw_only=True)
class UpdatePatientDetails(Command):
    """Change the demographics named in ``changes`` (the others stay as they are)."""

    name: ClassVar[str] = "update_patient_details"
    tag: ClassVar[str] = "patient-details"

    patient_id: UUID
    changes: dict[str, Any]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.changes.get("time_zone") is not None:
            zone(self.changes["time_zone"])
        if not self.changes:
            raise InvalidRequestError("name at least one detail to change")


@dataclass(frozen=True, kw_only=True)
class SetPatientPreferences(Command):
    name: ClassVar[str] = "set_patient_preferences"
    tag: ClassVar[str] = "patient-preferences"

    patient_id: UUID
    preferred_channel: str | None = None
    language: str | None = None
    consent_sms: bool | None = None
    consent_email: bool | None = None


@dataclass(frozen=True, kw_only=True)
class RecordPatientIdentifier(Command):
    """An EMR (or the clinic) tells booking its identifier for the patient, e.g. its MRN."""

    name: ClassVar[str] = "record_patient_identifier"
    tag: ClassVar[str] = "patient-identifier"

    patient_id: UUID
    identifier: Identifier


@dataclass(frozen=True, kw_only=True)
class MergePatients(Command):
    """``duplicate_id`` is the same person as ``survivor_id``: retire the duplicate."""

    name: ClassVar[str] = "merge_patients"
    tag: ClassVar[str] = "patient-merge"

    survivor_id: UUID
    duplicate_id: UUID


@dataclass(frozen=True, kw_only=True)
class SetWeeklyHours(Command):
    name: ClassVar[str] = "set_weekly_hours"
    tag: ClassVar[str] = "hours"

    resource_id: UUID
    hours: tuple[WeeklyHours, ...]


@dataclass(frozen=True, kw_only=True)
class AddScheduleException(Command):
    name: ClassVar[str] = "add_schedule_exception"
    tag: ClassVar[str] = "exception"
    creates: ClassVar[bool] = True

    resource_id: UUID
    kind: ExceptionKind
    start: dt.datetime
    end: dt.datetime
    location_id: UUID | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        if self.end <= self.start:
            raise InvalidRequestError("end must be after start")
        if self.end - self.start > LONGEST_EXCEPTION:
            raise InvalidRequestError(
                f"an exception lasts at most {LONGEST_EXCEPTION.days} days; add another after it"
            )


@dataclass(frozen=True, kw_only=True)
class RemoveScheduleException(Command):
    name: ClassVar[str] = "remove_schedule_exception"
    tag: ClassVar[str] = "rm-exception"

    resource_id: UUID
    exception_id: UUID


# ---------------------------------------------------------------------- appointments


@dataclass(frozen=True, kw_only=True)
class BookAppointment(Command):
    """Book time directly. ``start`` is an instant (a local time is converted before)."""

    name: ClassVar[str] = "book"
    tag: ClassVar[str] = "book"
    creates: ClassVar[bool] = True

    appointment_type_id: UUID
    location_id: UUID
    patient_id: UUID
    start: dt.datetime
    preferred: dict[str, UUID] = field(default_factory=dict)
    booked_by: Actor = field(init=False)
    """Derived from the acting party (``context``), never from what the caller claims."""
    allow_overbooking: bool = False
    note: str = ""
    hold_minutes: int | None = None
    appointment_id: UUID = field(default_factory=uuid.uuid4, metadata=NOT_FINGERPRINTED)

    @property
    def holds(self) -> bool:
        return False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "booked_by", self.context.acting.kind)


@dataclass(frozen=True, kw_only=True)
class HoldAppointment(BookAppointment):
    """Hold time for a patient until it is confirmed or the hold expires."""

    name: ClassVar[str] = "hold"
    tag: ClassVar[str] = "hold"

    @property
    def holds(self) -> bool:
        return True


@dataclass(frozen=True, kw_only=True)
class AppointmentCommand(Command):
    """A command on one existing appointment. ``expected_version``: the appointment's version
    its client last read (HTTP ``If-Match``), or None for any. When given, the command is
    decided only on that version (``version-mismatch`` otherwise). It conditions the request
    without being part of what it asks: it is not fingerprinted, so a repeated request gets
    its first answer whichever version it names, and requests digest as before it existed."""

    appointment_id: UUID
    expected_version: int | None = field(default=None, metadata=NOT_FINGERPRINTED)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.expected_version is not None and self.expected_version < 1:
            raise InvalidRequestError("an appointment's versions count from 1")


@dataclass(frozen=True, kw_only=True)
class ConfirmAppointment(AppointmentCommand):
    name: ClassVar[str] = "confirm"
    tag: ClassVar[str] = "confirm"


@dataclass(frozen=True, kw_only=True)
class Reschedule(AppointmentCommand):
    name: ClassVar[str] = "reschedule"
    tag: ClassVar[str] = "reschedule"

    start: dt.datetime
    preferred: dict[str, UUID] = field(default_factory=dict)
    actor: Actor = field(init=False)
    """Derived from the acting party (``context``)."""
    allow_overbooking: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "actor", self.context.acting.kind)


@dataclass(frozen=True, kw_only=True)
class CancelAppointment(AppointmentCommand):
    name: ClassVar[str] = "cancel"
    tag: ClassVar[str] = "cancel"

    by: Actor = field(init=False)
    """Derived from the acting party (``context``)."""
    reason: str

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "by", self.context.acting.kind)


@dataclass(frozen=True, kw_only=True)
class ChangeStatus(AppointmentCommand):
    """A step of the visit that needs no time decided: the appointment's method of the same
    name records it (``check_in``, ``arrive``, ``complete``, ``mark_no_show``). Patients
    check themselves in (at a kiosk, from the portal); the other steps are the clinic's."""

    patients_may: ClassVar[bool] = False


@dataclass(frozen=True, kw_only=True)
class CheckIn(ChangeStatus):
    name: ClassVar[str] = "check_in"
    tag: ClassVar[str] = "check_in"
    patients_may: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Arrive(ChangeStatus):
    name: ClassVar[str] = "arrive"
    tag: ClassVar[str] = "arrive"


@dataclass(frozen=True, kw_only=True)
class Complete(ChangeStatus):
    name: ClassVar[str] = "complete"
    tag: ClassVar[str] = "complete"


@dataclass(frozen=True, kw_only=True)
class MarkNoShow(ChangeStatus):
    name: ClassVar[str] = "mark_no_show"
    tag: ClassVar[str] = "mark_no_show"


@dataclass(frozen=True, kw_only=True)
class ConfirmAttendance(AppointmentCommand):
    """The patient confirmed they will come (FHIR: the patient participant ``accepted``):
    from a reminder's link or SMS reply, or told to the front desk. Patients may, and the
    clinic; a confirmation already recorded is answered with the appointment as it is."""

    name: ClassVar[str] = "confirm_attendance"
    tag: ClassVar[str] = "confirm_attendance"

    by: Actor = field(init=False)
    """Derived from the acting party (``context``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "by", self.context.acting.kind)


@dataclass(frozen=True, kw_only=True)
class EnterInError(AppointmentCommand):
    """The appointment was recorded by mistake: it is struck out and its time given back."""

    name: ClassVar[str] = "enter_in_error"
    tag: ClassVar[str] = "enter_in_error"

    reason: str


@dataclass(frozen=True, kw_only=True)
class ExpireHold(AppointmentCommand):
    """Record that a hold ran out. The hold sweeper asks, with the request id
    ``expire-hold:{appointment_id}``, so that replicas asking at once record it once."""

    name: ClassVar[str] = "expire_hold"
    tag: ClassVar[str] = "expire_hold"

    @classmethod
    def of(cls, organization_id: UUID, appointment_id: UUID) -> ExpireHold:
        return cls(
            organization_id=organization_id,
            request_id=f"expire-hold:{appointment_id}",
            appointment_id=appointment_id,
            context=RequestContext(Acting("hold-sweeper", Role.SYSTEM, "internal")),
        )


# ---------------------------------------------------------------------- waitlist


@dataclass(frozen=True, kw_only=True)
class JoinWaitlist(Command):
    """A patient waits for earlier time. ``priority`` ranks the entry among those waiting (1
    most urgent .. 9 least; only the clinic sets another than the default); ``weekdays``
    are the ISO weekdays the patient can come (1 Monday .. 7 Sunday; none: any day), kept
    in order."""

    name: ClassVar[str] = "join_waitlist"
    tag: ClassVar[str] = "waitlist"
    creates: ClassVar[bool] = True

    patient_id: UUID
    appointment_type_id: UUID
    location_ids: tuple[UUID, ...]
    earliest: dt.date
    latest: dt.date
    times_of_day: tuple[str, ...] = ()
    provider_id: UUID | None = None
    note: str = ""
    priority: int = DEFAULT_PRIORITY
    weekdays: tuple[int, ...] = ()

    since_release: ClassVar[tuple[str, ...]] = ("priority", "weekdays")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.latest < self.earliest:
            raise InvalidRequestError("latest is before earliest")
        if self.priority not in PRIORITIES:
            raise InvalidRequestError(
                f"priority is {PRIORITIES.start} (most urgent) to {PRIORITIES.stop - 1}"
            )
        if any(d not in WEEKDAYS for d in self.weekdays):
            raise InvalidRequestError("weekdays are ISO weekdays, 1 (Monday) to 7 (Sunday)")
        if len(set(self.weekdays)) != len(self.weekdays):
            raise InvalidRequestError("a weekday is named twice")
        object.__setattr__(self, "weekdays", tuple(sorted(self.weekdays)))


@dataclass(frozen=True, kw_only=True)
class LeaveWaitlist(Command):
    name: ClassVar[str] = "leave_waitlist"
    tag: ClassVar[str] = "leave"

    entry_id: UUID
    reason: str
