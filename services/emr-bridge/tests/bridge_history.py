"""Booking's events for the bridge's tests: an organisation with a clinic, a provider, a room
and a device, weekly hours and blocked time, a one-patient type and a group type, patients
with identifiers, and appointments that are held, booked, moved, cancelled, lapse or are
attended, with their claims on the resources' days, each aggregate numbered as booking
numbers it."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid
from dataclasses import dataclass
from typing import Any

from clinic.events import Envelope, EventPayload
from clinic.events import appointments as appt
from clinic.events import patients as pat
from clinic.events import reference as ref
from clinic.events import resource_days as days
from clinic.events import schedules as sch

MONDAY = dt.datetime(2027, 3, 22, 8, tzinfo=dt.UTC)
MRN = "urn:oid:1.2.276.0.76.4.8"


@dataclass
class Booked:
    time: dict[str, Any]
    status: str
    session: str | None


class History:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.org = uuid.uuid4()
        self.versions: dict[uuid.UUID, itertools.count[int]] = {}
        self.events: list[Envelope] = []
        self.location = uuid.uuid4()
        self.kind = uuid.uuid4()
        self.group = uuid.uuid4()
        self.doctor = uuid.uuid4()
        self.room = uuid.uuid4()
        self.device = uuid.uuid4()
        self.patients: list[uuid.UUID] = []
        self.records: dict[uuid.UUID, pat.PatientRecord] = {}
        self.appointments: dict[uuid.UUID, Booked] = {}
        self.blocked: list[uuid.UUID] = []
        self.clock = MONDAY - dt.timedelta(days=30)

    def wrap(self, aggregate_id: uuid.UUID, payload: EventPayload) -> Envelope:
        version = next(self.versions.setdefault(aggregate_id, itertools.count(1)))
        self.clock += dt.timedelta(seconds=self.rng.randint(1, 600))
        envelope = Envelope.wrap(
            payload,
            event_id=uuid.uuid4(),
            aggregate_id=aggregate_id,
            aggregate_version=version,
            occurred_at=self.clock,
            organization_id=self.org,
        )
        self.events.append(envelope)
        return envelope

    def resource(self, rid: uuid.UUID, category: str, name: str, kind: str) -> Any:
        return dict(
            resource_id=rid,
            category=category,
            name=name,
            kind=kind,
            specialties=("cardiology",) if category == "provider" else (),
            location_ids=(self.location,),
            time_zone="Europe/Berlin",
        )

    def type_fields(self, type_id: uuid.UUID, name: str, seats: int) -> dict[str, Any]:
        return dict(
            appointment_type_id=type_id,
            name=name,
            steps=(),
            buffer_before_minutes=0,
            buffer_after_minutes=5,
            seats=seats,
            minimum_notice_minutes=0,
            maximum_horizon_days=90,
            cancellation_cutoff_minutes=0,
            patient_bookable=True,
            preparation="Bring your card.",
            specialty="cardiology",
        )

    def reference(self) -> None:
        self.wrap(self.org, ref.OrganizationRegistered(organization_id=self.org, name="Charité"))
        self.wrap(
            self.location,
            ref.LocationRegistered(
                location_id=self.location,
                name="Mitte",
                time_zone="Europe/Berlin",
                address={"line": "Invalidenstr. 1", "city": "Berlin", "postal_code": "10115"},
            ),
        )
        for rid, category, name, kind in (
            (self.doctor, "provider", "Dr. Adler", "physician"),
            (self.room, "room", "Room 3", "exam-room"),
            (self.device, "device", "ECG 1", "ecg"),
        ):
            self.wrap(rid, ref.ResourceRegistered(**self.resource(rid, category, name, kind)))
        self.wrap(
            self.kind, ref.AppointmentTypeDefined(**self.type_fields(self.kind, "Check-up", 1))
        )
        self.wrap(
            self.group, ref.AppointmentTypeDefined(**self.type_fields(self.group, "Class", 4))
        )
        hours = tuple(
            sch.WeeklyHoursSpec(
                location_id=self.location, weekday=d, start=dt.time(8), end=dt.time(16)
            )
            for d in range(5)
        )
        self.wrap(
            self.schedule(self.doctor), sch.WeeklyHoursSet(resource_id=self.doctor, hours=hours)
        )

    @staticmethod
    def schedule(rid: uuid.UUID) -> uuid.UUID:
        return uuid.uuid5(rid, "schedule")

    def record(self, n: int, **changes: Any) -> pat.PatientRecord:
        base = pat.PatientRecord(
            given_name=f"Pat{n}",
            family_name=["Doe", "Ruiz", "Müller"][n % 3],
            birth_date=dt.date(1980, 1, 1 + n % 28),
            gender=pat.AdministrativeGender("female"),
            address=None,
            contacts=(pat.ContactPoint(system="email", value=f"p{n}@example.org"),),
            preferred_channel="email",
            language=["en", "de", "es"][n % 3],
            consent=pat.Consent(email=True),
            time_zone="Europe/Berlin",
            identifiers=(pat.Identifier(system=MRN, value=f"MRN-{n}"),),
            merged_into=None,
        )
        return base.model_copy(update=changes)

    def register(self) -> uuid.UUID:
        pid = uuid.uuid4()
        self.patients.append(pid)
        self.records[pid] = self.record(len(self.patients))
        self.wrap(pid, pat.PatientRegistered(patient_id=pid, patient=self.records[pid]))
        return pid

    def play(self, steps: int) -> list[Envelope]:
        self.reference()
        for n in range(steps):
            self.step(n)
        return self.events

    def step(self, n: int) -> None:
        what = self.rng.randint(0, 11)
        if what == 0 or not self.patients:
            self.register()
        elif what == 1:
            pid = self.rng.choice(self.patients)
            self.records[pid] = self.records[pid].model_copy(update={"family_name": f"Neu{n}"})
            self.wrap(
                pid,
                pat.PatientDetailsUpdated(
                    patient_id=pid, patient=self.records[pid], changed=("family_name",)
                ),
            )
        elif what == 2:
            self.wrap(
                self.kind,
                ref.AppointmentTypeUpdated(**self.type_fields(self.kind, f"Check-up {n}", 1)),
            )
        elif what == 3:
            self.block()
        elif what in (4, 5, 10) or not self.appointments:
            self.book(held=what == 5, group=what == 10)
        else:
            self.change(what)

    def block(self) -> None:
        if self.blocked and self.rng.random() < 0.4:
            gone = self.blocked.pop(0)
            self.wrap(
                self.schedule(self.doctor),
                sch.ScheduleExceptionRemoved(resource_id=self.doctor, exception_id=gone),
            )
            return
        eid = uuid.uuid4()
        self.blocked.append(eid)
        start = MONDAY + dt.timedelta(hours=self.rng.randint(0, 100))
        self.wrap(
            self.schedule(self.doctor),
            sch.ScheduleExceptionAdded(
                resource_id=self.doctor,
                exception_id=eid,
                kind=self.rng.choice(["blocked", "leave", "extra"]),
                start=start,
                end=start + dt.timedelta(hours=2),
            ),
        )

    def day(self, rid: uuid.UUID, start: dt.datetime) -> uuid.UUID:
        return uuid.uuid5(rid, start.date().isoformat())

    def claim(self, aid: uuid.UUID, booked: Booked, held: bool) -> None:
        time = booked.time
        for p in time["participants"]:
            self.wrap(
                self.day(p.resource_id, p.start),
                days.TimeClaimed(
                    resource_id=p.resource_id,
                    local_date=p.start.date(),
                    appointment_id=aid,
                    role=p.role,
                    start=p.start,
                    end=p.end,
                    blocked_from=p.start,
                    blocked_until=p.end + dt.timedelta(minutes=5),
                    session=booked.session,
                    capacity=4 if booked.session else 1,
                    overbooked=self.rng.random() < 0.1,
                    hold_expires_at=p.start - dt.timedelta(days=1) if held else None,
                ),
            )

    def claims(self, aid: uuid.UUID, booked: Booked, event: type[days._ResourceDayEvent]) -> None:
        for p in booked.time["participants"]:
            extra = {"reason": "cancelled"} if event is days.TimeReleased else {}
            self.wrap(
                self.day(p.resource_id, p.start),
                event(
                    resource_id=p.resource_id,
                    local_date=p.start.date(),
                    appointment_id=aid,
                    **extra,
                ),
            )

    def book(self, held: bool, group: bool) -> None:
        aid = uuid.uuid4()
        start = MONDAY + dt.timedelta(minutes=30 * self.rng.randint(0, 40))
        end = start + dt.timedelta(minutes=30)
        resources = [(self.doctor, "provider", "physician"), (self.room, "room", "room")]
        if self.rng.random() < 0.3:
            resources.append((self.device, "device", "ecg"))
        time = {
            "appointment_id": aid,
            "location_id": self.location,
            "appointment_type_id": self.group if group else self.kind,
            "patient_id": self.rng.choice(self.patients),
            "start": start,
            "end": end,
            "participants": tuple(
                appt.Participant(resource_id=r, resource_kind=k, role=role, start=start, end=end)
                for r, k, role in resources
            ),
        }
        booked = Booked(
            time, "pending" if held else "booked", f"class-{start.isoformat()}" if group else None
        )
        if held:
            self.wrap(aid, appt.AppointmentHeld(**time, expires_at=start - dt.timedelta(days=1)))
        else:
            self.wrap(aid, appt.AppointmentBooked(**time))
        self.claim(aid, booked, held)
        self.appointments[aid] = booked

    def change(self, what: int) -> None:
        aid = self.rng.choice(sorted(self.appointments, key=str))
        booked = self.appointments[aid]
        time = booked.time
        if what == 6 and booked.status == "pending":
            self.wrap(aid, appt.AppointmentBooked(**time, from_hold=True))
            self.claims(aid, booked, days.ClaimConfirmed)
            booked.status = "booked"
        elif what == 7 and booked.status == "booked" and booked.session is None:
            self.claims(aid, booked, days.TimeReleased)
            shift = dt.timedelta(days=1)
            moved = {
                **time,
                "start": time["start"] + shift,
                "end": time["end"] + shift,
                "participants": tuple(
                    p.model_copy(update={"start": p.start + shift, "end": p.end + shift})
                    for p in time["participants"]
                ),
            }
            self.wrap(
                aid,
                appt.AppointmentRescheduled(
                    **moved, previous_start=time["start"], previous_end=time["end"]
                ),
            )
            booked.time = moved
            self.claim(aid, booked, held=False)
        elif what == 8 and booked.status in ("pending", "booked"):
            if booked.status == "pending":
                self.wrap(
                    aid,
                    appt.AppointmentHoldExpired(
                        **time, expired_at=time["start"] - dt.timedelta(days=1)
                    ),
                )
            else:
                self.wrap(
                    aid,
                    appt.AppointmentCancelled(
                        appointment_id=aid, cancelled_by=appt.CancelledBy("patient"), reason="ill"
                    ),
                )
            self.claims(aid, booked, days.TimeReleased)
            booked.status = "cancelled"
        elif what == 9 and booked.status == "booked":
            self.wrap(
                aid,
                appt.AppointmentAttendanceConfirmed(
                    appointment_id=aid, confirmed_at=MONDAY, confirmed_by="patient"
                ),
            )
        elif what == 11 and booked.status == "booked":
            status = self.rng.choice(["checked-in", "noshow", "fulfilled"])
            self.wrap(
                aid,
                appt.AppointmentStatusChanged(
                    appointment_id=aid,
                    status=appt.AppointmentStatus(status),
                    previous_status=appt.AppointmentStatus("booked"),
                ),
            )
            booked.status = status
