"""Booking's events for notification's tests: an organisation with a location, a type with a
reminder plan and texts, patients, and appointments that are held, booked, confirmed, moved,
cancelled or attended, each aggregate with its own versions as booking numbers them."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from typing import Any

from clinic.events import Envelope, EventPayload
from clinic.events import appointments as appt
from clinic.events import patients as pat
from clinic.events import reference as ref
from clinic.events import waitlist as wl

MONDAY = dt.datetime(2027, 3, 22, 8, tzinfo=dt.UTC)
START = dt.datetime(2027, 3, 12, 9, tzinfo=dt.UTC)  # 10:00 in Berlin
NOW = START - dt.timedelta(days=6)


class History:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.org = uuid.uuid4()
        self.versions: dict[uuid.UUID, itertools.count[int]] = {}
        self.events: list[Envelope] = []
        self.location = uuid.uuid4()
        self.kind = uuid.uuid4()
        self.doctor = uuid.uuid4()
        self.patients: list[uuid.UUID] = []
        self.waiting: list[uuid.UUID] = []
        self.records: dict[uuid.UUID, pat.PatientRecord] = {}
        self.appointments: dict[
            uuid.UUID, tuple[appt.AppointmentBooked | appt.AppointmentHeld, str]
        ] = {}

    def wrap(self, aggregate_id: uuid.UUID, payload: EventPayload) -> Envelope:
        version = next(self.versions.setdefault(aggregate_id, itertools.count(1)))
        envelope = Envelope.wrap(
            payload,
            event_id=uuid.uuid4(),
            aggregate_id=aggregate_id,
            aggregate_version=version,
            occurred_at=MONDAY - dt.timedelta(days=3),
            organization_id=self.org,
        )
        self.events.append(envelope)
        return envelope

    def reference(self) -> None:
        self.wrap(self.org, ref.OrganizationRegistered(organization_id=self.org, name="Charité"))
        self.wrap(
            self.location,
            ref.LocationRegistered(
                location_id=self.location,
                name="Mitte",
                time_zone="Europe/Berlin",
                address={"line": "Invalidenstr. 1", "city": "Berlin"},
            ),
        )
        self.wrap(self.kind, ref.AppointmentTypeDefined(**self.type_fields("Check-up")))

    def type_fields(self, name: str) -> dict[str, Any]:
        return {
            "appointment_type_id": self.kind,
            "name": name,
            "steps": (),
            "buffer_before_minutes": 0,
            "buffer_after_minutes": 0,
            "seats": 1,
            "minimum_notice_minutes": 0,
            "maximum_horizon_days": 90,
            "cancellation_cutoff_minutes": 0,
            "patient_bookable": True,
            "preparation": "Bring your card.",
            "reminder_plan": (
                ref.ReminderSpec(before_minutes=72 * 60, channel="email"),
                ref.ReminderSpec(before_minutes=24 * 60, channel="sms"),
            ),
            "patient_facing": {
                "de": ref.PatientFacingText(name="Vorsorge", preparation="Karte mitbringen."),
                "es": ref.PatientFacingText(name="Revisión"),
            },
        }

    def record(self, n: int, **changes: Any) -> pat.PatientRecord:
        base = pat.PatientRecord(
            given_name=f"Pat{n}\x00",  # text PostgreSQL cannot store arrives now and then
            family_name="Doe",
            birth_date=dt.date(1980, 1, 1 + n % 28),
            gender=pat.AdministrativeGender("unknown"),
            address=None,
            contacts=(pat.ContactPoint(system="email", value=f"p{n}@example.org"),),
            preferred_channel="email",
            language=["en", "de", "es"][n % 3],
            consent=pat.Consent(sms=n % 2 == 0, email=True),
            time_zone="Europe/Berlin",
            identifiers=(),
            merged_into=None,
        )
        return base.model_copy(update=changes)

    def play(self, steps: int) -> list[Envelope]:
        self.reference()
        for n in range(steps):
            self.step(n)
        return self.events

    def step(self, n: int) -> None:
        rng = self.rng
        what = rng.randint(0, 10)
        if what == 0 or not self.patients:
            pid = uuid.uuid4()
            self.patients.append(pid)
            self.records[pid] = self.record(len(self.patients))
            self.wrap(pid, pat.PatientRegistered(patient_id=pid, patient=self.records[pid]))
        elif what == 1:
            pid = rng.choice(self.patients)
            self.records[pid] = self.records[pid].model_copy(
                update={"preferred_channel": "sms", "consent": pat.Consent(sms=True, email=False)}
            )
            self.wrap(pid, pat.PatientPreferencesUpdated(patient_id=pid, patient=self.records[pid]))
        elif what == 2 and len(self.patients) > 1:
            duplicate, survivor = rng.sample(self.patients, 2)
            self.records[duplicate] = self.records[duplicate].model_copy(
                update={"merged_into": survivor}
            )
            self.wrap(
                duplicate,
                pat.PatientMerged(
                    patient_id=duplicate, patient=self.records[duplicate], survivor_id=survivor
                ),
            )
        elif what == 10:
            self.waitlist()
        elif what == 3:
            self.wrap(self.kind, ref.AppointmentTypeUpdated(**self.type_fields(f"Check-up {n}")))
        elif what in (4, 5) or not self.appointments:
            self.book(held=what == 5)
        else:
            self.change(what)

    def waitlist(self) -> None:
        """A patient joins the waitlist, or one waiting leaves it."""
        if self.waiting and self.rng.random() < 0.4:
            entry = self.waiting.pop(self.rng.randrange(len(self.waiting)))
            self.wrap(entry, wl.WaitlistLeft(entry_id=entry, reason="booked", left_at=MONDAY))
            return
        entry = uuid.uuid4()
        self.waiting.append(entry)
        first = MONDAY.date() + dt.timedelta(days=self.rng.randint(0, 5))
        self.wrap(
            entry,
            wl.WaitlistJoined(
                entry_id=entry,
                patient_id=self.rng.choice(self.patients),
                appointment_type_id=self.kind,
                location_ids=(self.location,),
                earliest=first,
                latest=first + dt.timedelta(days=self.rng.randint(0, 10)),
                times_of_day=tuple(self.rng.sample(["morning", "afternoon", "evening"], 1)),
                provider_id=self.rng.choice([None, self.doctor]),
                priority=self.rng.randint(1, 9),
                weekdays=tuple(sorted(self.rng.sample(range(1, 8), self.rng.randint(0, 3)))),
                joined_at=MONDAY - dt.timedelta(days=self.rng.randint(1, 30)),
            ),
        )

    def book(self, held: bool) -> None:
        aid = uuid.uuid4()
        start = MONDAY + dt.timedelta(minutes=30 * self.rng.randint(0, 40))
        end = start + dt.timedelta(minutes=30)
        time = {
            "appointment_id": aid,
            "location_id": self.location,
            "appointment_type_id": self.kind,
            "patient_id": self.rng.choice(self.patients),
            "start": start,
            "end": end,
            "participants": (
                appt.Participant(
                    resource_id=self.doctor,
                    resource_kind="provider",
                    role="physician",
                    start=start,
                    end=end,
                ),
            ),
        }
        made: appt.AppointmentBooked | appt.AppointmentHeld
        if held:
            made = appt.AppointmentHeld(**time, expires_at=start - dt.timedelta(days=1))
        else:
            made = appt.AppointmentBooked(**time)
        self.wrap(aid, made)
        self.appointments[aid] = (made, "pending" if held else "booked")

    def change(self, what: int) -> None:
        aid = self.rng.choice(sorted(self.appointments, key=str))
        made, status = self.appointments[aid]
        time = made.model_dump(exclude={"expires_at", "from_hold"})
        if what == 6 and status == "pending":
            self.wrap(aid, appt.AppointmentBooked(**time, from_hold=True))
            status = "booked"
        elif what == 6 and status == "pending":
            pass
        elif what == 7 and status == "booked":
            later = {
                "start": made.start + dt.timedelta(days=1),
                "end": made.end + dt.timedelta(days=1),
            }
            self.wrap(
                aid,
                appt.AppointmentRescheduled(
                    **(time | later), previous_start=made.start, previous_end=made.end
                ),
            )
        elif what == 8 and status in ("pending", "booked"):
            if status == "pending":
                expired = made.start - dt.timedelta(days=1)
                self.wrap(aid, appt.AppointmentHoldExpired(**time, expired_at=expired))
            else:
                self.wrap(
                    aid,
                    appt.AppointmentCancelled(
                        appointment_id=aid, cancelled_by=appt.CancelledBy("patient"), reason="ill"
                    ),
                )
            status = "cancelled"
        elif what == 9 and status == "booked" and self.rng.random() < 0.5:
            self.wrap(
                aid,
                appt.AppointmentAttendanceConfirmed(
                    appointment_id=aid, confirmed_at=MONDAY, confirmed_by="patient"
                ),
            )
        elif what == 9 and status == "booked":
            self.wrap(
                aid,
                appt.AppointmentStatusChanged(
                    appointment_id=aid,
                    status=appt.AppointmentStatus("fulfilled"),
                    previous_status=appt.AppointmentStatus("booked"),
                ),
            )
            status = "fulfilled"
        self.appointments[aid] = (made, status)


class Clinic(History):
    """A History whose events happen when the test says."""

    def __init__(self) -> None:
        super().__init__(0)
        self.at = NOW

    def wrap(self, aggregate_id: uuid.UUID, payload: Any) -> Envelope:
        envelope = super().wrap(aggregate_id, payload)
        envelope = envelope.model_copy(update={"occurred_at": self.at})
        self.events[-1] = envelope
        return envelope


def time_of(
    aid: uuid.UUID, location: uuid.UUID, kind: uuid.UUID, patient: uuid.UUID, start: dt.datetime
) -> dict[str, Any]:
    return {
        "appointment_id": aid,
        "location_id": location,
        "appointment_type_id": kind,
        "patient_id": patient,
        "start": start,
        "end": start + dt.timedelta(minutes=30),
        "participants": (),
    }
