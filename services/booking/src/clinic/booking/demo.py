"""The demo hospital group that ``make up`` loads: 3 locations in 2 time zones, 20 providers,
rooms, devices, 6 appointment types (a group session and a two-step visit among them) and a
few patients. Every command uses a fixed request id, so loading twice changes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from clinic.booking.application import Bookings
from clinic.booking.commands import (
    Command,
    DefineAppointmentType,
    RegisterLocation,
    RegisterOrganization,
    RegisterPatient,
    RegisterResource,
    SetWeeklyHours,
)
from clinic.booking.domain.values import (
    Category,
    Contact,
    PatientText,
    Reminder,
    Requirement,
    Step,
    WeeklyHours,
)

LOCATIONS = [
    ("Berlin Mitte", "Europe/Berlin", {"street": "Invalidenstr. 1", "city": "Berlin"}),
    ("Hamburg Altona", "Europe/Berlin", {"street": "Max-Brauer-Allee 10", "city": "Hamburg"}),
    ("New York Midtown", "America/New_York", {"street": "350 5th Ave", "city": "New York"}),
]
# (specialty, how many per location)
PROVIDERS = [
    ("general-practice", 2),
    ("dermatology", 1),
    ("cardiology", 1),
    ("radiology", 1),
    ("nursing", 2),
]
# The languages each location's providers see patients in, in turn (most fluent first).
SPOKEN = {
    "Europe/Berlin": [("de", "en"), ("de", "tr"), ("de", "en", "es"), ("de",), ("de", "ar", "en")],
    "America/New_York": [("en", "es"), ("en",), ("en", "zh"), ("en", "es", "pt")],
}
SURNAMES = [
    "Adams",
    "Becker",
    "Chen",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Hoffmann",
    "Ito",
    "Jansen",
    "Kowalski",
    "Lopez",
    "Meyer",
    "Nakamura",
    "Okafor",
    "Patel",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ulrich",
]


def _id(app: Bookings, command: Command) -> UUID:
    return UUID(app.handle(command).body["id"])


def _hours(
    location_id: UUID, start: str, end: str, days: range = range(5)
) -> tuple[WeeklyHours, ...]:
    return tuple(
        WeeklyHours(location_id, d, dt.time.fromisoformat(start), dt.time.fromisoformat(end))
        for d in days
    )


def load_demo(app: Bookings) -> dict[str, Any]:
    org = _id(
        app,
        RegisterOrganization(request_id="demo-org", organization_name="Demo Hospital Group"),
    )
    summary: dict[str, Any] = {
        "organization_id": str(org),
        "locations": {},
        "providers": [],
        "appointment_types": {},
        "patients": [],
        "patient_names": {},
    }
    surname = iter(SURNAMES)
    for index, (name, tz, address) in enumerate(LOCATIONS):
        location = _id(
            app,
            RegisterLocation(
                organization_id=org,
                request_id=f"demo-location-{index}",
                location_name=name,
                address=address,
                time_zone=tz,
            ),
        )
        summary["locations"][name] = str(location)
        n = 0
        for specialty, count in PROVIDERS:
            for _ in range(count):
                n += 1
                if len(summary["providers"]) >= 20:
                    break
                provider = _id(
                    app,
                    RegisterResource(
                        organization_id=org,
                        request_id=f"demo-provider-{index}-{n}",
                        category=Category.PROVIDER,
                        resource_name=f"Dr. {next(surname)}"
                        if specialty != "nursing"
                        else f"Nurse {next(surname)}",
                        kind="nurse" if specialty == "nursing" else "physician",
                        specialties=(specialty,),
                        location_ids=(location,),
                        overbooking_allowance=1 if specialty == "general-practice" else 0,
                        languages=SPOKEN[tz][n % len(SPOKEN[tz])],
                    ),
                )
                app.handle(
                    SetWeeklyHours(
                        organization_id=org,
                        request_id=f"demo-provider-hours-{index}-{n}",
                        resource_id=provider,
                        hours=_hours(location, "08:00", "17:00"),
                    )
                )
                summary["providers"].append(str(provider))
        rooms = [
            ("Exam room 1", "exam-room"),
            ("Exam room 2", "exam-room"),
            ("Group room", "group-room"),
        ]
        devices = [("Ultrasound", "ultrasound"), ("ECG", "ecg")]
        for r, (room_name, kind) in enumerate(rooms + devices):
            category = Category.ROOM if (room_name, kind) in rooms else Category.DEVICE
            resource = _id(
                app,
                RegisterResource(
                    organization_id=org,
                    request_id=f"demo-resource-{index}-{r}",
                    category=category,
                    resource_name=room_name,
                    kind=kind,
                    location_ids=(location,),
                ),
            )
            app.handle(
                SetWeeklyHours(
                    organization_id=org,
                    request_id=f"demo-resource-hours-{index}-{r}",
                    resource_id=resource,
                    hours=_hours(location, "07:00", "19:00"),
                )
            )
    room = Requirement("room", Category.ROOM, kind="exam-room")
    types: dict[str, dict[str, Any]] = {
        "General consultation": dict(
            steps=(
                Step(
                    "consult",
                    0,
                    20,
                    (
                        Requirement("physician", Category.PROVIDER, specialty="general-practice"),
                        room,
                    ),
                ),
            ),
            cancellation_cutoff_minutes=120,
            # What notification sends: a reminder by email three days before, by the
            # patient's channel a day and two hours before; texts in German and Spanish.
            reminder_plan=(
                Reminder(3 * 24 * 60, "email"),
                Reminder(24 * 60),
                Reminder(120),
            ),
            patient_facing={
                "de": PatientText(
                    "Allgemeine Sprechstunde", preparation="Bitte Versichertenkarte mitbringen."
                ),
                "es": PatientText("Consulta general", preparation="Traiga su tarjeta sanitaria."),
            },
        ),
        "Dermatology consultation": dict(
            steps=(
                Step(
                    "consult",
                    0,
                    30,
                    (Requirement("physician", Category.PROVIDER, specialty="dermatology"), room),
                ),
            ),
            specialty="dermatology",
            buffer_after_minutes=5,
        ),
        "Ultrasound": dict(
            steps=(
                Step(
                    "scan",
                    0,
                    45,
                    (
                        Requirement("radiologist", Category.PROVIDER, specialty="radiology"),
                        Requirement("scanner", Category.DEVICE, kind="ultrasound"),
                        room,
                    ),
                ),
            ),
            buffer_after_minutes=10,
            preparation="Drink 1 litre of water an hour before.",
        ),
        "Cardiology check (ECG, then cardiologist)": dict(
            steps=(
                Step(
                    "ecg",
                    0,
                    15,
                    (
                        Requirement("nurse", Category.PROVIDER, specialty="nursing"),
                        Requirement("ecg", Category.DEVICE, kind="ecg"),
                    ),
                ),
                Step(
                    "consult",
                    15,
                    20,
                    (Requirement("cardiologist", Category.PROVIDER, specialty="cardiology"),),
                ),
            ),
            specialty="cardiology",
        ),
        "Diabetes education class": dict(
            steps=(
                Step(
                    "class",
                    0,
                    60,
                    (
                        Requirement("room", Category.ROOM, kind="group-room"),
                        Requirement("educator", Category.PROVIDER, specialty="nursing"),
                    ),
                ),
            ),
            seats=8,
        ),
        "Minor surgery": dict(
            steps=(
                Step(
                    "surgery",
                    0,
                    60,
                    (Requirement("surgeon", Category.PROVIDER, specialty="dermatology"), room),
                ),
            ),
            minimum_notice_minutes=24 * 60,
            cancellation_cutoff_minutes=48 * 60,
            patient_bookable=False,
            buffer_before_minutes=15,
            buffer_after_minutes=15,
        ),
    }
    for t, (type_name, spec) in enumerate(types.items()):
        summary["appointment_types"][type_name] = str(
            _id(
                app,
                DefineAppointmentType(
                    organization_id=org, request_id=f"demo-type-{t}", type_name=type_name, **spec
                ),
            )
        )
    # Languages, channels and consents vary, so `make up` shows each path of notification;
    # Katherine gave no consent: her messages are planned as skipped, with the reason.
    people = [
        ("Ada", "Lovelace", "en", "email", True, False),
        ("Grace", "Hopper", "es", "sms", True, True),
        ("Alan", "Turing", "de", "sms", True, True),
        ("Katherine", "Johnson", "en", "email", False, False),
    ]
    for p, (given, family, language, channel, consent_email, consent_sms) in enumerate(people):
        patient = str(
            _id(
                app,
                RegisterPatient(
                    organization_id=org,
                    request_id=f"demo-patient-{p}",
                    given_name=given,
                    family_name=family,
                    birth_date=dt.date(1970 + p, 1 + p, 10),
                    contacts=(
                        Contact("email", f"{given.lower()}@example.org"),
                        Contact("sms", f"+4915550000{p}", "mobile"),
                    ),
                    preferred_channel=channel,
                    language=language,
                    consent_email=consent_email,
                    consent_sms=consent_sms,
                    time_zone="Europe/Berlin",
                ),
            )
        )
        summary["patients"].append(patient)
        summary["patient_names"][patient] = f"{given} {family}"
    return summary
