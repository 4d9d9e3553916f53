"""Patients: registration, demographics, preferences and consent, identifiers from EMRs,
and merging a duplicate record into the one that stays."""

from __future__ import annotations

from uuid import UUID

from clinic.booking import views
from clinic.booking.commands import (
    MergePatients,
    RecordPatientIdentifier,
    RegisterPatient,
    SetPatientPreferences,
    UpdatePatientDetails,
)
from clinic.booking.decision import Attempt, Decision, UseCase
from clinic.booking.domain.errors import (
    IdentifierInUseError,
    InvalidRequestError,
)
from clinic.booking.domain.reference import (
    Organization,
    Patient,
    PatientIdentifier,
    patient_identifier_id,
)
from clinic.booking.domain.values import Identifier


def register_patient(command: RegisterPatient, attempt: Attempt) -> Decision:
    if command.birth_date > attempt.now.date():
        raise InvalidRequestError("a birth date cannot be in the future")
    org = command.organization_id
    attempt.load(Organization, org, org, "organization")
    patient = Patient(
        organization_id=org,
        given_name=command.given_name,
        family_name=command.family_name,
        birth_date=command.birth_date,
        contacts=tuple(command.contacts),
        preferred_channel=command.preferred_channel,
        language=command.language,
        gender=command.gender,
        address=command.address,
        consent_sms=command.consent_sms,
        consent_email=command.consent_email,
        time_zone=command.time_zone,
        identifiers=tuple(command.identifiers),
    )
    claims = [_claim(attempt, org, identifier, patient) for identifier in command.identifiers]
    return Decision([patient, *claims], views.patient(patient))


def update_patient_details(command: UpdatePatientDetails, attempt: Attempt) -> Decision:
    """Demographics: name, birth date, gender, address, contacts, time zone."""
    birth_date = command.changes.get("birth_date")
    if birth_date is not None and birth_date > attempt.now.date():
        raise InvalidRequestError("a birth date cannot be in the future")
    patient = _patient(attempt, command.organization_id, command.patient_id)
    patient.update_details(**command.changes)
    return Decision([patient], views.patient(patient))


def set_patient_preferences(command: SetPatientPreferences, attempt: Attempt) -> Decision:
    """How and in which language to reach the patient, and what they consented to."""
    patient = _patient(attempt, command.organization_id, command.patient_id)
    patient.update_preferences(
        command.preferred_channel or patient.preferred_channel,
        command.language or patient.language,
        command.consent_sms,
        command.consent_email,
    )
    return Decision([patient], views.patient(patient))


def record_patient_identifier(command: RecordPatientIdentifier, attempt: Attempt) -> Decision:
    """An EMR's identifier (MRN) for the patient; one patient per identifier per tenant."""
    command.context.acting.check_not_patient("record identifiers")
    org = command.organization_id
    patient = _patient(attempt, org, command.patient_id)
    changed = patient.record_identifier(command.identifier)
    if not changed:
        return Decision([], views.patient(patient))
    claim = _claim(attempt, org, command.identifier, patient)
    return Decision([patient, claim], views.patient(patient))


def merge_patients(command: MergePatients, attempt: Attempt) -> Decision:
    """The duplicate is retired into the survivor: its appointments are the survivor's,
    and it takes no new bookings, details or identifiers."""
    command.context.acting.check_not_patient("merge patient records")
    org = command.organization_id
    survivor = _patient(attempt, org, command.survivor_id)
    duplicate = _patient(attempt, org, command.duplicate_id)
    duplicate.merge_into(survivor)
    return Decision([duplicate, survivor], views.patient(survivor))


def _patient(attempt: Attempt, organization_id: UUID, patient_id: UUID) -> Patient:
    return attempt.load(Patient, patient_id, organization_id, "patient")


def _claim(
    attempt: Attempt, organization_id: UUID, identifier: Identifier, patient: Patient
) -> PatientIdentifier:
    claim_id = patient_identifier_id(organization_id, identifier.system, identifier.value)
    existing = attempt.maybe(claim_id)
    if existing is not None:
        raise IdentifierInUseError(
            f"{identifier.system} {identifier.value} belongs to patient {existing.patient_id}",
            patient_id=str(existing.patient_id),
        )
    return PatientIdentifier(
        organization_id=organization_id,
        system=identifier.system,
        value=identifier.value,
        patient_id=patient.id,
    )


REGISTER_PATIENT = UseCase(register_patient)
UPDATE_PATIENT_DETAILS = UseCase(update_patient_details)
SET_PATIENT_PREFERENCES = UseCase(set_patient_preferences)
RECORD_PATIENT_IDENTIFIER = UseCase(record_patient_identifier)
MERGE_PATIENTS = UseCase(merge_patients)
