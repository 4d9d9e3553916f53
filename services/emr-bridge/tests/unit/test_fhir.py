"""The resources the bridge serves are FHIR R4: each validates with the R4B models of
fhir.resources and carries only codes of the R4 value sets, whatever booking recorded."""

import datetime as dt
import uuid

import pytest

from clinic.emr_bridge import fhir
from clinic.emr_bridge.fhir import AppointmentState, InvalidResourceError, validated
from clinic.events import patients as pat
from clinic.events import reference as ref

AT = dt.datetime(2027, 3, 1, 8, 30, 15, 123456, tzinfo=dt.UTC)
ORG = uuid.uuid4()
STATUSES = ["proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
            "entered-in-error", "checked-in", "waitlist"]  # fmt: skip


def record(**changes: object) -> pat.PatientRecord:
    base = pat.PatientRecord(
        given_name="Ana", family_name="Ruiz", birth_date=dt.date(1980, 2, 29),
        gender=pat.AdministrativeGender("female"),
        address=pat.Address(lines=("Invalidenstr. 1",), city="Berlin", postal_code="10115",
                            country="DE"),
        contacts=(pat.ContactPoint(system="email", value="ana@example.org"),
                  pat.ContactPoint(system="phone", value="+4915100000", use="mobile")),
        preferred_channel="sms", language="es-MX", consent=pat.Consent(sms=True),
        time_zone="Europe/Berlin",
        identifiers=(pat.Identifier(system="urn:oid:1.2.276.0.76.4.8", value="MRN-1"),),
        merged_into=None,
    )  # fmt: skip
    return base.model_copy(update=changes)


def test_reference_data_becomes_organization_location_practitioner_role_and_service() -> None:
    location_id, doctor, kind = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    org = fhir.organization(ref.OrganizationRegistered(organization_id=ORG, name="Charité"), 1, AT)
    place = fhir.location(
        ref.LocationRegistered(location_id=location_id, name="Mitte", time_zone="Europe/Berlin",
                               address={"city": "Berlin", "street": "Invalidenstr. 1",
                                        "floor": "3"}),
        ORG, 2, AT,
    )  # fmt: skip
    provider = ref.ResourceRegistered(
        resource_id=doctor, category="provider", name="Dr. Adler", kind="physician",
        specialties=("cardiology",), location_ids=(location_id,), time_zone="Europe/Berlin",
        languages=("de", "tr"),
    )  # fmt: skip
    person = fhir.practitioner(provider, 1, AT)
    role = fhir.practitioner_role(provider, ORG, 1, AT, retired=True)
    service = fhir.healthcare_service(
        ref.AppointmentTypeDefined(
            appointment_type_id=kind, name="Check-up", steps=(), buffer_before_minutes=0,
            buffer_after_minutes=0, seats=1, minimum_notice_minutes=0, maximum_horizon_days=90,
            cancellation_cutoff_minutes=0, patient_bookable=True, preparation="Fasting.",
            specialty="cardiology",
        ),
        ORG, 4, AT,
    )  # fmt: skip

    assert org["meta"] == {"versionId": "1", "lastUpdated": "2027-03-01T08:30:15Z"}
    assert place["address"] == {"line": ["Invalidenstr. 1"], "city": "Berlin", "text": "floor: 3"}
    assert place["managingOrganization"] == {"reference": f"Organization/{ORG}"}
    assert person["name"] == [{"text": "Dr. Adler"}]
    assert [c["coding"][0]["code"] for c in person["communication"]] == ["de", "tr"]
    assert person["communication"][0]["coding"][0]["system"] == "urn:ietf:bcp:47"
    assert role["active"] is False
    assert role["location"] == [{"reference": f"Location/{location_id}"}]
    assert role["specialty"][0]["coding"][0]["code"] == "cardiology"
    assert service["comment"] == "Fasting."
    assert service["type"][0]["coding"][0] == {
        "system": f"{fhir.SYSTEM}/appointment-type", "code": str(kind), "display": "Check-up"
    }  # fmt: skip


