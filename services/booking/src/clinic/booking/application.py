"""``Bookings``: the use-case API of the booking service. Load, decide, save, return plain
values. Aggregates never leave this module.

Every command that takes time loads the Appointment and every ResourceDay it touches, lets
the pure planner decide, and saves all of them together with the request's answer in ONE
transaction. A racing writer makes the save fail as a whole (optimistic concurrency on each
aggregate's version); the command then reloads and decides again, a bounded number of
times, before answering 409 with alternative times.

A command first decides on what this process already holds (cached aggregates, cached
reference data), which costs no query: the save's version checks, and the event store's
reference guard (see ``event_store``), refuse it if anything it read has moved on. Only then,
or when the first decision refuses the request, does it read everything fresh and decide
again: the answer a client gets, yes or no, is always decided on current data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder

from clinic.booking.aggregate_cache import AggregateCache, KeyedLocks
from clinic.booking.domain.appointment import Appointment
from clinic.booking.domain.errors import (
    BookingError,
    ConcurrencyExhaustedError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    NotFoundError,
    NotPatientBookableError,
)
from clinic.booking.domain.planning import Candidate, Plan, Visit, check_policy, plan_visit
from clinic.booking.domain.reference import (
    AppointmentType,
    Location,
    Organization,
    Patient,
    Resource,
)
from clinic.booking.domain.request import HandledRequest, handled_request_id
from clinic.booking.domain.resource_day import ResourceDay, resource_day_id
from clinic.booking.domain.schedule import Schedule, schedule_id
from clinic.booking.domain.tenancy import owned
from clinic.booking.domain.timezones import as_utc, day_bounds, to_utc, zone
from clinic.booking.domain.values import (
    Actor,
    Category,
    Contact,
    Requirement,
    ScheduleException,
    Status,
    Step,
    WeeklyHours,
)
from clinic.booking.domain.waitlist import WaitlistEntry
from clinic.booking.event_store import BookingRecorder
from clinic.booking.reference_cache import GUARDED_TYPES, ReferenceCache, event_topics
from clinic.booking.transcodings import register_transcodings

log = logging.getLogger(__name__)

A = TypeVar("A", bound=Aggregate)
PLATFORM = UUID(int=0)
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fingerprint(*parts: Any) -> str:
    """A stable digest of what a request asked for, to spot a request id reused for another."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    """What a command returns: an HTTP-ish status and a JSON-ready body."""

    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass
class CommandStats:
    """Counters the API exposes as metrics (recorded at the application boundary)."""

    conflicts: int = 0
    retries_exhausted: int = 0
    replays: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> None:
        with self.lock:
            self.decisions[name] = self.decisions.get(name, 0) + 1


class Bookings(Application[UUID]):
    """The booking application. ``name`` fixes the event table (``bookings_events``)."""

    name = "Bookings"
    # Commands read aggregates through ``self.aggregates`` (copy-on-write, optimistic or
    # fresh) and reference data through ``self.reference``; the repository itself keeps no
    # cache.
    cache_size: ClassVar[int] = 20000
    DAY_WAIT_SECONDS: ClassVar[float] = 0.5

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock = utc_now,
        max_attempts: int = 5,
        hold_minutes: int = 10,
        alternatives: int = 3,
    ) -> None:
        super().__init__(env)
        self.clock = clock
        self.max_attempts = max_attempts
        self.hold_minutes = hold_minutes
        self.alternatives_wanted = alternatives
        self.stats = CommandStats()
        self.reference = ReferenceCache(self)
        self.aggregates = AggregateCache(self, self.cache_size)
        # Where the event store can guard reference data, commands skip refreshing it.
        self.guarded = isinstance(self.recorder, BookingRecorder)
        if isinstance(self.recorder, BookingRecorder):
            self.recorder.guard(event_topics(GUARDED_TYPES))
        self._fresh: ContextVar[bool] = ContextVar("fresh", default=True)
        self.day_locks = KeyedLocks()
        self._held: ContextVar[list[UUID] | None] = ContextVar("held", default=None)

    def close(self) -> None:
        if isinstance(self.recorder, BookingRecorder):
            self.recorder.close_writer()
        super().close()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_transcodings(transcoder)

    # ------------------------------------------------------------------ loading

    def _load(self, cls: type[A], aggregate_id: UUID, organization_id: UUID, kind: str) -> A:
        """Load an aggregate of this organisation; another tenant's id is simply not found."""
        aggregate = self._maybe(aggregate_id)
        if aggregate is None:
            raise NotFoundError(kind, aggregate_id)
        return owned(aggregate, cls, organization_id, kind, aggregate_id)

    def _maybe(self, aggregate_id: UUID) -> Any | None:
        """A private copy: fresh, or as cached during a command's optimistic first attempt."""
        try:
            return self.aggregates.get(aggregate_id, fresh=self._fresh.get())
        except AggregateNotFoundError:
            return None

    # ------------------------------------------------------------------ idempotency

    def _once(
        self,
        organization_id: UUID,
        request_id: str,
        request_fingerprint: str,
        decide: Callable[[], tuple[Iterable[Aggregate], Answer]],
        on_exhausted: Callable[[], BookingError] | None = None,
    ) -> Answer:
        """Run ``decide`` and save what it changed together with its answer, exactly once per
        request id; retry on a version conflict, a bounded number of times."""
        if not request_id or len(request_id) > 200:
            raise InvalidRequestError("a client request id of 1 to 200 characters is required")
        record_id = handled_request_id(organization_id, request_id)
        # The first attempt decides on cached copies; each further one (at most
        # max_attempts) on fresh reads.
        fresh, attempt = False, 0
        while attempt < self.max_attempts:
            # Resource days this attempt reads are held until its save is done: decisions
            # of this process on one day take turns instead of colliding.
            held: list[UUID] = []
            held_token = self._held.set(held)
            try:
                if fresh or not self.guarded:
                    self.reference.refresh()
                position = self.reference.position
                token = self._fresh.set(fresh)
                # The happy path does not look the request id up: a repeated request either
                # fails to decide (its own earlier effect is in the way) or fails to save (the
                # HandledRequest already exists); only then is the first answer fetched.
                try:
                    aggregates, answer = decide()
                except BookingError:
                    if not fresh:
                        fresh = True  # the refusal may come from stale copies: decide again
                        continue
                    previous = self._previous_answer(record_id, request_id, request_fingerprint)
                    if previous is not None:
                        return previous
                    raise
                finally:
                    self._fresh.reset(token)
                record = HandledRequest(
                    organization_id=organization_id,
                    request_id=request_id,
                    fingerprint=request_fingerprint,
                    status=answer.status,
                    answer=answer.body,
                )
                try:
                    self._save([*aggregates, record], position if self.guarded else None)
                except IntegrityError:
                    previous = self._previous_answer(record_id, request_id, request_fingerprint)
                    if previous is not None:
                        return previous
                    if fresh:
                        self.stats.conflicts += 1
                        attempt += 1
                        log.info("version conflict, deciding again", extra={"attempt": attempt})
                    fresh = True
                    continue
                # Resource days are what the next decisions read; a new appointment is
                # cached only when a later command loads it (most never come back soon,
                # and caching each one would only churn memory).
                for aggregate in aggregates:
                    if isinstance(aggregate, ResourceDay) or aggregate.version > 1:
                        self.aggregates.remember(aggregate)
                return answer
            finally:
                self._held.reset(held_token)
                self.day_locks.release(held)

        self.stats.retries_exhausted += 1
        if on_exhausted is not None:
            raise on_exhausted()
        raise ConcurrencyExhaustedError(
            f"gave up after {self.max_attempts} concurrent changes; try again"
        )

    def _save(self, aggregates: list[Aggregate], decided_at: int | None) -> None:
        """Record the aggregates' pending events in one transaction (what ``Application.save``
        does, without its general-purpose type checks)."""
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        self.events.put(events, decided_at=decided_at)

    def _previous_answer(
        self, record_id: UUID, request_id: str, request_fingerprint: str
    ) -> Answer | None:
        previous = self._maybe(record_id)
        if not isinstance(previous, HandledRequest):
            return None
        if previous.fingerprint != request_fingerprint:
            raise IdempotencyKeyReusedError(
                f"request id {request_id!r} was used for a different request",
                request_id=request_id,
            )
        self.stats.replays += 1
        return Answer(previous.status, previous.answer, replayed=True)

    # ------------------------------------------------------------------ reference data

    def register_organization(self, request_id: str, name: str) -> Answer:
        def decide() -> tuple[list[Aggregate], Answer]:
            organization = Organization(name=name)
            return [organization], Answer(201, {"id": str(organization.id), "name": name})

        # Registering a tenant is scoped to the platform, not to a tenant.
        return self._once(PLATFORM, request_id, fingerprint("org", name), decide)

    def register_location(
        self,
        organization_id: UUID,
        request_id: str,
        *,
        name: str,
        address: dict[str, Any],
        time_zone: str,
    ) -> Answer:
        zone(time_zone)

        def decide() -> tuple[list[Aggregate], Answer]:
            organization = self._load(
                Organization, organization_id, organization_id, "organization"
            )
            location = Location(
                organization_id=organization_id, name=name, address=address, time_zone=time_zone
            )
            organization.add_location(location.id)
            return [location, organization], Answer(201, self.location_view(location))

        return self._once(
            organization_id, request_id, fingerprint("location", name, address, time_zone), decide
        )

    def register_resource(
        self,
        organization_id: UUID,
        request_id: str,
        *,
        category: Category,
        name: str,
        kind: str,
        specialties: tuple[str, ...],
        location_ids: tuple[UUID, ...],
        overbooking_allowance: int = 0,
    ) -> Answer:
        if not location_ids:
            raise InvalidRequestError("a resource works at one location at least")
        if overbooking_allowance and category != Category.PROVIDER:
            raise InvalidRequestError("only providers have an overbooking allowance")

        def decide() -> tuple[list[Aggregate], Answer]:
            organization = self._load(
                Organization, organization_id, organization_id, "organization"
            )
            locations = [
                self._load(Location, lid, organization_id, "location") for lid in location_ids
            ]
            resource = Resource(
                organization_id=organization_id,
                category=category,
                name=name,
                kind=kind,
                specialties=tuple(specialties),
                location_ids=tuple(location_ids),
                time_zone=locations[0].time_zone,
                overbooking_allowance=overbooking_allowance,
            )
            schedule = Schedule(resource_id=resource.id, organization_id=organization_id)
            organization.list_resource(resource.directory_entry())
            return [resource, schedule, organization], Answer(201, self.resource_view(resource))

        return self._once(
            organization_id,
            request_id,
            fingerprint(
                "resource", category, name, kind, specialties, location_ids, overbooking_allowance
            ),
            decide,
        )

    def set_overbooking_allowance(
        self, organization_id: UUID, request_id: str, resource_id: UUID, allowance: int
    ) -> Answer:
        def decide() -> tuple[list[Aggregate], Answer]:
            resource = self._load(Resource, resource_id, organization_id, "resource")
            resource.set_overbooking_allowance(allowance)
            return [resource], Answer(200, self.resource_view(resource))

        return self._once(
            organization_id, request_id, fingerprint("overbook", resource_id, allowance), decide
        )

    def define_appointment_type(
        self,
        organization_id: UUID,
        request_id: str,
        *,
        name: str,
        steps: tuple[Step, ...],
        buffer_before_minutes: int = 0,
        buffer_after_minutes: int = 0,
        seats: int = 1,
        minimum_notice_minutes: int = 0,
        maximum_horizon_days: int = 365,
        cancellation_cutoff_minutes: int = 0,
        patient_bookable: bool = True,
        preparation: str = "",
        specialty: str | None = None,
    ) -> Answer:
        if not steps or any(not s.requirements for s in steps):
            raise InvalidRequestError("an appointment type needs steps, each needing a resource")
        if any(s.duration_minutes <= 0 or s.offset_minutes < 0 for s in steps):
            raise InvalidRequestError("steps need a positive duration and a non-negative offset")

        def decide() -> tuple[list[Aggregate], Answer]:
            organization = self._load(
                Organization, organization_id, organization_id, "organization"
            )
            for step in steps:
                for requirement in step.requirements:
                    if requirement.resource_id is not None:
                        self._load(Resource, requirement.resource_id, organization_id, "resource")
            kind = AppointmentType(
                organization_id=organization_id,
                name=name,
                steps=tuple(steps),
                buffer_before_minutes=buffer_before_minutes,
                buffer_after_minutes=buffer_after_minutes,
                seats=seats,
                minimum_notice_minutes=minimum_notice_minutes,
                maximum_horizon_days=maximum_horizon_days,
                cancellation_cutoff_minutes=cancellation_cutoff_minutes,
                patient_bookable=patient_bookable,
                preparation=preparation,
                specialty=specialty,
            )
            organization.add_appointment_type(kind.id)
            return [kind, organization], Answer(201, self.appointment_type_view(kind))

        return self._once(
            organization_id,
            request_id,
            fingerprint(
                "type",
                name,
                steps,
                buffer_before_minutes,
                buffer_after_minutes,
                seats,
                minimum_notice_minutes,
                maximum_horizon_days,
                cancellation_cutoff_minutes,
                patient_bookable,
                preparation,
                specialty,
            ),
            decide,
        )

    def register_patient(
        self,
        organization_id: UUID,
        request_id: str,
        *,
        given_name: str,
        family_name: str,
        birth_date: dt.date,
        contacts: tuple[Contact, ...],
        preferred_channel: str,
        language: str,
    ) -> Answer:
        if birth_date > self.clock().date():
            raise InvalidRequestError("a birth date cannot be in the future")

        def decide() -> tuple[list[Aggregate], Answer]:
            self._load(Organization, organization_id, organization_id, "organization")
            patient = Patient(
                organization_id=organization_id,
                given_name=given_name,
                family_name=family_name,
                birth_date=birth_date,
                contacts=tuple(contacts),
                preferred_channel=preferred_channel,
                language=language,
            )
            return [patient], Answer(201, self.patient_view(patient))

        return self._once(
            organization_id,
            request_id,
            fingerprint(
                "patient",
                given_name,
                family_name,
                birth_date,
                contacts,
                preferred_channel,
                language,
            ),
            decide,
        )

    def set_weekly_hours(
        self,
        organization_id: UUID,
        request_id: str,
        resource_id: UUID,
        hours: tuple[WeeklyHours, ...],
    ) -> Answer:
        def decide() -> tuple[list[Aggregate], Answer]:
            resource = self._load(Resource, resource_id, organization_id, "resource")
            for rule in hours:
                if rule.location_id not in resource.location_ids:
                    raise InvalidRequestError(
                        f"{resource.name} does not work at location {rule.location_id}"
                    )
            schedule = self._load(Schedule, schedule_id(resource_id), organization_id, "schedule")
            schedule.set_weekly_hours(tuple(hours))
            return [schedule], Answer(200, self.schedule_view(schedule))

        return self._once(
            organization_id, request_id, fingerprint("hours", resource_id, hours), decide
        )

    def add_schedule_exception(
        self,
        organization_id: UUID,
        request_id: str,
        resource_id: UUID,
        exception: ScheduleException,
    ) -> Answer:
        def decide() -> tuple[list[Aggregate], Answer]:
            resource = self._load(Resource, resource_id, organization_id, "resource")
            if exception.location_id and exception.location_id not in resource.location_ids:
                raise InvalidRequestError(
                    f"{resource.name} does not work at location {exception.location_id}"
                )
            schedule = self._load(Schedule, schedule_id(resource_id), organization_id, "schedule")
            schedule.add_exception(exception)
            return [schedule], Answer(201, self.schedule_view(schedule))

        return self._once(
            organization_id,
            request_id,
            fingerprint(
                "exception",
                resource_id,
                exception.kind,
                exception.start,
                exception.end,
                exception.location_id,
                exception.reason,
            ),
            decide,
        )

    def remove_schedule_exception(
        self, organization_id: UUID, request_id: str, resource_id: UUID, exception_id: UUID
    ) -> Answer:
        def decide() -> tuple[list[Aggregate], Answer]:
            schedule = self._load(Schedule, schedule_id(resource_id), organization_id, "schedule")
            schedule.remove_exception(exception_id)
            return [schedule], Answer(200, self.schedule_view(schedule))

        return self._once(
            organization_id,
            request_id,
            fingerprint("rm-exception", resource_id, exception_id),
            decide,
        )

    # ------------------------------------------------------------------ deciding time

    def _candidates(
        self,
        organization: Organization,
        kind: AppointmentType,
        location_id: UUID,
        preferred: dict[str, UUID],
    ) -> dict[tuple[int, int], list[Candidate]]:
        candidates: dict[tuple[int, int], list[Candidate]] = {}
        for s, step in enumerate(kind.steps):
            for r, requirement in enumerate(step.requirements):
                candidates[(s, r)] = self._pool(organization, requirement, location_id, preferred)
        return candidates

    def _pool(
        self,
        organization: Organization,
        requirement: Requirement,
        location_id: UUID,
        preferred: dict[str, UUID],
    ) -> list[Candidate]:
        wanted = requirement.resource_id or preferred.get(requirement.role)
        entries = organization.pool(requirement, location_id, only=wanted)
        if wanted is not None and not entries:
            raise InvalidRequestError(
                f"resource {wanted} cannot fill '{requirement.role}' at this location"
            )
        org = organization.id
        return [
            Candidate(
                self.reference.get(Resource, entry.resource_id, org, "resource"),
                self.reference.maybe(Schedule, schedule_id(entry.resource_id), org),
            )
            for entry in entries
        ]

    def _day_loader(
        self, days: dict[UUID, ResourceDay | None], hold: bool = True
    ) -> Callable[[UUID, dt.date], ResourceDay | None]:
        """Loads days into ``days``; ``hold``: for a decision that may change them."""

        def load(resource_id: UUID, local_date: dt.date) -> ResourceDay | None:
            day_id = resource_day_id(resource_id, local_date)
            if day_id not in days:
                days[day_id] = self._day(day_id) if hold else self._maybe(day_id)
            return days[day_id]

        return load

    def _day(self, day_id: UUID) -> ResourceDay | None:
        """A resource day for a decision: first held for this attempt (see ``_once``), unless
        another decision of this process keeps it longer than ``DAY_WAIT_SECONDS`` (two
        decisions waiting on each other's days give up waiting and stay correct: the save
        still checks every version)."""
        held = self._held.get()
        if (
            held is not None
            and day_id not in held
            and self.day_locks.acquire(day_id, timeout=self.DAY_WAIT_SECONDS)
        ):
            held.append(day_id)
        day: ResourceDay | None = self._maybe(day_id)
        return day

    def _apply_plan(
        self,
        plan: Plan,
        organization_id: UUID,
        days: dict[UUID, ResourceDay | None],
        now: dt.datetime,
        allow_overbooking: bool,
    ) -> list[ResourceDay]:
        touched: dict[UUID, ResourceDay] = {}
        for planned in plan.claims:
            for local_date in planned.local_dates:
                day_id = resource_day_id(planned.resource_id, local_date)
                day = days.get(day_id)
                if day is None:
                    day = ResourceDay(
                        resource_id=planned.resource_id,
                        local_date=local_date,
                        organization_id=organization_id,
                    )
                    days[day_id] = day
                day.claim(
                    planned.claim,
                    now,
                    planned.overbooking_allowance,
                    allow_overbooking and planned.category == Category.PROVIDER,
                )
                touched[day_id] = day
        return list(touched.values())

    @dataclass
    class _Context:
        organization: Organization
        kind: AppointmentType
        location: Location

    def _context(
        self, organization_id: UUID, appointment_type_id: UUID, location_id: UUID
    ) -> Bookings._Context:
        get = self.reference.get
        organization = get(Organization, organization_id, organization_id, "organization")
        kind = get(AppointmentType, appointment_type_id, organization_id, "appointment type")
        location = get(Location, location_id, organization_id, "location")
        return Bookings._Context(organization, kind, location)

    def _plan(
        self,
        ctx: Bookings._Context,
        appointment_id: UUID,
        start: dt.datetime,
        preferred: dict[str, UUID],
        days: dict[UUID, ResourceDay | None],
        now: dt.datetime,
        hold_expires_at: dt.datetime | None,
        allow_overbooking: bool,
    ) -> Plan:
        visit = Visit(
            appointment_id=appointment_id,
            appointment_type=ctx.kind,
            location_id=ctx.location.id,
            location_time_zone=ctx.location.time_zone,
            start=start,
            hold_expires_at=hold_expires_at,
            allow_overbooking=allow_overbooking,
        )
        candidates = self._candidates(ctx.organization, ctx.kind, ctx.location.id, preferred)
        return plan_visit(visit, candidates, self._day_loader(days), now)

    def alternatives(
        self,
        ctx: Bookings._Context,
        around: dt.datetime,
        preferred: dict[str, UUID],
        now: dt.datetime,
        ignoring: UUID | None = None,
        step_minutes: int = 15,
        days_ahead: int = 7,
    ) -> list[dict[str, Any]]:
        """The next free starts after ``around`` (a UTC instant, as every command's start
        is by then; same type, location and preferences)."""
        found: list[dict[str, Any]] = []
        days: dict[UUID, ResourceDay | None] = {}
        candidates = self._candidates(ctx.organization, ctx.kind, ctx.location.id, preferred)
        loader = self._day_loader(days, hold=False)
        tz = zone(ctx.location.time_zone)
        cursor = max(around, now + ctx.kind.minimum_notice)
        cursor = cursor.replace(second=0, microsecond=0)
        cursor += dt.timedelta(minutes=(-cursor.minute) % step_minutes)
        limit = around + dt.timedelta(days=days_ahead)
        while cursor <= limit and len(found) < self.alternatives_wanted:
            if cursor != around:
                visit = Visit(
                    appointment_id=ignoring or uuid.UUID(int=0),
                    appointment_type=ctx.kind,
                    location_id=ctx.location.id,
                    location_time_zone=ctx.location.time_zone,
                    start=cursor,
                )
                try:
                    check_policy(ctx.kind, cursor, now)
                    plan = plan_visit(visit, candidates, loader, now)
                except BookingError:
                    pass
                else:
                    found.append(
                        {
                            "start": plan.start.isoformat().replace("+00:00", "Z"),
                            "end": plan.end.isoformat().replace("+00:00", "Z"),
                            "local_start": plan.start.astimezone(tz).isoformat(),
                            "resources": {c.claim.role: str(c.resource_id) for c in plan.claims},
                        }
                    )
            cursor += dt.timedelta(minutes=step_minutes)
        return found

    def _reserve(
        self,
        organization_id: UUID,
        request_id: str,
        *,
        hold: bool,
        appointment_type_id: UUID,
        location_id: UUID,
        patient_id: UUID,
        start: dt.datetime,
        preferred: dict[str, UUID],
        booked_by: Actor,
        allow_overbooking: bool,
        note: str,
        hold_minutes: int | None,
    ) -> Answer:
        appointment_id = uuid.uuid4()
        start = as_utc(start)

        def decide() -> tuple[list[Aggregate], Answer]:
            now = self.clock()
            ctx = self._context(organization_id, appointment_type_id, location_id)
            self.reference.get(Patient, patient_id, organization_id, "patient")
            if booked_by == Actor.PATIENT and not ctx.kind.patient_bookable:
                raise NotPatientBookableError(f"{ctx.kind.name} is booked by the clinic")
            if allow_overbooking and booked_by != Actor.CLINIC:
                raise InvalidRequestError("only clinic staff may overbook")
            check_policy(ctx.kind, start, now)
            expires = (
                now + dt.timedelta(minutes=hold_minutes or self.hold_minutes) if hold else None
            )
            days: dict[UUID, ResourceDay | None] = {}
            try:
                plan = self._plan(
                    ctx, appointment_id, start, preferred, days, now, expires, allow_overbooking
                )
            except BookingError as error:
                if error.status == 409 and self._fresh.get():
                    error.extensions["alternatives"] = self.alternatives(ctx, start, preferred, now)
                raise
            details = dict(
                organization_id=organization_id,
                location_id=location_id,
                appointment_type_id=appointment_type_id,
                patient_id=patient_id,
                start=plan.start,
                end=plan.end,
                participants=plan.participants,
                booked_by=booked_by,
                note=note,
            )
            if hold:
                assert expires is not None
                appointment = Appointment.hold(appointment_id, expires_at=expires, **details)
            else:
                appointment = Appointment.book(appointment_id, **details)
            touched = self._apply_plan(plan, organization_id, days, now, allow_overbooking)
            self.stats.count("held" if hold else "booked")
            return [appointment, *touched], Answer(201, self.appointment_view(appointment, now))

        def exhausted() -> BookingError:
            self.reference.refresh()
            ctx = self._context(organization_id, appointment_type_id, location_id)
            now = self.clock()
            return ConcurrencyExhaustedError(
                "the time kept changing under concurrent bookings",
                alternatives=self.alternatives(ctx, start, preferred, now),
            )

        return self._once(
            organization_id,
            request_id,
            fingerprint(
                "hold" if hold else "book",
                appointment_type_id,
                location_id,
                patient_id,
                start,
                preferred,
                booked_by,
                allow_overbooking,
                note,
                hold_minutes,
            ),
            decide,
            exhausted,
        )

    def hold(self, organization_id: UUID, request_id: str, **kwargs: Any) -> Answer:
        """Hold time for a patient; the hold blocks the time until it is confirmed or expires."""
        return self._reserve(organization_id, request_id, hold=True, **kwargs)

    def book(self, organization_id: UUID, request_id: str, **kwargs: Any) -> Answer:
        """Book directly."""
        kwargs.pop("hold_minutes", None)
        return self._reserve(organization_id, request_id, hold=False, hold_minutes=None, **kwargs)

    def _days_of(self, appointment: Appointment) -> dict[UUID, ResourceDay | None]:
        days: dict[UUID, ResourceDay | None] = {}
        for participant in appointment.participants:
            for local_date in participant.local_dates:
                day_id = resource_day_id(participant.resource_id, local_date)
                days[day_id] = self._day(day_id)
        return days

    def confirm(self, organization_id: UUID, request_id: str, appointment_id: UUID) -> Answer:
        def decide() -> tuple[list[Aggregate], Answer]:
            now = self.clock()
            appointment = self._load(Appointment, appointment_id, organization_id, "appointment")
            appointment.confirm(now)
            days = [d for d in self._days_of(appointment).values() if d is not None]
            for day in days:
                day.confirm(appointment.id)
            self.stats.count("confirmed")
            return [appointment, *days], Answer(200, self.appointment_view(appointment, now))

        return self._once(
            organization_id, request_id, fingerprint("confirm", appointment_id), decide
        )

    def reschedule(
        self,
        organization_id: UUID,
        request_id: str,
        appointment_id: UUID,
        *,
        start: dt.datetime,
        preferred: dict[str, UUID],
        actor: Actor,
        allow_overbooking: bool = False,
    ) -> Answer:
        start = as_utc(start)

        def decide() -> tuple[list[Aggregate], Answer]:
            now = self.clock()
            appointment = self._load(Appointment, appointment_id, organization_id, "appointment")
            appointment.check_transition("reschedule", now)
            ctx = self._context(
                organization_id, appointment.appointment_type_id, appointment.location_id
            )
            check_policy(ctx.kind, start, now)
            days = self._days_of(appointment)
            try:
                plan = self._plan(
                    ctx,
                    appointment.id,
                    start,
                    preferred,
                    days,
                    now,
                    appointment.hold_expires_at,
                    allow_overbooking,
                )
            except BookingError as error:
                if error.status == 409 and self._fresh.get():
                    error.extensions["alternatives"] = self.alternatives(
                        ctx, start, preferred, now, ignoring=appointment.id
                    )
                raise
            old = [d for d in days.values() if d is not None]
            for day in old:
                day.release(appointment.id, "rescheduled")
            touched = self._apply_plan(plan, organization_id, days, now, allow_overbooking)
            appointment.reschedule(plan.start, plan.end, plan.participants, now)
            unique = {d.id: d for d in [*old, *touched]}
            self.stats.count("rescheduled")
            return [appointment, *unique.values()], Answer(
                200, self.appointment_view(appointment, now)
            )

        return self._once(
            organization_id,
            request_id,
            fingerprint("reschedule", appointment_id, start, preferred, actor, allow_overbooking),
            decide,
        )

    def cancel(
        self,
        organization_id: UUID,
        request_id: str,
        appointment_id: UUID,
        *,
        by: Actor,
        reason: str,
    ) -> Answer:
        def decide() -> tuple[list[Aggregate], Answer]:
            now = self.clock()
            appointment = self._load(Appointment, appointment_id, organization_id, "appointment")
            kind = self.reference.get(
                AppointmentType,
                appointment.appointment_type_id,
                organization_id,
                "appointment type",
            )
            appointment.cancel(by, reason, now, kind.cancellation_cutoff)
            days = [d for d in self._days_of(appointment).values() if d is not None]
            for day in days:
                day.release(appointment.id, f"cancelled by {by}")
            self.stats.count("cancelled")
            return [appointment, *days], Answer(200, self.appointment_view(appointment, now))

        return self._once(
            organization_id, request_id, fingerprint("cancel", appointment_id, by, reason), decide
        )

    def _status_change(
        self, organization_id: UUID, request_id: str, appointment_id: UUID, command: str
    ) -> Answer:
        def decide() -> tuple[list[Aggregate], Answer]:
            now = self.clock()
            appointment = self._load(Appointment, appointment_id, organization_id, "appointment")
            getattr(appointment, command)(now)
            self.stats.count(command)
            return [appointment], Answer(200, self.appointment_view(appointment, now))

        return self._once(organization_id, request_id, fingerprint(command, appointment_id), decide)

    def check_in(self, organization_id: UUID, request_id: str, appointment_id: UUID) -> Answer:
        return self._status_change(organization_id, request_id, appointment_id, "check_in")

    def arrive(self, organization_id: UUID, request_id: str, appointment_id: UUID) -> Answer:
        return self._status_change(organization_id, request_id, appointment_id, "arrive")

    def complete(self, organization_id: UUID, request_id: str, appointment_id: UUID) -> Answer:
        return self._status_change(organization_id, request_id, appointment_id, "complete")

    def mark_no_show(self, organization_id: UUID, request_id: str, appointment_id: UUID) -> Answer:
        return self._status_change(organization_id, request_id, appointment_id, "mark_no_show")

    # ------------------------------------------------------------------ waitlist

    def join_waitlist(
        self,
        organization_id: UUID,
        request_id: str,
        *,
        patient_id: UUID,
        appointment_type_id: UUID,
        location_ids: tuple[UUID, ...],
        earliest: dt.date,
        latest: dt.date,
        times_of_day: tuple[str, ...],
        provider_id: UUID | None,
        note: str,
    ) -> Answer:
        if latest < earliest:
            raise InvalidRequestError("latest is before earliest")

        def decide() -> tuple[list[Aggregate], Answer]:
            now = self.clock()
            self._load(Patient, patient_id, organization_id, "patient")
            self._load(AppointmentType, appointment_type_id, organization_id, "appointment type")
            for location_id in location_ids:
                self._load(Location, location_id, organization_id, "location")
            if provider_id is not None:
                self._load(Resource, provider_id, organization_id, "resource")
            entry = WaitlistEntry(
                organization_id=organization_id,
                patient_id=patient_id,
                appointment_type_id=appointment_type_id,
                location_ids=tuple(location_ids),
                earliest=earliest,
                latest=latest,
                times_of_day=tuple(times_of_day),
                provider_id=provider_id,
                note=note,
                joined_at=now,
            )
            return [entry], Answer(201, self.waitlist_view(entry))

        return self._once(
            organization_id,
            request_id,
            fingerprint(
                "waitlist",
                patient_id,
                appointment_type_id,
                location_ids,
                earliest,
                latest,
                times_of_day,
                provider_id,
                note,
            ),
            decide,
        )

    def leave_waitlist(
        self, organization_id: UUID, request_id: str, entry_id: UUID, reason: str
    ) -> Answer:
        def decide() -> tuple[list[Aggregate], Answer]:
            entry = self._load(WaitlistEntry, entry_id, organization_id, "waitlist entry")
            entry.leave(reason, self.clock())
            return [entry], Answer(200, self.waitlist_view(entry))

        return self._once(
            organization_id, request_id, fingerprint("leave", entry_id, reason), decide
        )

    # ------------------------------------------------------------------ queries

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
        location = self.reference.get(Location, location_id, organization_id, "location")
        return to_utc(local_start, zone(location.time_zone))

    def get_appointment(self, organization_id: UUID, appointment_id: UUID) -> dict[str, Any]:
        appointment = self._load(Appointment, appointment_id, organization_id, "appointment")
        return self.appointment_view(appointment, self.clock())

    def get_location(self, organization_id: UUID, location_id: UUID) -> dict[str, Any]:
        return self.location_view(self._load(Location, location_id, organization_id, "location"))

    def get_resource(self, organization_id: UUID, resource_id: UUID) -> dict[str, Any]:
        return self.resource_view(self._load(Resource, resource_id, organization_id, "resource"))

    def get_appointment_type(self, organization_id: UUID, type_id: UUID) -> dict[str, Any]:
        return self.appointment_type_view(
            self._load(AppointmentType, type_id, organization_id, "appointment type")
        )

    def get_patient(self, organization_id: UUID, patient_id: UUID) -> dict[str, Any]:
        return self.patient_view(self._load(Patient, patient_id, organization_id, "patient"))

    def get_schedule(self, organization_id: UUID, resource_id: UUID) -> dict[str, Any]:
        self._load(Resource, resource_id, organization_id, "resource")
        return self.schedule_view(
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
        return self.waitlist_view(
            self._load(WaitlistEntry, entry_id, organization_id, "waitlist entry")
        )

    def resource_day(
        self, organization_id: UUID, resource_id: UUID, local_date: dt.date
    ) -> dict[str, Any]:
        """Who owns each minute of a resource's day, and which event gave it to them."""
        resource = self._load(Resource, resource_id, organization_id, "resource")
        schedule = self._maybe(schedule_id(resource_id))
        now = self.clock()
        day_id = resource_day_id(resource_id, local_date)
        tz = zone(resource.time_zone)
        claims: dict[tuple[str, str], dict[str, Any]] = {}
        history = []
        for stored in self.events.get(day_id):
            name = type(stored).__name__
            entry = {
                "version": stored.originator_version,
                "event": name,
                "recorded_at": _iso(stored.timestamp),  # type: ignore[attr-defined]
            }
            if name == "TimeClaimed":
                claim = stored.claim  # type: ignore[attr-defined]
                key = (str(claim.appointment_id), claim.role)
                claims[key] = {
                    "appointment_id": str(claim.appointment_id),
                    "role": claim.role,
                    "start": _iso(claim.start),
                    "end": _iso(claim.end),
                    "blocked_from": _iso(claim.blocked_from),
                    "blocked_until": _iso(claim.blocked_until),
                    "local_start": claim.start.astimezone(tz).isoformat(),
                    "local_end": claim.end.astimezone(tz).isoformat(),
                    "seats": claim.seats,
                    "session": claim.session,
                    "overbooked": claim.overbooked,
                    "hold_expires_at": _iso(claim.hold_expires_at),
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
                            "start": _iso(window.start),
                            "end": _iso(window.end),
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
            "day_start": _iso(start),
            "day_end": _iso(end),
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
        at = _iso(instant)
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

    # ------------------------------------------------------------------ views

    def appointment_view(self, appointment: Appointment, now: dt.datetime) -> dict[str, Any]:
        status = appointment.current_status(now)
        cancellation = appointment.cancellation
        if status == Status.CANCELLED and appointment.status == Status.PENDING:
            cancellation = {
                "by": "system",
                "reason": "hold expired",
                "at": appointment.hold_expires_at,
            }
        return {
            "id": str(appointment.id),
            "organization_id": str(appointment.organization_id),
            "status": str(status),
            "location_id": str(appointment.location_id),
            "appointment_type_id": str(appointment.appointment_type_id),
            "patient_id": str(appointment.patient_id),
            "start": _iso(appointment.start),
            "end": _iso(appointment.end),
            "hold_expires_at": _iso(appointment.hold_expires_at),
            "booked_by": str(appointment.booked_by),
            "note": appointment.note,
            "participants": [
                {
                    "resource_id": str(p.resource_id),
                    "category": str(p.category),
                    "role": p.role,
                    "start": _iso(p.start),
                    "end": _iso(p.end),
                }
                for p in appointment.participants
            ],
            "cancellation": None
            if cancellation is None
            else {
                "by": str(cancellation["by"]),
                "reason": cancellation["reason"],
                "at": _iso(cancellation["at"]),
            },
            "version": appointment.version,
        }

    @staticmethod
    def location_view(location: Location) -> dict[str, Any]:
        return {
            "id": str(location.id),
            "organization_id": str(location.organization_id),
            "name": location.name,
            "address": location.address,
            "time_zone": location.time_zone,
        }

    @staticmethod
    def resource_view(resource: Resource) -> dict[str, Any]:
        return {
            "id": str(resource.id),
            "organization_id": str(resource.organization_id),
            "category": str(resource.category),
            "name": resource.name,
            "kind": resource.kind,
            "specialties": list(resource.specialties),
            "location_ids": [str(i) for i in resource.location_ids],
            "time_zone": resource.time_zone,
            "overbooking_allowance": resource.overbooking_allowance,
        }

    @staticmethod
    def appointment_type_view(kind: AppointmentType) -> dict[str, Any]:
        return {
            "id": str(kind.id),
            "organization_id": str(kind.organization_id),
            "name": kind.name,
            "duration_minutes": int(kind.duration.total_seconds() // 60),
            "steps": [
                {
                    "name": s.name,
                    "offset_minutes": s.offset_minutes,
                    "duration_minutes": s.duration_minutes,
                    "requirements": [
                        {
                            "role": r.role,
                            "category": str(r.category),
                            "resource_id": str(r.resource_id) if r.resource_id else None,
                            "kind": r.kind,
                            "specialty": r.specialty,
                        }
                        for r in s.requirements
                    ],
                }
                for s in kind.steps
            ],
            "buffer_before_minutes": int(kind.buffer_before.total_seconds() // 60),
            "buffer_after_minutes": int(kind.buffer_after.total_seconds() // 60),
            "seats": kind.seats,
            "minimum_notice_minutes": int(kind.minimum_notice.total_seconds() // 60),
            "maximum_horizon_days": kind.maximum_horizon.days,
            "cancellation_cutoff_minutes": int(kind.cancellation_cutoff.total_seconds() // 60),
            "patient_bookable": kind.patient_bookable,
            "preparation": kind.preparation,
            "specialty": kind.specialty,
        }

    @staticmethod
    def patient_view(patient: Patient) -> dict[str, Any]:
        return {
            "id": str(patient.id),
            "organization_id": str(patient.organization_id),
            "given_name": patient.given_name,
            "family_name": patient.family_name,
            "birth_date": patient.birth_date.isoformat(),
            "contacts": [{"system": c.system, "value": c.value} for c in patient.contacts],
            "preferred_channel": patient.preferred_channel,
            "language": patient.language,
        }

    @staticmethod
    def schedule_view(schedule: Schedule) -> dict[str, Any]:
        return {
            "resource_id": str(schedule.resource_id),
            "weekly_hours": [
                {
                    "location_id": str(h.location_id),
                    "weekday": h.weekday,
                    "start": h.start.isoformat("minutes"),
                    "end": h.end.isoformat("minutes"),
                    "effective_from": h.effective_from.isoformat() if h.effective_from else None,
                    "effective_until": h.effective_until.isoformat() if h.effective_until else None,
                }
                for h in schedule.weekly_hours
            ],
            "exceptions": [
                {
                    "id": str(e.id),
                    "kind": str(e.kind),
                    "start": _iso(e.start),
                    "end": _iso(e.end),
                    "location_id": str(e.location_id) if e.location_id else None,
                    "reason": e.reason,
                }
                for e in sorted(schedule.exceptions.values(), key=lambda e: e.start)
            ],
            "version": schedule.version,
        }

    @staticmethod
    def waitlist_view(entry: WaitlistEntry) -> dict[str, Any]:
        return {
            "id": str(entry.id),
            "organization_id": str(entry.organization_id),
            "status": "waitlist" if entry.active else "left",
            "patient_id": str(entry.patient_id),
            "appointment_type_id": str(entry.appointment_type_id),
            "location_ids": [str(i) for i in entry.location_ids],
            "earliest": entry.earliest.isoformat(),
            "latest": entry.latest.isoformat(),
            "times_of_day": list(entry.times_of_day),
            "provider_id": str(entry.provider_id) if entry.provider_id else None,
            "note": entry.note,
            "joined_at": _iso(entry.joined_at),
        }


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
