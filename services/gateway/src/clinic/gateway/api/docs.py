"""Texts and real examples for the OpenAPI document (answers taken from the demo platform)."""

from __future__ import annotations

from typing import Any

IDEMPOTENCY_KEY = (
    "A key the client makes for this request (a UUID): a repeat with the same key gets the "
    "first answer (with `Idempotency-Replayed: true`) instead of doing it twice, for 24 hours "
    "(GATEWAY_IDEMPOTENCY_TTL_HOURS); the same key with another request is a 422."
)
IF_MATCH = (
    'The version last read, as its ETag (e.g. "3"): the change is made only if nobody changed '
    "it meanwhile (412 otherwise)."
)

ORG = "0b6f2c1e-4d7a-5b8c-9e0f-1a2b3c4d5e6f"
LOCATION = "5d1f8e0a-3b2c-5d4e-8f6a-7b8c9d0e1f2a"
TYPE = "7e2a9f1b-4c3d-5e6f-9a7b-8c9d0e1f2a3b"
PATIENT = "2c4e6a8b-1d3f-4a5b-8c7d-9e0f1a2b3c4d"
PROVIDER = "9a8b7c6d-5e4f-5a3b-8c2d-1e0f9a8b7c6d"
ROOM = "3f4e5d6c-7b8a-5c9d-8e0f-1a2b3c4d5e6f"
HOLD_EXPIRES = "2026-12-01T14:08:11Z"
APPOINTMENT_ID = "c8d7e6f5-a4b3-4c2d-9e1f-0a9b8c7d6e5f"

APPOINTMENT: dict[str, Any] = {
    "id": APPOINTMENT_ID,
    "organization_id": ORG,
    "status": "booked",
    "location_id": LOCATION,
    "appointment_type_id": TYPE,
    "patient_id": PATIENT,
    "start": "2026-12-07T08:00:00Z",
    "end": "2026-12-07T08:20:00Z",
    "hold_expires_at": None,
    "booked_by": "patient",
    "note": "",
    "participants": [
        {
            "resource_id": PROVIDER,
            "category": "provider",
            "role": "doctor",
            "start": "2026-12-07T08:00:00Z",
            "end": "2026-12-07T08:20:00Z",
        },
        {
            "resource_id": ROOM,
            "category": "room",
            "role": "room",
            "start": "2026-12-07T08:00:00Z",
            "end": "2026-12-07T08:20:00Z",
        },
    ],
    "cancellation": None,
    "attendance_confirmed_at": None,
    "attendance_confirmed_by": None,
    "version": 1,
}

HISTORY: dict[str, Any] = {
    "appointment_id": APPOINTMENT_ID,
    "events": [
        {
            "version": 1,
            "event": "Booked",
            "recorded_at": "2026-12-01T14:03:11.204Z",
            "by": "patient",
            "reason": None,
            "status": "booked",
            "start": "2026-12-07T08:00:00Z",
            "end": "2026-12-07T08:20:00Z",
            "resource_ids": [PROVIDER, ROOM],
            "actor": {"user_id": "patient-ana", "role": "patient", "channel": "api"},
            "correlation_id": None,
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        }
    ],
}


def example(body: Any) -> dict[str, Any]:
    """``responses=`` entry for a status: its real example."""
    return {"content": {"application/json": {"example": body}}}


PATIENT_RECORD: dict[str, Any] = {
    "id": PATIENT,
    "organization_id": ORG,
    "given_name": "Ana",
    "family_name": "García",
    "birth_date": "1987-04-12",
    "gender": "female",
    "address": None,
    "contacts": [{"system": "email", "value": "ana@example.org", "use": "home"}],
    "time_zone": "Europe/Berlin",
    "preferred_channel": "email",
    "language": "es",
    "consent": {"sms": False, "email": True},
    "identifiers": [{"system": "urn:oid:1.2.276.0.76.4.8", "value": "MRN-004711"}],
    "merged_into": None,
    "merged_ids": [],
    "version": 1,
}
