"""Patients as the clinic and its EMRs know them: demographics, preferences and consent,
identifiers from EMRs, and merging a duplicate. Run on the in-memory store and PostgreSQL."""

import datetime as dt
import uuid
from typing import Any

import pytest
from scenario import MONDAY, PATIENT, Clinic, at

from clinic.booking.commands import (
    JoinWaitlist,
    MergePatients,
    RecordPatientIdentifier,
    RegisterPatient,
    SetPatientPreferences,
    UpdatePatientDetails,
)
from clinic.booking.domain import errors
from clinic.booking.domain.values import Address, Contact, Identifier

MRN = "https://emr.example/mrn"


def register(clinic: Clinic, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "given_name": "Grace",
        "family_name": "Hopper",
        "birth_date": dt.date(1956, 12, 9),
        **fields,
    }
    return clinic.do(RegisterPatient, **values).body


def events_of(clinic: Clinic, patient_id: str) -> list[str]:
    return [type(e).__name__ for e in clinic.app.events.get(uuid.UUID(patient_id))]


def test_a_patient_is_registered_with_everything_the_emr_and_reminders_need(
    clinic: Clinic,
) -> None:
    patient = register(
        clinic,
        gender="female",
        address=Address(("Unter den Linden 1",), "Berlin", "", "", "10117", "DE"),
        contacts=(
            Contact("phone", "+49 30 1234", "mobile"),
            Contact("email", "grace@example.org", "home"),
        ),
        time_zone="Europe/Berlin",
        preferred_channel="sms",
        language="de",
        consent_sms=True,
        identifiers=(Identifier(MRN, "4711"),),
    )
    assert patient["gender"] == "female"
    assert patient["address"]["postal_code"] == "10117"
    assert patient["contacts"][0] == {"system": "phone", "value": "+49 30 1234", "use": "mobile"}
    assert patient["consent"] == {"sms": True, "email": False}
    assert patient["identifiers"] == [{"system": MRN, "value": "4711"}]
    assert patient["time_zone"] == "Europe/Berlin"
    stored = clinic.app.queries.get_patient(clinic.org, uuid.UUID(patient["id"]))
    assert stored == patient


def test_details_change_only_where_they_differ_and_the_past_stays_in_the_history(
    clinic: Clinic,
) -> None:
    patient = register(clinic)
    pid = uuid.UUID(patient["id"])
    moved = clinic.do(
        UpdatePatientDetails,
        patient_id=pid,
        changes={"family_name": "Hopper-Murray", "gender": "female", "given_name": "Grace"},
    ).body
    assert (moved["family_name"], moved["gender"], moved["given_name"]) == (
        "Hopper-Murray",
        "female",
        "Grace",
    )
    [*_, updated] = clinic.app.events.get(pid)
    assert updated.changed == ["family_name", "gender"]  # type: ignore[attr-defined]
    clinic.do(UpdatePatientDetails, patient_id=pid, changes={"family_name": "Hopper-Murray"})
    assert events_of(clinic, patient["id"]) == ["Registered", "DetailsUpdated"]
    with pytest.raises(errors.InvalidRequestError, match="future"):
        clinic.do(
            UpdatePatientDetails,
            patient_id=pid,
            changes={"birth_date": clinic.clock.now.date() + dt.timedelta(days=1)},
        )
    with pytest.raises(errors.NotFoundError):
        clinic.do(UpdatePatientDetails, patient_id=uuid.uuid4(), changes={"gender": "male"})


def test_preferences_and_consent_change_what_is_given_and_nothing_else(clinic: Clinic) -> None:
    pid = uuid.UUID(register(clinic, consent_email=True)["id"])
    after = clinic.do(
        SetPatientPreferences, patient_id=pid, preferred_channel="sms", consent_sms=True
    ).body
    assert (after["preferred_channel"], after["language"]) == ("sms", "en")
    assert after["consent"] == {"sms": True, "email": True}
    withdrawn = clinic.do(SetPatientPreferences, patient_id=pid, consent_email=False).body
    assert withdrawn["consent"] == {"sms": True, "email": False}


