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

BERLIN = {"street": "Torstraße 49", "city": "Berlin", "postal_code": "10119", "country": "DE"}
LOCATION_ITEM: dict[str, Any] = {
    "id": LOCATION,
    "name": "Berlin Mitte",
    "time_zone": "Europe/Berlin",
    "address": BERLIN,
    "retired": False,
}
RESOURCE_ITEM: dict[str, Any] = {
    "id": PROVIDER,
    "category": "provider",
    "kind": "physician",
    "name": "Dr. Adams",
    "specialties": ["general-practice"],
    "languages": ["de", "en"],
    "location_ids": [LOCATION],
    "time_zone": "Europe/Berlin",
    "retired": False,
}
STEP = {
    "name": "visit",
    "offset_minutes": 0,
    "duration_minutes": 20,
    "requirements": [
        {
            "role": "physician",
            "category": "provider",
            "resource_id": None,
            "kind": "physician",
            "specialty": None,
        },
        {
            "role": "room",
            "category": "room",
            "resource_id": None,
            "kind": "exam-room",
            "specialty": None,
        },
    ],
}
TYPE_ITEM: dict[str, Any] = {
    "id": TYPE,
    "name": "General consultation",
    "duration_minutes": 20,
    "steps": [STEP],
    "buffer_before_minutes": 0,
    "buffer_after_minutes": 5,
    "seats": 1,
    "minimum_notice_minutes": 60,
    "maximum_horizon_days": 90,
    "cancellation_cutoff_minutes": 1440,
    "reschedule_cutoff_minutes": 1440,
    "patient_bookable": True,
    "specialty": None,
    "preparation": "Bring your insurance card.",
    "patient_facing": {
        "de": {"name": "Allgemeine Sprechstunde", "description": "", "preparation": ""}
    },
    "reminder_plan": [{"before_minutes": 1440, "channel": None}],
    "retired": False,
}
SCHEDULE: dict[str, Any] = {
    "resource_id": PROVIDER,
    "weekly_hours": [
        {
            "location_id": LOCATION,
            "weekday": 0,
            "start": "08:00",
            "end": "16:00",
            "effective_from": None,
            "effective_until": None,
        },
    ],
    "exceptions": [
        {
            "id": "6f1d2c3b-4a59-4e8d-9c7b-1a2b3c4d5e6f",
            "kind": "leave",
            "start": "2026-12-24T00:00:00Z",
            "end": "2026-12-27T00:00:00Z",
            "location_id": None,
            "reason": "holiday leave",
        },
    ],
    "version": 4,
}
WAITLIST_ENTRY: dict[str, Any] = {
    "id": "4e5f6a7b-8c9d-4e0f-8a1b-2c3d4e5f6a7b",
    "organization_id": ORG,
    "status": "waitlist",
    "patient_id": PATIENT,
    "appointment_type_id": TYPE,
    "location_ids": [LOCATION],
    "earliest": "2026-12-03",
    "latest": "2026-12-18",
    "times_of_day": ["morning"],
    "provider_id": None,
    "note": "",
    "priority": 5,
    "weekdays": [1, 3],
    "joined_at": "2026-12-02T13:50:12Z",
}
CALENDAR_APPOINTMENT: dict[str, Any] = {
    "id": APPOINTMENT_ID,
    "status": "booked",
    "appointment_type": {"id": TYPE, "name": "General consultation"},
    "location_id": LOCATION,
    "patient_id": PATIENT,
    "start": "2026-12-07T07:00:00Z",
    "end": "2026-12-07T07:20:00Z",
    "local_start": "2026-12-07T08:00:00+01:00",
    "local_end": "2026-12-07T08:20:00+01:00",
    "hold_expires_at": None,
    "cancellation": None,
    "participants": [
        {
            "resource_id": PROVIDER,
            "name": "Dr. Adams",
            "role": "physician",
            "kind": "physician",
            "start": "2026-12-07T07:00:00Z",
            "end": "2026-12-07T07:20:00Z",
        },
    ],
    "version": 2,
}
FREE = {
    "start": "2026-12-07T07:20:00Z",
    "end": "2026-12-07T15:00:00Z",
    "local_start": "2026-12-07T08:20:00+01:00",
    "local_end": "2026-12-07T16:00:00+01:00",
    "location_id": LOCATION,
}
CALENDAR_RESOURCE = {
    "id": PROVIDER,
    "name": "Dr. Adams",
    "category": "provider",
    "kind": "physician",
    "time_zone": "Europe/Berlin",
    "retired": False,
}
DAY = {"date": "2026-12-07", "appointments": [CALENDAR_APPOINTMENT], "free": [FREE], "blocked": []}
PERCENTILES = {"median": 2880.0, "p90": 10080.0}
KPI_BUCKET: dict[str, Any] = {
    "period_start": "2026-12-07",
    "group": None,
    "appointments_booked": 42,
    "no_show_rate": 0.048,
    "confirmed_appointments": 30,
    "unconfirmed_appointments": 12,
    "no_show_rate_confirmed": 0.033,
    "no_show_rate_unconfirmed": 0.083,
    "utilisation": 0.71,
    "booked_minutes": 840.0,
    "working_minutes": 1180.0,
    "lead_time_minutes": PERCENTILES,
    "cancellation_rate": 0.07,
    "late_cancellation_rate": 0.02,
    "reschedule_rate": 0.05,
    "fill_rate": 0.5,
    "funnel": {
        "holds_placed": 51,
        "holds_confirmed": 40,
        "holds_lapsed": 8,
        "holds_released": 3,
        "search_to_book_minutes": {"median": 3.5, "p90": 11.0},
    },
}
AUDIT_EVENT: dict[str, Any] = {
    "id": "0d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a",
    "recorded_at": "2026-12-02T13:48:31.191500Z",
    "actor": "demo-patient",
    "role": "patient",
    "client_id": "patient-portal",
    "operation": "appointments.confirm",
    "method": "POST",
    "route": "/v1/appointments/{appointment_id}/confirm",
    "path": f"/v1/appointments/{APPOINTMENT_ID}/confirm",
    "target_ids": [APPOINTMENT_ID],
    "patient_id": PATIENT,
    "outcome": 200,
    "client_address": "10.20.0.17",
    "trace_id": "fbba16009ee9dc61ef136a18b5590ad7",
    "replayed": False,
}
CONTACT_PREFERENCES: dict[str, Any] = {
    "patient_id": PATIENT,
    "preferred_channel": "email",
    "language": "es",
    "consent_sms": False,
    "consent_email": True,
    "time_zone": "Europe/Berlin",
    "addresses": [
        {
            "channel": "email",
            "address": "ana@example.org",
            "opted_out": False,
            "since": None,
            "source": None,
        }
    ],
}
MESSAGES: dict[str, Any] = {
    "appointment_id": APPOINTMENT_ID,
    "messages": [
        {
            "message_id": "8a7b6c5d-4e3f-5a2b-9c1d-0e9f8a7b6c5d",
            "kind": "confirmation",
            "channel": "email",
            "address": "ana@example.org",
            "language": "es",
            "due_at": "2026-12-02T13:48:31Z",
            "before_minutes": None,
            "status": "sent",
            "reason": None,
            "attempts": 1,
            "sent_at": "2026-12-02T13:48:32Z",
            "delivery": None,
            "delivery_at": None,
        }
    ],
}
FREED_TIMES: dict[str, Any] = {
    "next_page_token": None,
    "freed_times": [
        {
            "freed_id": "1b2c3d4e-5f6a-5b7c-8d9e-0f1a2b3c4d5e",
            "location_id": LOCATION,
            "appointment_type_id": TYPE,
            "start": "2026-12-04T08:00:00Z",
            "end": "2026-12-04T08:20:00Z",
            "source_appointment_id": APPOINTMENT_ID,
            "status": "filled",
            "reason": None,
            "found_at": "2026-12-02T09:10:00Z",
            "offers": [
                {
                    "offer_id": "2c3d4e5f-6a7b-5c8d-9e0f-1a2b3c4d5e6f",
                    "entry_id": "4e5f6a7b-8c9d-4e0f-8a1b-2c3d4e5f6a7b",
                    "patient_id": PATIENT,
                    "status": "accepted",
                    "reason": None,
                    "hold_appointment_id": "3d4e5f6a-7b8c-4d9e-8f0a-1b2c3d4e5f6a",
                    "offered_at": "2026-12-02T09:10:02Z",
                    "expires_at": "2026-12-02T10:10:02Z",
                }
            ],
        }
    ],
}

