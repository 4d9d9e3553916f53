"""Patient events, on ``booking.patients.v1``: the only topic that carries personal data.

Only the services that need it read this topic (notification to reach patients, the EMR
bridge for FHIR ``Patient`` and HL7 ``PID``); in Kubernetes, Kafka ACLs enforce that.
Personal data travels in the payload only, never in keys or headers (keys are patient ids).

Every event carries the patient's record as it stands after the change, so a consumer that
keeps one row per patient replaces the row and needs no earlier event to apply it.

These succeed ``Patient.Registered`` v1 and ``Patient.PreferencesUpdated`` v1, which
travelled on ``booking.reference.v1`` and are no longer published (see ``reference``).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from clinic.events.payload import EventPayload
from clinic.events.topics import Topic


class AdministrativeGender(StrEnum):
    """FHIR R4 AdministrativeGender (HL7 v2 PID-8: M, F, O, U)."""

    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class ContactPoint(BaseModel):
    """FHIR ContactPoint: ``system`` phone, sms or email; ``use`` home, work, mobile."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str
    value: str
    use: str | None = None


class Address(BaseModel):
    """FHIR Address (HL7 v2 XAD)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lines: tuple[str, ...] = ()
    city: str = ""
    district: str = ""
    state: str = ""
    postal_code: str = ""
    country: str = Field("", description="ISO 3166 alpha-2 where known.")


class Identifier(BaseModel):
    """An identifier another system gave the patient: an EMR's MRN is (its system URI, the
    number). HL7 v2 PID-3 CX; FHIR Identifier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str
    value: str


class Consent(BaseModel):
    """What the patient agreed to be contacted by."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sms: bool = False
    email: bool = False


class PatientRecord(BaseModel):
    """The patient as booking knows them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    given_name: str
    family_name: str
    birth_date: dt.date
    gender: AdministrativeGender
    address: Address | None
    contacts: tuple[ContactPoint, ...]
    preferred_channel: str = Field(description="email, sms, phone or none")
    language: str = Field(description="BCP 47, e.g. en, de, es-MX")
    consent: Consent
    time_zone: str | None = Field(
        description="IANA zone the patient lives in (quiet hours); null: the clinic's."
    )
    identifiers: tuple[Identifier, ...]
    merged_into: UUID | None = Field(
        description="Set once the record was merged into another as its duplicate."
    )


class _PatientEvent(EventPayload):
    topic: ClassVar[Topic] = Topic.PATIENTS

    patient_id: UUID
    patient: PatientRecord


class PatientRegistered(_PatientEvent):
    """A patient is known to the organisation."""

    event_type: ClassVar[str] = "Patient.Registered"
    schema_version: ClassVar[int] = 2


class PatientDetailsUpdated(_PatientEvent):
    """Name, birth date, gender, address, contacts or time zone changed."""

    event_type: ClassVar[str] = "Patient.DetailsUpdated"
    changed: tuple[str, ...] = Field(description="The fields of the record that changed.")


class PatientPreferencesUpdated(_PatientEvent):
    """Preferred channel, language or consent changed."""

    event_type: ClassVar[str] = "Patient.PreferencesUpdated"
    schema_version: ClassVar[int] = 2


class PatientIdentifierRecorded(_PatientEvent):
    """An EMR (or the clinic) gave the patient an identifier, e.g. its MRN."""

    event_type: ClassVar[str] = "Patient.IdentifierRecorded"
    identifier: Identifier


class PatientMerged(_PatientEvent):
    """This record was a duplicate of ``survivor_id``: it is retired, and everything of it
    (its appointments, its identifiers) belongs to the survivor from now on. HL7 v2 A40;
    FHIR ``Patient.link`` replaced-by."""

    event_type: ClassVar[str] = "Patient.Merged"
    survivor_id: UUID
