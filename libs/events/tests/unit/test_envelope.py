import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from clinic.events import Envelope, UnknownEventTypeError
from clinic.events.appointments import AppointmentCancelled, CancelledBy, Participant
from clinic.events.envelope import TraceContext

ORG = uuid.UUID("00000000-0000-0000-0000-00000000000a")
APPT = uuid.UUID("00000000-0000-0000-0000-0000000000a1")


def cancelled_envelope(**overrides: object) -> Envelope:
    payload = AppointmentCancelled(
        appointment_id=APPT, cancelled_by=CancelledBy.PATIENT, reason="feeling better"
    )
    values: dict[str, object] = {
        "event_id": uuid.uuid4(),
        "aggregate_id": APPT,
        "aggregate_version": 3,
        "occurred_at": datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        "organization_id": ORG,
        "trace": TraceContext(traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01"),
    }
    values.update(overrides)
    return Envelope.wrap(payload, **values)  # type: ignore[arg-type]


def test_an_envelope_survives_a_round_trip_through_json_unchanged() -> None:
    envelope = cancelled_envelope()
    assert Envelope.from_json(envelope.to_json()) == envelope


def test_instants_are_sent_in_utc_with_a_z_whatever_offset_they_were_given_in() -> None:
    paris = timezone(timedelta(hours=2))
    envelope = cancelled_envelope(occurred_at=datetime(2026, 7, 1, 11, 0, tzinfo=paris))
    assert json.loads(envelope.to_json())["occurred_at"] == "2026-07-01T09:00:00Z"


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        cancelled_envelope(occurred_at=datetime(2026, 7, 1, 11, 0))


def test_the_envelope_names_the_payload_type_and_schema_version() -> None:
    envelope = cancelled_envelope()
    assert envelope.type == "Appointment.Cancelled"
    assert envelope.schema_version == 1
    payload = envelope.typed_payload()
    assert isinstance(payload, AppointmentCancelled)
    assert payload.reason == "feeling better"


def test_a_reader_ignores_fields_added_by_a_newer_producer() -> None:
    raw = json.loads(cancelled_envelope().to_json())
    raw["payload"]["refund_policy"] = "full"
    raw["a_new_envelope_field"] = 1
    envelope = Envelope.from_json(json.dumps(raw))
    assert envelope.payload_as(AppointmentCancelled).reason == "feeling better"


def test_an_unknown_event_type_is_reported_not_guessed() -> None:
    raw = json.loads(cancelled_envelope().to_json())
    raw["type"] = "Appointment.Teleported"
    with pytest.raises(UnknownEventTypeError, match="Teleported"):
        Envelope.from_json(json.dumps(raw)).typed_payload()


def test_reading_a_payload_as_the_wrong_type_is_refused() -> None:
    from clinic.events.appointments import AppointmentBooked

    with pytest.raises(TypeError):
        cancelled_envelope().payload_as(AppointmentBooked)


def test_the_key_is_the_aggregate_id_and_headers_carry_no_payload() -> None:
    envelope = cancelled_envelope()
    assert envelope.key() == str(APPT).encode()
    headers = envelope.headers()
    assert set(headers) == {"event-type", "schema-version", "event-id", "traceparent"}
    assert "feeling better" not in json.dumps(headers)


def test_aggregate_versions_start_at_one() -> None:
    with pytest.raises(ValidationError):
        cancelled_envelope(aggregate_version=0)


def test_participants_reject_unknown_fields_when_a_producer_builds_them() -> None:
    with pytest.raises(ValidationError):
        Participant(
            resource_id=uuid.uuid4(),
            resource_kind="room",
            role="exam room",
            start=datetime(2026, 1, 1, 9, tzinfo=UTC),
            end=datetime(2026, 1, 1, 10, tzinfo=UTC),
            colour="blue",  # type: ignore[call-arg]
        )
