"""Builds booking's integration events for availability tests (availability never imports
booking: it only knows the contracts in clinic.events)."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any
from zoneinfo import ZoneInfo

from clinic.events import Envelope, EventPayload
from clinic.events import appointments as appt
from clinic.events import reference as ref
from clinic.events import resource_days as days
from clinic.events import schedules as sched

BERLIN = "Europe/Berlin"


def local(day: dt.date, hour: int, minute: int = 0, tz: str = BERLIN) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), ZoneInfo(tz)).astimezone(dt.UTC)


class Events:
    """Each aggregate gets its own version counter, as booking's aggregates do."""

    def __init__(self, organization_id: uuid.UUID | None = None) -> None:
        self.org = organization_id or uuid.uuid4()
        self.versions: dict[uuid.UUID, itertools.count[int]] = {}
        self.schedule_ids: dict[uuid.UUID, uuid.UUID] = {}
        self.now: dt.datetime | None = None
        """When the next events happened (None: the wall clock)."""

    def wrap(self, aggregate_id: uuid.UUID, payload: EventPayload) -> Envelope:
        version = next(self.versions.setdefault(aggregate_id, itertools.count(1)))
        return Envelope.wrap(
            payload,
            event_id=uuid.uuid4(),
            aggregate_id=aggregate_id,
            aggregate_version=version,
            occurred_at=self.now or dt.datetime.now(dt.UTC),
            organization_id=self.org,
        )

    def location(self, tz: str = BERLIN) -> tuple[uuid.UUID, Envelope]:
        lid = uuid.uuid4()
        return lid, self.wrap(lid, ref.LocationRegistered(location_id=lid, name="L", time_zone=tz))

    def resource(
        self,
        location_id: uuid.UUID,
        category: str = "provider",
        kind: str = "physician",
        specialties: tuple[str, ...] = ("gp",),
        tz: str = BERLIN,
    ) -> tuple[uuid.UUID, Envelope]:
        rid = uuid.uuid4()
        return rid, self.wrap(
            rid,
            ref.ResourceRegistered(
                resource_id=rid,
                category=category,
                name=f"{kind}-{rid.hex[:4]}",
                kind=kind,
                specialties=specialties,
                location_ids=(location_id,),
                time_zone=tz,
            ),
        )

    def hours(
        self,
        resource_id: uuid.UUID,
        location_id: uuid.UUID,
        start: str = "09:00",
        end: str = "12:00",
        weekdays: range = range(7),
    ) -> Envelope:
        schedule = self.schedule_ids.setdefault(resource_id, uuid.uuid4())
        return self.wrap(
            schedule,
            sched.WeeklyHoursSet(
                resource_id=resource_id,
                hours=tuple(
                    sched.WeeklyHoursSpec(
                        location_id=location_id,
                        weekday=d,
                        start=dt.time.fromisoformat(start),
                        end=dt.time.fromisoformat(end),
                    )
                    for d in weekdays
                ),
            ),
        )

    def exception(
        self,
        resource_id: uuid.UUID,
        kind: str,
        start: dt.datetime,
        end: dt.datetime,
        location_id: uuid.UUID | None = None,
    ) -> Envelope:
        schedule = self.schedule_ids.setdefault(resource_id, uuid.uuid4())
        return self.wrap(
            schedule,
            sched.ScheduleExceptionAdded(
                resource_id=resource_id,
                exception_id=uuid.uuid4(),
                kind=kind,
                start=start,
                end=end,
                location_id=location_id,
            ),
        )

    def appointment_type(
        self,
        requirements: list[dict[str, Any]],
        minutes: int = 30,
        seats: int = 1,
        buffer_after: int = 0,
        notice: int = 0,
        steps: list[dict[str, Any]] | None = None,
    ) -> tuple[uuid.UUID, Envelope]:
        tid = uuid.uuid4()
        step_specs = steps or [
            {
                "name": "visit",
                "offset_minutes": 0,
                "duration_minutes": minutes,
                "requirements": requirements,
            }
        ]
        return tid, self.wrap(
            tid,
            ref.AppointmentTypeDefined(
                appointment_type_id=tid,
                name="T",
                steps=tuple(
                    ref.StepSpec(
                        **{
                            **s,
                            "requirements": tuple(
                                ref.RequirementSpec(**r) for r in s["requirements"]
                            ),
                        }
                    )
                    for s in step_specs
                ),
                buffer_before_minutes=0,
                buffer_after_minutes=buffer_after,
                seats=seats,
                minimum_notice_minutes=notice,
                maximum_horizon_days=365,
                cancellation_cutoff_minutes=0,
                patient_bookable=True,
            ),
        )

    def day_id(self, resource_id: uuid.UUID, day: dt.date) -> uuid.UUID:
        return uuid.uuid5(resource_id, day.isoformat())

    def claim(
        self,
        resource_id: uuid.UUID,
        day: dt.date,
        start: dt.datetime,
        minutes: int,
        appointment_id: uuid.UUID | None = None,
        role: str = "physician",
        hold_expires_at: dt.datetime | None = None,
        buffer_after: int = 0,
        session: str | None = None,
        capacity: int = 1,
    ) -> tuple[uuid.UUID, Envelope]:
        aid = appointment_id or uuid.uuid4()
        end = start + dt.timedelta(minutes=minutes)
        return aid, self.wrap(
            self.day_id(resource_id, day),
            days.TimeClaimed(
                resource_id=resource_id,
                local_date=day,
                appointment_id=aid,
                role=role,
                start=start,
                end=end,
                blocked_from=start,
                blocked_until=end + dt.timedelta(minutes=buffer_after),
                session=session,
                capacity=capacity,
                hold_expires_at=hold_expires_at,
            ),
        )

    def release(self, resource_id: uuid.UUID, day: dt.date, appointment_id: uuid.UUID) -> Envelope:
        return self.wrap(
            self.day_id(resource_id, day),
            days.TimeReleased(
                resource_id=resource_id, local_date=day, appointment_id=appointment_id, reason="x"
            ),
        )

    def confirm(self, resource_id: uuid.UUID, day: dt.date, appointment_id: uuid.UUID) -> Envelope:
        return self.wrap(
            self.day_id(resource_id, day),
            days.ClaimConfirmed(
                resource_id=resource_id, local_date=day, appointment_id=appointment_id
            ),
        )

    # ------------------------------------------------------------------ appointments

    def booked(
        self,
        appointment_id: uuid.UUID,
        location_id: uuid.UUID,
        type_id: uuid.UUID,
        resource_id: uuid.UUID,
        start: dt.datetime,
        minutes: int,
        hold_expires_at: dt.datetime | None = None,
        patient_id: uuid.UUID | None = None,
        room: uuid.UUID | None = None,
    ) -> Envelope:
        """``Appointment.Held`` (with an expiry) or ``Appointment.Booked`` (with ``room``
        too, if given)."""
        time = self._time(
            appointment_id, location_id, type_id, resource_id, start, minutes, patient_id, room
        )
        if hold_expires_at is not None:
            return self.wrap(
                appointment_id, appt.AppointmentHeld(**time, expires_at=hold_expires_at)
            )
        return self.wrap(appointment_id, appt.AppointmentBooked(**time))

    def confirmed(self, held: Envelope) -> Envelope:
        payload = held.payload_as(appt.AppointmentHeld).model_dump(exclude={"expires_at"})
        return self.wrap(held.aggregate_id, appt.AppointmentBooked(**payload, from_hold=True))

    def rescheduled(
        self, booked: Envelope, resource_id: uuid.UUID, start: dt.datetime, minutes: int
    ) -> Envelope:
        before = booked.payload
        time = self._time(
            booked.aggregate_id,
            uuid.UUID(before["location_id"]),
            uuid.UUID(before["appointment_type_id"]),
            resource_id,
            start,
            minutes,
            uuid.UUID(before["patient_id"]),
        )
        return self.wrap(
            booked.aggregate_id,
            appt.AppointmentRescheduled(
                **time,
                previous_start=dt.datetime.fromisoformat(before["start"]),
                previous_end=dt.datetime.fromisoformat(before["end"]),
            ),
        )

    def cancelled(self, appointment_id: uuid.UUID, by: str = "clinic") -> Envelope:
        return self.wrap(
            appointment_id,
            appt.AppointmentCancelled(
                appointment_id=appointment_id,
                cancelled_by=appt.CancelledBy(by),
                reason="x",
            ),
        )

    def expired(self, held: Envelope) -> Envelope:
        payload = held.payload_as(appt.AppointmentHeld)
        return self.wrap(
            held.aggregate_id,
            appt.AppointmentHoldExpired(
                **payload.model_dump(exclude={"expires_at"}), expired_at=payload.expires_at
            ),
        )

    def status(self, appointment_id: uuid.UUID, status: str, previous: str) -> Envelope:
        return self.wrap(
            appointment_id,
            appt.AppointmentStatusChanged(
                appointment_id=appointment_id,
                status=appt.AppointmentStatus(status),
                previous_status=appt.AppointmentStatus(previous),
            ),
        )

    def attendance_confirmed(self, appointment_id: uuid.UUID, by: str = "patient") -> Envelope:
        """The patient confirmed they will come, now (``self.now``)."""
        return self.wrap(
            appointment_id,
            appt.AppointmentAttendanceConfirmed(
                appointment_id=appointment_id,
                confirmed_at=self.now or dt.datetime.now(dt.UTC),
                confirmed_by=by,
            ),
        )

    def _time(
        self,
        appointment_id: uuid.UUID,
        location_id: uuid.UUID,
        type_id: uuid.UUID,
        resource_id: uuid.UUID,
        start: dt.datetime,
        minutes: int,
        patient_id: uuid.UUID | None,
        room: uuid.UUID | None = None,
    ) -> dict[str, Any]:
        end = start + dt.timedelta(minutes=minutes)
        rooms = (
            (
                appt.Participant(
                    resource_id=room, resource_kind="room", role="room", start=start, end=end
                ),
            )
            if room
            else ()
        )
        return {
            "appointment_id": appointment_id,
            "location_id": location_id,
            "appointment_type_id": type_id,
            "patient_id": patient_id or uuid.UUID(int=7),
            "start": start,
            "end": end,
            "participants": (
                appt.Participant(
                    resource_id=resource_id,
                    resource_kind="provider",
                    role="physician",
                    start=start,
                    end=end,
                ),
                *rooms,
            ),
        }