RESPONSES: dict[str, Any] = {
    "AppointmentView": APPOINTMENT,
    "AppointmentHistoryView": HISTORY,
    "PatientView": PATIENT_RECORD,
    "PatientsPage": {"patients": [PATIENT_RECORD], "next_page_token": None},
    "PatientAppointmentsPage": {
        "patient_id": PATIENT,
        "appointments": [
            {
                "id": APPOINTMENT_ID,
                "patient_id": PATIENT,
                "appointment_type_id": TYPE,
                "location_id": LOCATION,
                "status": "booked",
                "start": "2026-12-07T07:00:00Z",
                "end": "2026-12-07T07:20:00Z",
                "hold_expires_at": None,
                "resource_ids": [PROVIDER, ROOM],
                "version": 2,
            },
        ],
        "next_page_token": None,
    },
    "ContactPreferencesView": CONTACT_PREFERENCES,
    "MessageHistoryView": MESSAGES,
    "LocationDayView": {
        "location": {
            "id": LOCATION,
            "name": "Berlin Mitte",
            "time_zone": "Europe/Berlin",
            "retired": False,
        },
        "date": "2026-12-07",
        "resources": [{**DAY, "resource": CALENDAR_RESOURCE}],
    },
    "ResourceCalendarView": {"resource": CALENDAR_RESOURCE, "days": [DAY]},
    "WaitlistEntryView": WAITLIST_ENTRY,
    "WaitlistPage": {
        "entries": [
            {
                "id": WAITLIST_ENTRY["id"],
                "patient_id": PATIENT,
                "appointment_type_id": TYPE,
                "location_ids": [LOCATION],
                "earliest": "2026-12-03",
                "latest": "2026-12-18",
                "times_of_day": ["morning"],
                "weekdays": [1, 3],
                "provider_id": None,
                "priority": 5,
                "joined_at": "2026-12-02T13:50:12Z",
                "active": True,
            }
        ],
        "next_page_token": None,
    },
    "FreedTimesView": FREED_TIMES,
    "LocationView": {**LOCATION_ITEM, "organization_id": ORG, "version": 1},
    "LocationsPage": {"locations": [LOCATION_ITEM], "next_page_token": "QmVybGluIE1pdHRl"},
    "ResourceView": {
        **RESOURCE_ITEM,
        "organization_id": ORG,
        "overbooking_allowance": 0,
        "version": 3,
    },
    "ResourcesPage": {"resources": [RESOURCE_ITEM], "next_page_token": None},
    "ScheduleView": SCHEDULE,
    "AppointmentTypeView": {**TYPE_ITEM, "organization_id": ORG, "version": 1},
    "AppointmentTypesPage": {"appointment_types": [TYPE_ITEM], "next_page_token": None},
    "KpisView": {
        "organization_id": ORG,
        "from": "2026-12-07",
        "to": "2026-12-07",
        "period": "day",
        "group_by": None,
        "buckets": [KPI_BUCKET],
    },
    "AuditEventsPage": {"audit_events": [AUDIT_EVENT], "next_page_token": "MjAyNi0xMi0wMlQ"},
    "MeView": {
        "subject": "desk-1",
        "role": "front_desk",
        "organization_id": ORG,
        "location_ids": [LOCATION],
        "patient_id": None,
    },
}
"""An example answer per response schema: the OpenAPI document shows it on every operation
answering that schema, unless the operation gives its own."""