def test_a_patient_carries_identifiers_contacts_language_and_a_merge() -> None:
    pid, survivor = uuid.uuid4(), uuid.uuid4()
    ana = fhir.patient(pid, record(), ORG, 3, AT)
    assert ana["identifier"] == [{"system": "urn:oid:1.2.276.0.76.4.8", "value": "MRN-1"}]
    assert ana["telecom"][1] == {"system": "phone", "value": "+4915100000", "use": "mobile"}
    assert ana["address"] == [{"line": ["Invalidenstr. 1"], "city": "Berlin",
                               "postalCode": "10115", "country": "DE"}]  # fmt: skip
    assert ana["communication"][0]["language"]["coding"][0]["code"] == "es-MX"
    assert ana["birthDate"] == "1980-02-29"
    merged = fhir.patient(pid, record(merged_into=survivor, identifiers=()), ORG, 4, AT)
    assert merged["active"] is False
    assert merged["link"] == [{"other": {"reference": f"Patient/{survivor}"},
                               "type": "replaced-by"}]  # fmt: skip
    assert "identifier" not in merged


def test_contacts_fhir_has_no_system_for_are_left_out_not_served_invalid() -> None:
    odd = record(contacts=(pat.ContactPoint(system="whatsapp", value="+49151"),))
    assert "telecom" not in fhir.patient(uuid.uuid4(), odd, ORG, 1, AT)


def appointment_state(status: str, **changes: object) -> AppointmentState:
    state = AppointmentState(
        appointment_id=uuid.uuid4(), organization_id=ORG, patient_id=uuid.uuid4(),
        location_id=uuid.uuid4(), appointment_type_id=uuid.uuid4(), type_name="Check-up",
        status=status, start=AT, end=AT + dt.timedelta(minutes=30), created=AT,
        participants=(("provider", uuid.uuid4(), "physician"), ("room", uuid.uuid4(), "room")),
    )  # fmt: skip
    return AppointmentState(**{**state.__dict__, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("status", STATUSES)
def test_an_appointment_in_each_status_is_valid_r4(status: str) -> None:
    resource = fhir.appointment(appointment_state(status), 2, AT)
    assert resource["status"] == status
    assert resource["minutesDuration"] == 30
    assert [p["actor"]["reference"].split("/")[0] for p in resource["participant"]] == [
        "Patient", "Location", "Practitioner", "Location"
    ]  # fmt: skip


def test_the_patients_participation_follows_their_confirmation_and_the_cancellation() -> None:
    def patient_status(state: AppointmentState) -> str:
        return str(fhir.appointment(state, 1, AT)["participant"][0]["status"])

    assert patient_status(appointment_state("booked")) == "needs-action"
    assert patient_status(appointment_state("booked", attendance_confirmed=True)) == "accepted"
    assert patient_status(appointment_state("fulfilled")) == "accepted"
    cancelled = fhir.appointment(appointment_state("cancelled", cancellation_reason="ill"), 3, AT)
    assert {p["status"] for p in cancelled["participant"]} == {"declined"}
    assert cancelled["cancelationReason"] == {"text": "ill"}


@pytest.mark.parametrize(
    ("resource", "complaint"),
    [
        ({"resourceType": "Appointment", "status": "confirmed",
          "participant": [{"status": "accepted"}]}, "appointment-status"),
        ({"resourceType": "Appointment", "status": "booked",
          "participant": [{"status": "maybe"}]}, "participation-status"),
        ({"resourceType": "Slot", "status": "open", "schedule": {"reference": "Schedule/1"},
          "start": "2027-03-01T08:00:00Z", "end": "2027-03-01T08:30:00Z"}, "slot-status"),
        ({"resourceType": "Patient", "gender": "f"}, "administrative-gender"),
        ({"resourceType": "Patient", "telecom": [{"system": "whatsapp", "value": "1"}]},
         "contact-point-system"),
        ({"resourceType": "Appointment", "status": "booked", "participant": "nobody"},
         "Appointment"),
        ({"resourceType": "Nonsense"}, "Nonsense"),
    ],
)  # fmt: skip
def test_codes_outside_the_r4_value_sets_and_invalid_structures_are_refused(
    resource: dict[str, object], complaint: str
) -> None:
    with pytest.raises(InvalidResourceError, match=complaint):
        validated(resource)  # type: ignore[arg-type]


def test_instants_are_utc_to_the_second() -> None:
    offset = dt.datetime(2027, 3, 28, 3, 30, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert fhir.instant(offset) == "2027-03-28T01:30:59Z"
