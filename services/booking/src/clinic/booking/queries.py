"""Reads: what staff and other services ask booking, answered from its own state (the
event store, through the aggregate and reference caches). Nothing here writes."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from uuid import UUID

from clinic.booking import views
from clinic.booking.aggregate_cache import Reader
from clinic.booking.domain.acting import acting_of, trace_id_of
from clinic.booking.domain.appointment import Appointment
from clinic.booking.domain.errors import NotFoundError
from clinic.booking.domain.reference import (
    AppointmentType,
    Location,
    Organization,
    Patient,
    PatientIdentifier,
    Resource,
    patient_identifier_id,
)
from clinic.booking.domain.resource_day import resource_day_id
from clinic.booking.domain.schedule import Schedule, schedule_id
from clinic.booking.domain.timezones import day_bounds, to_utc, zone
from clinic.booking.domain.waitlist import WaitlistEntry

if TYPE_CHECKING:
    from clinic.booking.application import Bookings


MAX_MERGE_HOPS = 20
"""A record merged into one merged later again: followed this far to the survivor."""


class Queries:
    def __init__(self, app: Bookings) -> None:
        self.app = app
        self.reader = Reader(app.aggregates, fresh=True)
        self._load = self.reader.load
        self._maybe = self.reader.maybe

    def instant(
        self,
        organization_id: UUID,
        start: dt.datetime | None,
        local_start: dt.datetime | None,
        *,
        location_id: UUID | None = None,
        appointment_id: UUID | None = None,
    ) -> dt.datetime:
        """The instant a request means: ``start`` as given, or ``local_start`` read as
        wall-clock time at the location (of the appointment, when rescheduling)."""
        if start is not None:
            return start.astimezone(dt.UTC)
        assert local_start is not None
        if location_id is None:
            assert appointment_id is not None
            appointment = self._load(Appointment, appointment_id, organization_id, "appointment")
            location_id = appointment.location_id
        # A location's time zone is fixed when it is registered, so the reference cache's
        # copy converts exactly, without a read of the event store per request.
        location = self.app.reference.get(Location, location_id, organization_id, "location")
        return to_utc(local_start, zone(location.time_zone))

    def get_appointment(self, organization_id: UUID, appointment_id: UUID) -> dict[str, Any]:
        appointment = self._load(Appointment, appointment_id, organization_id, "appointment")
        return views.appointment(appointment, self.app.clock())

    def appointment_history(self, organization_id: UUID, appointment_id: UUID) -> dict[str, Any]:
        """Every event of the appointment, in order: what happened, when it was recorded,
        who asked for it where the event says, and the appointment as it stood after it."""
        self._load(Appointment, appointment_id, organization_id, "appointment")
        entries = []
        state: Any = None
        for stored in self.app.events.get(appointment_id):
            state = stored.mutate(state)  # type: ignore[attr-defined]
            name = type(stored).__name__
            metadata = getattr(stored, "metadata", None) or {}
            by = getattr(stored, "cancelled_by", None) or (
                getattr(stored, "booked_by", None) if name in ("Held", "Booked") else None
            )
            if name == "EnteredInError":
                by = "clinic"
            acting = acting_of(metadata)
            if acting is not None:
                by = acting.kind
            entries.append(
                {
                    "version": stored.originator_version,
                    "event": name,
                    "recorded_at": views.utc(stored.timestamp),  # type: ignore[attr-defined]
                    "by": str(by) if by is not None else None,
                    "reason": getattr(stored, "reason", None),
                    "status": str(state.status),
                    "start": views.utc(state.start),
                    "end": views.utc(state.end),
                    "resource_ids": [str(p.resource_id) for p in state.participants],
                    "actor": (
                        {
                            "user_id": acting.user_id,
                            "role": str(acting.role),
                            "channel": acting.channel,
                        }
                        if acting is not None
                        else None
                    ),
                    "correlation_id": metadata.get("correlation_id"),
                    "trace_id": trace_id_of(metadata.get("traceparent")),
                }
            )
        return {"appointment_id": str(appointment_id), "events": entries}

    def get_location(self, organization_id: UUID, location_id: UUID) -> dict[str, Any]:
        return views.location(self._load(Location, location_id, organization_id, "location"))

    def get_resource(self, organization_id: UUID, resource_id: UUID) -> dict[str, Any]:
        return views.resource(self._load(Resource, resource_id, organization_id, "resource"))

    def get_appointment_type(self, organization_id: UUID, type_id: UUID) -> dict[str, Any]:
        return views.appointment_type(
            self._load(AppointmentType, type_id, organization_id, "appointment type")
        )

    def get_patient(self, organization_id: UUID, patient_id: UUID) -> dict[str, Any]:
        return views.patient(self._load(Patient, patient_id, organization_id, "patient"))

    def patient_by_identifier(
        self, organization_id: UUID, system: str, value: str
    ) -> dict[str, Any] | None:
        """The patient an EMR's identifier names (the survivor, when that record was merged),
        or None."""
        claim_id = patient_identifier_id(organization_id, system, value)
        try:
            claim = self._load(PatientIdentifier, claim_id, organization_id, "identifier")
        except NotFoundError:
            return None
        patient = self._load(Patient, claim.patient_id, organization_id, "patient")
        for _ in range(MAX_MERGE_HOPS):
            if patient.merged_into is None:
                break
            patient = self._load(Patient, patient.merged_into, organization_id, "patient")
        return views.patient(patient)

    def get_schedule(self, organization_id: UUID, resource_id: UUID) -> dict[str, Any]:
        self._load(Resource, resource_id, organization_id, "resource")
        return views.schedule(
            self._load(Schedule, schedule_id(resource_id), organization_id, "schedule")
        )

    def get_organization(self, organization_id: UUID) -> dict[str, Any]:
        organization = self._load(Organization, organization_id, organization_id, "organization")
        return {
            "id": str(organization.id),
            "name": organization.name,
            "location_ids": [str(i) for i in organization.location_ids],
            "resource_ids": [str(i) for i in organization.directory],
            "appointment_type_ids": [str(i) for i in organization.appointment_type_ids],
        }

    def get_waitlist_entry(self, organization_id: UUID, entry_id: UUID) -> dict[str, Any]:
        return views.waitlist_entry(
            self._load(WaitlistEntry, entry_id, organization_id, "waitlist entry")
        )

    def resource_day(
        self, organization_id: UUID, resource_id: UUID, local_date: dt.date
    ) -> dict[str, Any]:
        """Who owns each minute of a resource's day, and which event gave it to them."""
        resource = self._load(Resource, resource_id, organization_id, "resource")
        schedule = self._maybe(schedule_id(resource_id))
        now = self.app.clock()
        day_id = resource_day_id(resource_id, local_date)
        tz = zone(resource.time_zone)
        claims: dict[tuple[str, str], dict[str, Any]] = {}
        history = []
        for stored in self.app.events.get(day_id):
            name = type(stored).__name__
            entry = {
                "version": stored.originator_version,
                "event": name,
                "recorded_at": views.utc(stored.timestamp),  # type: ignore[attr-defined]
            }
            if name == "TimeClaimed":
                claim = stored.claim  # type: ignore[attr-defined]
                key = (str(claim.appointment_id), claim.role)
                claims[key] = {
                    "appointment_id": str(claim.appointment_id),
                    "role": claim.role,
                    "start": views.utc(claim.start),
                    "end": views.utc(claim.end),
                    "blocked_from": views.utc(claim.blocked_from),
                    "blocked_until": views.utc(claim.blocked_until),
                    "local_start": claim.start.astimezone(tz).isoformat(),
                    "local_end": claim.end.astimezone(tz).isoformat(),
                    "seats": claim.seats,
                    "session": claim.session,
                    "overbooked": claim.overbooked,
                    "hold_expires_at": views.utc(claim.hold_expires_at),
                    "state": "held" if claim.hold_expires_at else "booked",
                    "claimed_by_event": {"aggregate_id": str(day_id), **entry},
                }
                entry["appointment_id"] = str(claim.appointment_id)
            elif name in ("TimeReleased", "HoldLapsed", "ClaimConfirmed"):
                appointment_id = str(stored.appointment_id)  # type: ignore[attr-defined]
                entry["appointment_id"] = appointment_id
                for key in [k for k in claims if k[0] == appointment_id]:
                    if name == "ClaimConfirmed":
                        claims[key]["hold_expires_at"] = None
                        claims[key]["state"] = "booked"
                    else:
                        del claims[key]
            history.append(entry)
        for claim_view in claims.values():
            expiry = claim_view["hold_expires_at"]
            if expiry and dt.datetime.fromisoformat(expiry) <= now:
                claim_view["state"] = "hold-expired (free)"
        windows = []
        if isinstance(schedule, Schedule):
            for location_id in resource.location_ids:
                location = self._load(Location, location_id, organization_id, "location")
                for window in schedule.windows(local_date, location_id, location.time_zone):
                    windows.append(
                        {
                            "location_id": str(location_id),
                            "start": views.utc(window.start),
                            "end": views.utc(window.end),
                            "local_start": window.start.astimezone(tz).isoformat(),
                            "local_end": window.end.astimezone(tz).isoformat(),
                        }
                    )
        start, end = day_bounds(local_date, tz)
        return {
            "resource_id": str(resource_id),
            "resource_day_id": str(day_id),
            "local_date": local_date.isoformat(),
            "time_zone": resource.time_zone,
            "day_start": views.utc(start),
            "day_end": views.utc(end),
            "working_windows": sorted(windows, key=lambda w: w["start"]),
            "claims": sorted(claims.values(), key=lambda c: c["start"]),
            "history": history,
        }

    def who_owns(
        self, organization_id: UUID, resource_id: UUID, instant: dt.datetime
    ) -> dict[str, Any]:
        """The claim covering one instant of a resource's calendar, with its event."""
        resource = self._load(Resource, resource_id, organization_id, "resource")
        local_date = instant.astimezone(zone(resource.time_zone)).date()
        day = self.resource_day(organization_id, resource_id, local_date)
        at = views.utc(instant)
        owners = [
            c
            for c in day["claims"]
            if c["blocked_from"] <= at < c["blocked_until"]
            and not c["state"].startswith("hold-expired")
        ]
        return {
            "resource_id": str(resource_id),
            "at": at,
            "owners": owners,
            "free": not owners,
            "resource_day_id": day["resource_day_id"],
        }
