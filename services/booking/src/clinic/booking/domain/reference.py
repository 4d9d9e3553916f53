"""Reference data aggregates: the organisation's catalogue, locations, resources (providers,
rooms, devices), appointment types and patients. Every one carries its organisation id, and
every load checks it, so one tenant can never reach another's data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from clinic.booking.domain.acting import BookingAggregate
from clinic.booking.domain.errors import (
    AlreadyExistsError,
    InvalidRequestError,
    PatientMergedError,
    RetiredError,
)
from clinic.booking.domain.values import (
    Address,
    Category,
    Contact,
    Identifier,
    PatientText,
    Reminder,
    Requirement,
    Step,
)


@dataclass(frozen=True)
class DirectoryEntry:
    """What pool selection needs to know about a resource, without loading it."""

    resource_id: UUID
    category: Category
    kind: str
    specialties: tuple[str, ...]
    location_ids: tuple[UUID, ...]


class Organization(BookingAggregate):
    """A tenant, and its directory of locations, resources and appointment types."""

    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.location_ids: list[UUID] = []
        self.directory: dict[UUID, DirectoryEntry] = {}
        self.appointment_type_ids: list[UUID] = []

    def add_location(self, location_id: UUID) -> None:
        if location_id in self.location_ids:
            raise AlreadyExistsError(f"location {location_id} is already registered")
        self._location_added(location_id=location_id)

    @event("LocationAdded")
    def _location_added(self, location_id: UUID) -> None:
        self.location_ids.append(location_id)

    def list_resource(self, entry: DirectoryEntry) -> None:
        if entry.resource_id in self.directory:
            raise AlreadyExistsError(f"resource {entry.resource_id} is already registered")
        self._resource_listed(entry=entry)

    @event("ResourceListed")
    def _resource_listed(self, entry: DirectoryEntry) -> None:
        self.directory[entry.resource_id] = entry

    def relist_resource(self, entry: DirectoryEntry) -> None:
        """What pools know of a resource changed (its kind, specialties or locations)."""
        if self.directory.get(entry.resource_id) != entry:
            self._resource_relisted(entry=entry)

    @event("ResourceRelisted")
    def _resource_relisted(self, entry: DirectoryEntry) -> None:
        self.directory[entry.resource_id] = entry

    def delist_resource(self, resource_id: UUID) -> None:
        """A retired resource leaves every pool."""
        if resource_id in self.directory:
            self._resource_delisted(resource_id=resource_id)

    @event("ResourceDelisted")
    def _resource_delisted(self, resource_id: UUID) -> None:
        del self.directory[resource_id]

    def add_appointment_type(self, appointment_type_id: UUID) -> None:
        self._appointment_type_added(appointment_type_id=appointment_type_id)

    @event("AppointmentTypeAdded")
    def _appointment_type_added(self, appointment_type_id: UUID) -> None:
        self.appointment_type_ids.append(appointment_type_id)

    def pool(
        self, requirement: Requirement, location_id: UUID, only: UUID | None = None
    ) -> list[DirectoryEntry]:
        """Resources that can fill ``requirement`` at ``location_id`` (``only``: just this
        resource, if it can)."""
        if only is not None:
            entry = self.directory.get(only)
            candidates = [entry] if entry is not None else []
        else:
            candidates = list(self.directory.values())
        return [
            entry
            for entry in candidates
            if location_id in entry.location_ids
            and requirement.accepts(entry.category, entry.kind, entry.specialties)
        ]


class Retirable(BookingAggregate):
    """Reference data that can be retired: it takes no new bookings, and no more changes;
    what was booked with it stays."""

    retired = False  # not annotated: eventsourcing would take it for a creation argument
    noun: ClassVar[str] = "it"

    def check_active(self) -> None:
        if self.retired:
            raise RetiredError(f"{self.noun} {self.id} is retired", id=str(self.id))

    def retire(self, reason: str) -> None:
        self.check_active()
        self._retired(reason=reason)

    def _retired(self, reason: str) -> None:
        """Each kind declares its own ``Retired`` event (``Location.Retired``, ...): an event
        declared here would be stored as ``Retirable.Retired``, which no reader of a kind's
        events would see."""
        raise NotImplementedError


class Location(Retirable):
    noun: ClassVar[str] = "location"

    @event("Registered")
    def __init__(
        self, organization_id: UUID, name: str, address: dict[str, Any], time_zone: str
    ) -> None:
        self.organization_id = organization_id
        self.name = name
        self.address = address
        self.time_zone = time_zone

    def update(self, name: str | None, address: dict[str, Any] | None) -> bool:
        """Rename or re-address; the time zone never changes (schedules are written in it)."""
        self.check_active()
        after = (name or self.name, self.address if address is None else address)
        if after == (self.name, self.address):
            return False
        self._updated(name=after[0], address=after[1])
        return True

    @event("Updated")
    def _updated(self, name: str, address: dict[str, Any]) -> None:
        self.name, self.address = name, address

    @event("Retired")
    def _retired(self, reason: str) -> None:
        self.retired = True


class Resource(Retirable):
    """A provider, room or device: anything whose minutes can be claimed. Its days are cut in
    ``time_zone`` (that of its first location), so one instant always falls on one
    ResourceDay whatever location the booking is for."""

    noun: ClassVar[str] = "resource"
    languages: tuple[str, ...] = ()
    """The languages a provider sees patients in, most fluent first (resources registered
    before languages were recorded have none until they are set)."""

    @event("Registered")
    def __init__(
        self,
        organization_id: UUID,
        category: Category,
        name: str,
        kind: str,
        specialties: tuple[str, ...],
        location_ids: tuple[UUID, ...],
        time_zone: str,
        overbooking_allowance: int,
    ) -> None:
        self.organization_id = organization_id
        self.category = Category(category)
        self.name = name
        self.kind = kind
        self.specialties = tuple(specialties)
        self.location_ids = tuple(location_ids)
        self.time_zone = time_zone
        self.overbooking_allowance = overbooking_allowance

    def set_overbooking_allowance(self, allowance: int) -> None:
        if self.category != Category.PROVIDER:
            raise InvalidRequestError("only providers have an overbooking allowance")
        if allowance < 0:
            raise InvalidRequestError("the overbooking allowance cannot be negative")
        self._overbooking_allowance_set(allowance=allowance)

    @event("OverbookingAllowanceSet")
    def _overbooking_allowance_set(self, allowance: int) -> None:
        self.overbooking_allowance = allowance

    def update(
        self,
        name: str | None,
        kind: str | None,
        specialties: tuple[str, ...] | None,
        location_ids: tuple[UUID, ...] | None,
    ) -> bool:
        """Rename, re-kind, re-specialise or move between locations; its days stay cut in
        the zone they were (a resource keeps its calendar)."""
        self.check_active()
        if location_ids is not None and not location_ids:
            raise InvalidRequestError("a resource works at one location at least")
        after = (
            name or self.name,
            kind or self.kind,
            self.specialties if specialties is None else tuple(specialties),
            self.location_ids if location_ids is None else tuple(location_ids),
        )
        if after == (self.name, self.kind, self.specialties, self.location_ids):
            return False
        self._updated(name=after[0], kind=after[1], specialties=after[2], location_ids=after[3])
        return True

    @event("Updated")
    def _updated(
        self, name: str, kind: str, specialties: tuple[str, ...], location_ids: tuple[UUID, ...]
    ) -> None:
        self.name, self.kind = name, kind
        self.specialties, self.location_ids = tuple(specialties), tuple(location_ids)

    def set_languages(self, languages: tuple[str, ...]) -> bool:
        """Say which languages the provider sees patients in; False when nothing changed."""
        self.check_active()
        if self.category != Category.PROVIDER and languages:
            raise InvalidRequestError("only providers speak languages with patients")
        spoken = tuple(dict.fromkeys(languages))  # each once, in the order given
        if spoken == self.languages:
            return False
        self._languages_set(languages=spoken)
        return True

    @event("LanguagesSet")
    def _languages_set(self, languages: tuple[str, ...]) -> None:
        self.languages = tuple(languages)

    @event("Retired")
    def _retired(self, reason: str) -> None:
        self.retired = True

    def directory_entry(self) -> DirectoryEntry:
        return DirectoryEntry(
            self.id, self.category, self.kind, self.specialties, self.location_ids
        )


TYPE_DEFINITION = (
    "name",
    "steps",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "seats",
    "minimum_notice_minutes",
    "maximum_horizon_days",
    "cancellation_cutoff_minutes",
    "patient_bookable",
    "preparation",
    "specialty",
    "reschedule_cutoff_minutes",
    "reminder_plan",
    "patient_facing",
)
"""What defines an appointment type, as ``define``/``update`` take it."""


class AppointmentType(Retirable):
    """What a visit needs: its steps and their resources, buffers, seats and booking policy,
    and what patients are told: its reminder plan and its texts in each language."""

    noun: ClassVar[str] = "appointment type"

    @event("Defined")
    def __init__(
        self,
        organization_id: UUID,
        name: str,
        steps: tuple[Step, ...],
        buffer_before_minutes: int,
        buffer_after_minutes: int,
        seats: int,
        minimum_notice_minutes: int,
        maximum_horizon_days: int,
        cancellation_cutoff_minutes: int,
        patient_bookable: bool,
        preparation: str,
        specialty: str | None,
        reschedule_cutoff_minutes: int | None = None,
        reminder_plan: tuple[Reminder, ...] = (),
        patient_facing: dict[str, PatientText] | None = None,
    ) -> None:
        self.organization_id = organization_id
        self._define(
            name=name,
            steps=steps,
            buffer_before_minutes=buffer_before_minutes,
            buffer_after_minutes=buffer_after_minutes,
            seats=seats,
            minimum_notice_minutes=minimum_notice_minutes,
            maximum_horizon_days=maximum_horizon_days,
            cancellation_cutoff_minutes=cancellation_cutoff_minutes,
            patient_bookable=patient_bookable,
            preparation=preparation,
            specialty=specialty,
            reschedule_cutoff_minutes=reschedule_cutoff_minutes,
            reminder_plan=reminder_plan,
            patient_facing=patient_facing or {},
        )

    def _define(self, **definition: Any) -> None:
        self.name: str = definition["name"]
        self.steps: tuple[Step, ...] = tuple(definition["steps"])
        self.buffer_before = dt.timedelta(minutes=definition["buffer_before_minutes"])
        self.buffer_after = dt.timedelta(minutes=definition["buffer_after_minutes"])
        self.seats: int = definition["seats"]
        self.minimum_notice = dt.timedelta(minutes=definition["minimum_notice_minutes"])
        self.maximum_horizon = dt.timedelta(days=definition["maximum_horizon_days"])
        self.cancellation_cutoff = dt.timedelta(minutes=definition["cancellation_cutoff_minutes"])
        moving = definition["reschedule_cutoff_minutes"]
        self.reschedule_cutoff = (
            self.cancellation_cutoff if moving is None else dt.timedelta(minutes=moving)
        )
        self.reschedule_cutoff_minutes = moving
        self.patient_bookable: bool = definition["patient_bookable"]
        self.preparation: str = definition["preparation"]
        self.specialty: str | None = definition["specialty"]
        self.reminder_plan: tuple[Reminder, ...] = tuple(definition["reminder_plan"])
        self.patient_facing: dict[str, PatientText] = dict(definition["patient_facing"])

    def definition(self) -> dict[str, Any]:
        minutes = _minutes
        return {
            "name": self.name,
            "steps": self.steps,
            "buffer_before_minutes": minutes(self.buffer_before),
            "buffer_after_minutes": minutes(self.buffer_after),
            "seats": self.seats,
            "minimum_notice_minutes": minutes(self.minimum_notice),
            "maximum_horizon_days": self.maximum_horizon.days,
            "cancellation_cutoff_minutes": minutes(self.cancellation_cutoff),
            "patient_bookable": self.patient_bookable,
            "preparation": self.preparation,
            "specialty": self.specialty,
            "reschedule_cutoff_minutes": self.reschedule_cutoff_minutes,
            "reminder_plan": self.reminder_plan,
            "patient_facing": self.patient_facing,
        }

    def update(self, **changes: Any) -> list[str]:
        """Change the definition; new bookings follow it, booked ones keep their time. The
        names of what changed (none: no event)."""
        self.check_active()
        unknown = set(changes) - set(TYPE_DEFINITION)
        if unknown:
            raise InvalidRequestError(f"not part of a type: {', '.join(sorted(unknown))}")
        current = self.definition()
        changed = sorted(k for k, v in changes.items() if current[k] != v)
        if changed:
            self._updated(definition={**current, **changes}, changed=changed)
        return changed

    @event("Updated")
    def _updated(self, definition: dict[str, Any], changed: list[str]) -> None:
        self._define(**definition)

    @event("Retired")
    def _retired(self, reason: str) -> None:
        self.retired = True

    @property
    def duration(self) -> dt.timedelta:
        return dt.timedelta(minutes=max(s.offset_minutes + s.duration_minutes for s in self.steps))

    @property
    def is_group_session(self) -> bool:
        return self.seats > 1


def _minutes(delta: dt.timedelta) -> int:
    return int(delta.total_seconds() // 60)


PATIENT_DETAILS = (
    "given_name",
    "family_name",
    "birth_date",
    "gender",
    "address",
    "contacts",
    "time_zone",
)
"""What ``update_details`` changes; preferences, identifiers and merges have their own."""
MAX_IDENTIFIERS = 20


class Patient(BookingAggregate):
    """A patient of one organisation. Personal data lives here, in booking, and travels
    only on the patients topic."""

    @event("Registered")
    def __init__(
        self,
        organization_id: UUID,
        given_name: str,
        family_name: str,
        birth_date: dt.date,
        contacts: tuple[Contact, ...],
        preferred_channel: str,
        language: str,
        gender: str = "unknown",
        address: Address | None = None,
        consent_sms: bool = False,
        consent_email: bool = False,
        time_zone: str | None = None,
        identifiers: tuple[Identifier, ...] = (),
    ) -> None:
        self.organization_id = organization_id
        self.given_name = given_name
        self.family_name = family_name
        self.birth_date = birth_date
        self.gender = gender
        self.address = address
        self.contacts = tuple(contacts)
        self.time_zone = time_zone
        self.preferred_channel = preferred_channel
        self.language = language
        self.consent_sms = consent_sms
        self.consent_email = consent_email
        self.identifiers = tuple(identifiers)
        self.merged_into: UUID | None = None
        self.merged_ids: tuple[UUID, ...] = ()

    def check_active(self) -> None:
        """A merged duplicate takes no new facts: they go to the record it was merged into."""
        if self.merged_into is not None:
            raise PatientMergedError(
                f"patient {self.id} was merged into {self.merged_into}; use that record",
                merged_into=str(self.merged_into),
            )

    def details(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in PATIENT_DETAILS}

    def update_details(self, **changes: Any) -> list[str]:
        """Change demographics; the names of the fields that changed (none: no event)."""
        self.check_active()
        unknown = set(changes) - set(PATIENT_DETAILS)
        if unknown:
            raise InvalidRequestError(f"not a patient detail: {', '.join(sorted(unknown))}")
        if "contacts" in changes:
            changes["contacts"] = tuple(changes["contacts"])
        changed = sorted(k for k, v in changes.items() if getattr(self, k) != v)
        if changed:
            self._details_updated(details={**self.details(), **changes}, changed=changed)
        return changed

    @event("DetailsUpdated")
    def _details_updated(self, details: dict[str, Any], changed: list[str]) -> None:
        for name, value in details.items():
            setattr(self, name, tuple(value) if name == "contacts" else value)

    def update_preferences(
        self,
        preferred_channel: str,
        language: str,
        consent_sms: bool | None = None,
        consent_email: bool | None = None,
    ) -> bool:
        self.check_active()
        after = (
            preferred_channel,
            language,
            self.consent_sms if consent_sms is None else consent_sms,
            self.consent_email if consent_email is None else consent_email,
        )
        before = (self.preferred_channel, self.language, self.consent_sms, self.consent_email)
        if after == before:
            return False
        self._preferences_updated(
            preferred_channel=after[0],
            language=after[1],
            consent_sms=after[2],
            consent_email=after[3],
        )
        return True

    @event("PreferencesUpdated")
    def _preferences_updated(
        self,
        preferred_channel: str,
        language: str,
        consent_sms: bool | None = None,
        consent_email: bool | None = None,
    ) -> None:
        self.preferred_channel = preferred_channel
        self.language = language
        if consent_sms is not None:
            self.consent_sms = consent_sms
        if consent_email is not None:
            self.consent_email = consent_email

    def record_identifier(self, identifier: Identifier) -> bool:
        """Add an identifier (an EMR's MRN); False when the patient has it already."""
        self.check_active()
        if identifier in self.identifiers:
            return False
        if any(i.system == identifier.system for i in self.identifiers):
            raise InvalidRequestError(
                f"the patient already has an identifier of {identifier.system}; "
                "a system gives a patient one"
            )
        if len(self.identifiers) >= MAX_IDENTIFIERS:
            raise InvalidRequestError(f"a patient has at most {MAX_IDENTIFIERS} identifiers")
        self._identifier_recorded(identifier=identifier)
        return True

    @event("IdentifierRecorded")
    def _identifier_recorded(self, identifier: Identifier) -> None:
        self.identifiers = (*self.identifiers, identifier)

    def merge_into(self, survivor: Patient) -> None:
        """This record is a duplicate of ``survivor``: retire it, and let the survivor take
        it (and whatever was merged into it before) in."""
        if survivor.id == self.id:
            raise InvalidRequestError("a patient cannot be merged into itself")
        self.check_active()
        survivor.check_active()
        self._merged_into(survivor_id=survivor.id)
        survivor._duplicate_absorbed(duplicate_ids=(self.id, *self.merged_ids))

    @event("MergedInto")
    def _merged_into(self, survivor_id: UUID) -> None:
        self.merged_into = survivor_id

    @event("DuplicateAbsorbed")
    def _duplicate_absorbed(self, duplicate_ids: tuple[UUID, ...]) -> None:
        self.merged_ids = (*self.merged_ids, *duplicate_ids)


class PatientIdentifier(BookingAggregate):
    """Which patient of an organisation holds an identifier (system, value): its id is
    derived from them, so two patients can never both record it (the second save meets
    the first's version), and an EMR finds the patient by its MRN with one read."""

    @staticmethod
    def create_id(organization_id: UUID, system: str, value: str) -> UUID:
        return patient_identifier_id(organization_id, system, value)

    @event("Recorded")
    def __init__(self, organization_id: UUID, system: str, value: str, patient_id: UUID) -> None:
        self.organization_id = organization_id
        self.system = system
        self.value = value
        self.patient_id = patient_id


IDENTIFIER_NAMESPACE = uuid5(NAMESPACE_URL, "https://clinic.example/booking/patient-identifier")


def patient_identifier_id(organization_id: UUID, system: str, value: str) -> UUID:
    return uuid5(IDENTIFIER_NAMESPACE, f"{organization_id}|{system}|{value}")