HOURS = {"location_id": LOCATION, "weekday": 0, "start": "08:00", "end": "16:00"}
REQUESTS: dict[str, Any] = {
    "HoldRequest": {
        "appointment_type_id": TYPE,
        "location_id": LOCATION,
        "start": "2026-12-07T07:00:00Z",
        "preferred_resources": {"physician": PROVIDER},
    },
    "BookingRequest": {
        "appointment_type_id": TYPE,
        "location_id": LOCATION,
        "patient_id": PATIENT,
        "local_start": "2026-12-07T08:00:00",
        "note": "prefers the ground floor",
    },
    "RescheduleRequest": {"start": "2026-12-08T09:30:00Z"},
    "ReasonRequest": {"reason": "the patient is unwell"},
    "EmptyRequest": {},
    "RegisterPatientRequest": {
        "given_name": "Ana",
        "family_name": "García",
        "birth_date": "1987-04-12",
        "gender": "female",
        "contacts": [{"system": "email", "value": "ana@example.org", "use": "home"}],
        "language": "es",
        "consent_email": True,
        "identifiers": [{"system": "urn:oid:1.2.276.0.76.4.8", "value": "MRN-004711"}],
    },
    "UpdatePatientRequest": {"contacts": [{"system": "phone", "value": "+4915112345678"}]},
    "PreferencesRequest": {"preferred_channel": "sms", "consent_sms": True},
    "JoinWaitlistRequest": {
        "appointment_type_id": TYPE,
        "location_ids": [LOCATION],
        "earliest": "2026-12-03",
        "latest": "2026-12-18",
        "times_of_day": ["morning"],
        "weekdays": [1, 3],
    },
    "RegisterLocationRequest": {
        "name": "Berlin Mitte",
        "time_zone": "Europe/Berlin",
        "address": BERLIN,
    },
    "UpdateLocationRequest": {"name": "Berlin Mitte (Torstraße)"},
    "RetireRequest": {"reason": "the practice moved"},
    "RegisterResourceRequest": {
        "name": "Dr. Adams",
        "kind": "physician",
        "specialties": ["general-practice"],
        "languages": ["de", "en"],
        "location_ids": [LOCATION],
    },
    "UpdateResourceRequest": {"specialties": ["general-practice", "travel-medicine"]},
    "WeeklyHoursRequest": {"hours": [HOURS, {**HOURS, "weekday": 2, "end": "12:00"}]},
    "ScheduleExceptionRequest": {
        "kind": "leave",
        "start": "2026-12-24T00:00:00+01:00",
        "end": "2026-12-27T00:00:00+01:00",
        "reason": "holiday leave",
    },
    "DefineAppointmentTypeRequest": {
        "name": "General consultation",
        "steps": [
            {
                "name": "visit",
                "duration_minutes": 20,
                "requirements": [
                    {"role": "physician", "category": "provider", "kind": "physician"},
                    {"role": "room", "category": "room", "kind": "exam-room"},
                ],
            }
        ],
        "buffer_after_minutes": 5,
        "cancellation_cutoff_minutes": 1440,
        "reminder_plan": [{"before_minutes": 1440}, {"before_minutes": 120, "channel": "sms"}],
    },
    "UpdateAppointmentTypeRequest": {"preparation": "Bring your insurance card."},
}
"""An example body per request schema."""