def test_an_identifier_belongs_to_one_patient_of_an_organisation(clinic: Clinic) -> None:
    grace = uuid.UUID(register(clinic)["id"])
    ada = uuid.UUID(register(clinic, given_name="Ada", family_name="Lovelace")["id"])
    mrn = Identifier(MRN, "4711")
    recorded = clinic.do(RecordPatientIdentifier, patient_id=grace, identifier=mrn).body
    assert recorded["identifiers"] == [{"system": MRN, "value": "4711"}]
    clinic.do(RecordPatientIdentifier, patient_id=grace, identifier=mrn)  # again: no change
    assert events_of(clinic, str(grace)) == ["Registered", "IdentifierRecorded"]
    with pytest.raises(errors.IdentifierInUseError) as taken:
        clinic.do(RecordPatientIdentifier, patient_id=ada, identifier=mrn)
    assert taken.value.extensions["patient_id"] == str(grace)
    with pytest.raises(errors.IdentifierInUseError):
        register(clinic, given_name="Dup", identifiers=(mrn,))
    with pytest.raises(errors.InvalidRequestError, match="one"):
        clinic.do(RecordPatientIdentifier, patient_id=grace, identifier=Identifier(MRN, "9"))
    with pytest.raises(errors.StaffOnlyError):
        clinic.do(
            RecordPatientIdentifier,
            patient_id=ada,
            identifier=Identifier("urn:other", "1"),
            context=PATIENT,
        )
    found = clinic.app.queries.patient_by_identifier(clinic.org, MRN, "4711")
    assert found is not None
    assert found["id"] == str(grace)
    assert clinic.app.queries.patient_by_identifier(clinic.org, MRN, "0000") is None
    assert clinic.app.queries.patient_by_identifier(uuid.uuid4(), MRN, "4711") is None


def test_a_merged_duplicate_takes_nothing_new_and_its_identifiers_find_the_survivor(
    clinic: Clinic,
) -> None:
    survivor = uuid.UUID(register(clinic)["id"])
    duplicate = uuid.UUID(
        register(clinic, given_name="G.", identifiers=(Identifier(MRN, "77"),))["id"]
    )
    older = uuid.UUID(register(clinic, given_name="Gracie")["id"])
    clinic.do(MergePatients, survivor_id=duplicate, duplicate_id=older)
    booked = clinic.book("consult", at(MONDAY, 9), patient_id=duplicate)

    merged = clinic.do(MergePatients, survivor_id=survivor, duplicate_id=duplicate).body

    assert merged["merged_ids"] == [str(duplicate), str(older)]
    retired = clinic.app.queries.get_patient(clinic.org, duplicate)
    assert retired["merged_into"] == str(survivor)
    found = clinic.app.queries.patient_by_identifier(clinic.org, MRN, "77")
    assert found is not None
    assert found["id"] == str(survivor)
    for refused in (
        lambda: clinic.book("consult", at(MONDAY, 10), patient_id=duplicate),
        lambda: clinic.do(UpdatePatientDetails, patient_id=duplicate, changes={"gender": "male"}),
        lambda: clinic.do(MergePatients, survivor_id=duplicate, duplicate_id=survivor),
        lambda: clinic.do(
            JoinWaitlist,
            patient_id=older,
            appointment_type_id=clinic.types["consult"],
            location_ids=(clinic.location,),
            earliest=MONDAY,
            latest=MONDAY,
        ),
    ):
        with pytest.raises(errors.PatientMergedError) as error:
            refused()
        assert error.value.status == 409
    with pytest.raises(errors.InvalidRequestError, match="itself"):
        clinic.do(MergePatients, survivor_id=survivor, duplicate_id=survivor)
    other = uuid.UUID(register(clinic, given_name="Other")["id"])
    with pytest.raises(errors.StaffOnlyError):
        clinic.do(MergePatients, survivor_id=survivor, duplicate_id=other, context=PATIENT)
    # The duplicate's appointment is untouched: it is listed with the survivor's.
    assert clinic.app.queries.get_appointment(clinic.org, uuid.UUID(booked["id"]))[
        "patient_id"
    ] == str(duplicate)
    assert clinic.book("consult", at(MONDAY, 11), patient_id=survivor)["status"] == "booked"