SLOT: dict[str, Any] = {
    "start": "2026-12-07T08:00:00Z",
    "end": "2026-12-07T08:20:00Z",
    "local_start": "2026-12-07T09:00:00+01:00",
    "local_end": "2026-12-07T09:20:00+01:00",
    "time_zone": "Europe/Berlin",
    "location_id": LOCATION,
    "resources": {"doctor": PROVIDER, "room": ROOM},
    "resource_names": {"doctor": "Dr Lena Weber", "room": "Exam room 1"},
    "seats_left": None,
}

OPERATIONS: dict[str, Any] = {
    "GET /v1": {
        "name": "Clinic scheduling API",
        "version": "v1",
        "openapi": "/openapi.json",
        "docs": "/docs",
        "token_issuer": "https://login.example-hospital.org/realms/clinic",
        "audience": "clinic-gateway",
    },
    "GET /v1/slots": {"slots": [SLOT], "next_page_token": "c2xvdHM6NTA"},
    "GET /v1/slots/next-available": {"by_location": {LOCATION: SLOT}, "earliest": SLOT},
    "POST /v1/holds": APPOINTMENT | {"status": "pending", "hold_expires_at": HOLD_EXPIRES},
    "POST /v1/appointments/{appointment_id}/cancel": APPOINTMENT
    | {
        "status": "cancelled",
        "cancellation": {
            "by": "patient",
            "reason": "feeling better",
            "at": "2026-12-03T10:02:11Z",
        },
    },
}
"""Examples for one operation, where the schema's example (``RESPONSES``) does not say it
best; routes made in a loop add theirs."""
