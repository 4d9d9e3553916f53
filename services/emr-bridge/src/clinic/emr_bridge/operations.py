"""The scheduling operations of IHE ITI Scheduling, each carried out by the service that
decides it: ``$find`` asks availability for free starts, ``$hold``, ``$book`` and
``$cancel`` are booking commands with the EMR client as the actor.

``$find`` answers proposed Appointments; each is kept for a while as a *proposal* (type,
place, time, resources, patient), so ``$hold`` and ``$book`` can refer to it by id as
ITI-116/117 do. A proposal is never a hold: it blocks nothing, and booking decides again
when it is held or booked (a proposal another client took meanwhile gets booking's 409).

After booking accepts a command, the answer waits (briefly) until the bridge's projection has
the appointment at booking's version, and returns the stored resource with its ``meta`` and
``ETag``, so what an operation returns is what a read returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from clinic.emr_bridge import fhir, reads
from clinic.emr_bridge.clinics import Acting, Answer, Availability, Booking
from clinic.emr_bridge.parameters import FindRequest, ParameterError, reference_id
from clinic.platform.database import Database

PROPOSALS_DDL = [
    """CREATE TABLE IF NOT EXISTS proposals (
        proposal_id uuid PRIMARY KEY, organization_id uuid NOT NULL,
        appointment_type_id uuid NOT NULL, location_id uuid NOT NULL, patient_id uuid,
        start_at timestamptz NOT NULL, end_at timestamptz NOT NULL, resources jsonb NOT NULL,
        created_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS proposals_expiry ON proposals (expires_at)",
]
PROPOSAL_LIFETIME = dt.timedelta(minutes=30)
TYPES_PER_FIND = 20
SLOTS_PER_TYPE = 1000
"""The most free starts asked of availability per type and search."""


class OperationError(Exception):
    """An operation refused: the HTTP status, the OperationOutcome issue code and why."""

    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code


def refused(answer: Answer, what: str) -> OperationError:
    """Booking's or availability's refusal, as the EMR should read it."""
    if answer.status == 0:
        return OperationError(
            503,
            f"{what}: the scheduling service did not answer ({answer.detail}); retry",
            "transient",
        )
    if answer.status >= 500:
        return OperationError(
            502, f"{what}: the scheduling service failed ({answer.detail})", "transient"
        )
    detail = f"{what}: {answer.detail}"
    alternatives = answer.body.get("alternatives")
    if answer.status == 409 and isinstance(alternatives, list) and alternatives:
        starts = ", ".join(str(a.get("start")) for a in alternatives if isinstance(a, dict))
        detail += f" (free instead: {starts}; $find again to propose them)"
    code = {409: "conflict", 412: "conflict", 403: "forbidden", 404: "not-found"}.get(
        answer.status, "business-rule" if answer.status == 422 else "invalid"
    )
    status = answer.status if answer.status in (400, 403, 404, 409, 412, 422) else 400
    return OperationError(status, detail, code)


@dataclass(frozen=True)
class Proposal:
    proposal_id: UUID
    organization_id: UUID
    appointment_type_id: UUID
    location_id: UUID
    patient_id: UUID | None
    start: dt.datetime
    end: dt.datetime
    resources: dict[str, str]
    """role -> resource id, as availability offered them."""


def _uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise OperationError(404, f"no {what} {value!r}", "not-found") from None


class Operations:
    def __init__(
        self,
        database: Database,
        booking: Booking,
        availability: Availability,
        settle_seconds: float = 5.0,
        clock: Any = None,
    ) -> None:
        self.database = database
        self.booking = booking
        self.availability = availability
        self.settle_seconds = settle_seconds
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    # -- $find ---------------------------------------------------------------------------------

    async def find(self, org: UUID, request: FindRequest) -> list[tuple[Proposal, dict[str, Any]]]:
        """Proposed appointments: availability's free starts within the window, earliest
        first, at most ``count``."""
        if request.organization is not None and request.organization != str(org):
            raise OperationError(400, "organization must be the one this endpoint serves")
        async with self.database.pool.connection() as conn:
            types = await self._types(conn, org, request)
            locations = await self._locations(conn, org, request)
            categories = await _categories(conn, org)
        patient = _uuid(request.patient, "Patient") if request.patient else None
        providers = [_uuid(p, "Practitioner") for p in request.practitioners]
        zones = [ZoneInfo(tz) for _, tz in locations]
        first = min(request.start.astimezone(tz).date() for tz in zones)
        last = max(request.end.astimezone(tz).date() for tz in zones)
        places = [loc for loc, _ in locations]
        found: list[Proposal] = []
        for type_id in types:
            found += await self._free(
                org, type_id, places, providers, first, last, request, patient
            )
        found.sort(key=lambda p: (p.start, str(p.appointment_type_id), str(p.location_id)))
        chosen = found[: request.count]
        now = self.clock()
        async with self.database.pool.connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM proposals WHERE expires_at < %s", [now])
            names = await _type_names(conn, {p.appointment_type_id for p in chosen})
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO proposals VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [
                        [
                            p.proposal_id,
                            org,
                            p.appointment_type_id,
                            p.location_id,
                            p.patient_id,
                            p.start,
                            p.end,
                            Jsonb(p.resources),
                            now,
                            now + PROPOSAL_LIFETIME,
                        ]
                        for p in chosen
                    ],
                )
        window = (request.start, request.end)
        return [(p, proposed(p, names, categories, window)) for p in chosen]

    async def _free(
        self,
        org: UUID,
        type_id: UUID,
        places: list[UUID],
        providers: list[UUID],
        first: dt.date,
        last: dt.date,
        request: FindRequest,
        patient: UUID | None,
    ) -> list[Proposal]:
        """Availability's free starts of one type within the window. Its days are local and
        the window is instants: starts before the window on its first day are dropped, so
        when they fill the answer, more are asked for."""
        limit = max(20, request.count * 2)
        while True:
            answer = await self.availability.slots(
                org, type_id, places, first, last, providers, limit
            )
            if answer.status == 404:
                return []  # a type or place availability does not know (yet)
            if not answer.ok:
                raise refused(answer, "$find")
            slots = answer.body.get("slots", ())
            within = []
            for slot in slots:
                start = dt.datetime.fromisoformat(slot["start"])
                end = dt.datetime.fromisoformat(slot["end"])
                if start >= request.start and end <= request.end:
                    within.append(
                        Proposal(
                            uuid.uuid4(),
                            org,
                            type_id,
                            UUID(slot["location_id"]),
                            patient,
                            start,
                            end,
                            dict(slot["resources"]),
                        )
                    )
            if len(within) >= request.count or len(slots) < limit or limit >= SLOTS_PER_TYPE:
                return within
            limit = min(SLOTS_PER_TYPE, limit * 4)

    async def _types(
        self, conn: psycopg.AsyncConnection, org: UUID, request: FindRequest
    ) -> list[UUID]:
        cursor = await conn.execute(
            "SELECT appointment_type_id, data->>'specialty' FROM appointment_types"
            " WHERE organization_id = %s AND NOT retired ORDER BY appointment_type_id",
            [org],
        )
        known = {str(t): s for t, s in await cursor.fetchall()}
        if request.appointment_types:
            unknown = [t for t in request.appointment_types if t not in known]
            if unknown:
                raise OperationError(
                    400,
                    f"unknown appointmentType {', '.join(unknown)} (the "
                    "code of a HealthcareService's type)",
                    "code-invalid",
                )
            wanted = list(request.appointment_types)
        else:
            wanted = list(known)
        if request.specialties:
            wanted = [t for t in wanted if known[t] in request.specialties]
        return [UUID(t) for t in wanted[:TYPES_PER_FIND]]

    async def _locations(
        self, conn: psycopg.AsyncConnection, org: UUID, request: FindRequest
    ) -> list[tuple[UUID, str]]:
        """The clinic locations asked for (all the organisation's when none), with their
        time zones."""
        cursor = await conn.execute(
            "SELECT location_id, data->>'time_zone' FROM locations"
            " WHERE organization_id = %s AND NOT retired ORDER BY location_id",
            [org],
        )
        known: dict[UUID, str] = dict(await cursor.fetchall())
        if not request.locations:
            if not known:
                raise OperationError(404, "this organisation has no locations yet", "not-found")
            return list(known.items())[:50]
        wanted = [_uuid(x, "Location") for x in request.locations]
        unknown = [str(x) for x in wanted if x not in known]
        if unknown:
            raise OperationError(
                400,
                f"unknown location {', '.join(unknown)} (a clinic Location of this organisation)",
                "not-found",
            )
        return [(x, known[x]) for x in wanted]

    # -- $hold, $book, $cancel -----------------------------------------------------------------

    async def proposal(self, org: UUID, rid: str) -> Proposal | None:
        try:
            pid = UUID(rid)
        except ValueError:
            return None
        async with self.database.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT proposal_id, organization_id, appointment_type_id, location_id,"
                " patient_id, start_at, end_at, resources FROM proposals"
                " WHERE proposal_id = %s AND organization_id = %s AND expires_at >= %s",
                [pid, org, self.clock()],
            )
            row = await cursor.fetchone()
        return Proposal(*row) if row else None

    async def reserve(
        self,
        org: UUID,
        proposal: Proposal,
        client: str,
        channel: str,
        hold: bool,
        patient: UUID | None = None,
    ) -> dict[str, Any]:
        """Hold or book a proposal (once: the same proposal asked again gets booking's first
        answer)."""
        who = patient or proposal.patient_id
        if who is None:
            raise OperationError(
                400,
                "the proposal names no patient: pass patient to $find "
                "(or book an appointment-resource with one)",
            )
        verb = "hold" if hold else "book"
        acting = Acting(client, channel, f"emr-bridge:{org}:{verb}:{proposal.proposal_id}")
        answer = await self.booking.reserve(
            org,
            acting,
            hold=hold,
            appointment_type=proposal.appointment_type_id,
            location=proposal.location_id,
            patient=who,
            start=proposal.start,
            resources=proposal.resources,
        )
        if not answer.ok:
            raise refused(answer, f"${verb}")
        return await self.settled(org, answer)

    async def act(
        self, org: UUID, appointment: str, verb: str, acting: Acting, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A booking command on an existing appointment."""
        aid = _uuid(appointment, "Appointment")
        answer = await self.booking.command(org, aid, verb, acting, body)
        if not answer.ok:
            raise refused(answer, verb)
        return await self.settled(org, answer)

    async def settled(self, org: UUID, answer: Answer) -> dict[str, Any]:
        """The Appointment booking's answer is about, as the projection holds it once it has
        booking's version (or, after ``settle_seconds``, written from the answer itself)."""
        aid, version = UUID(str(answer.body["id"])), int(answer.body.get("version", 0))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle_seconds
        while True:
            async with self.database.pool.connection() as conn:
                cursor = await conn.execute(
                    "SELECT version FROM appointments WHERE appointment_id = %s"
                    " AND organization_id = %s",
                    [aid, org],
                )
                row = await cursor.fetchone()
                if row and row[0] >= version:
                    stored = await reads.current(conn, org, "Appointment", str(aid))
                    if stored is not None and stored.body is not None:
                        return stored.body
            if loop.time() > deadline:
                return await self._from_answer(org, answer.body)
            await asyncio.sleep(0.02)

    async def _from_answer(self, org: UUID, body: dict[str, Any]) -> dict[str, Any]:
        async with self.database.pool.connection() as conn:
            names = await _type_names(conn, {UUID(body["appointment_type_id"])})
        state = fhir.AppointmentState(
            appointment_id=UUID(body["id"]),
            organization_id=org,
            patient_id=UUID(body["patient_id"]),
            location_id=UUID(body["location_id"]),
            appointment_type_id=UUID(body["appointment_type_id"]),
            type_name=names.get(UUID(body["appointment_type_id"]), ""),
            status=body["status"],
            start=dt.datetime.fromisoformat(body["start"]),
            end=dt.datetime.fromisoformat(body["end"]),
            created=self.clock(),
            participants=tuple(
                (p["resource_kind"], UUID(p["resource_id"]), p["role"])
                for p in body.get("participants", ())
            ),
            attendance_confirmed=body.get("attendance_confirmed_at") is not None,
        )
        resource = fhir.appointment(state, 0, self.clock())
        del resource["meta"]  # not a stored version (the projection is behind)
        return resource


async def _type_names(conn: psycopg.AsyncConnection, ids: set[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    cursor = await conn.execute(
        "SELECT appointment_type_id, data->>'name' FROM appointment_types"
        " WHERE appointment_type_id = ANY(%s)",
        [list(ids)],
    )
    return {t: n for t, n in await cursor.fetchall()}


async def _categories(conn: psycopg.AsyncConnection, org: UUID) -> dict[str, str]:
    cursor = await conn.execute(
        "SELECT resource_id, category FROM resources WHERE organization_id = %s", [org]
    )
    return {str(r): c for r, c in await cursor.fetchall()}


def proposed(
    p: Proposal,
    names: dict[UUID, str],
    categories: dict[str, str],
    window: tuple[dt.datetime, dt.datetime],
) -> dict[str, Any]:
    """A proposal as a ``proposed`` Appointment: every participant ``needs-action``. (Built
    on the search path: the tests validate what it writes with the R4 models, a search does
    not pay for that again.)"""
    participants: list[dict[str, Any]] = []
    if p.patient_id is not None:
        participants.append(
            {
                "actor": {"reference": f"Patient/{p.patient_id}"},
                "required": "required",
                "status": "needs-action",
            }
        )
    participants.append(
        {
            "actor": {"reference": f"Location/{p.location_id}"},
            "required": "required",
            "status": "needs-action",
        }
    )
    for role, rid in sorted(p.resources.items()):
        actor = fhir.CATEGORY_TO_ACTOR.get(categories.get(rid, "provider"), "Device")
        participants.append(
            {
                "type": [
                    {"coding": [{"system": f"{fhir.SYSTEM}/role", "code": role}], "text": role}
                ],
                "actor": {"reference": f"{actor}/{rid}"},
                "required": "required",
                "status": "needs-action",
            }
        )
    name = names.get(p.appointment_type_id)
    coding = {"system": f"{fhir.SYSTEM}/appointment-type", "code": str(p.appointment_type_id)}
    return fhir.coded(
        {
            "resourceType": "Appointment",
            "id": str(p.proposal_id),
            "status": "proposed",
            "serviceType": [
                {"coding": [coding | ({"display": name} if name else {})]}
                | ({"text": name} if name else {})
            ],
            "start": fhir.instant(p.start),
            "end": fhir.instant(p.end),
            "minutesDuration": max(1, int((p.end - p.start).total_seconds() // 60)),
            "participant": participants,
            "requestedPeriod": [{"start": fhir.instant(window[0]), "end": fhir.instant(window[1])}],
        }
    )


def requested(resource: dict[str, Any], org: UUID) -> dict[str, Any]:
    """What a whole Appointment given to ``$book`` asks for: type, place, patient, start,
    resources by role (a participant's type code is its role). References are relative, or
    absolute ones to this organisation's base."""
    try:
        fhir.validated(resource)
    except fhir.InvalidResourceError as error:
        raise ParameterError(f"appointment-resource is not valid FHIR: {error}") from None
    wanted: dict[str, Any] = {
        "status": resource["status"],
        "id": resource.get("id"),
        "resources": {},
        "patient": None,
        "location": None,
    }
    for service in resource.get("serviceType", ()):
        for coding in service.get("coding", ()):
            if coding.get("system") == f"{fhir.SYSTEM}/appointment-type":
                wanted["type"] = coding.get("code")
    for participant in resource.get("participant", ()):
        reference = participant.get("actor", {}).get("reference", "")
        if "://" in reference and f"/fhir/{org}/" not in reference:
            raise ParameterError(
                f"{reference!r} is on another server: participants are this "
                "organisation's resources (Type/id)"
            )
        kind = reference.split("/")[-2] if reference.count("/") >= 1 else ""
        roles = [c.get("code") for t in participant.get("type", ()) for c in t.get("coding", ())]
        if kind == "Patient":
            wanted["patient"] = reference_id(reference, "Patient", "participant")
        elif kind == "Location" and not roles:
            wanted["location"] = reference_id(reference, "Location", "participant")
        elif kind in ("Practitioner", "Location", "Device") and roles and roles[0]:
            wanted["resources"][str(roles[0])] = reference_id(reference, kind, "participant")
    if "start" in resource:
        wanted["start"] = dt.datetime.fromisoformat(resource["start"].replace("Z", "+00:00"))
    if "cancelationReason" in resource:
        wanted["reason"] = resource["cancelationReason"].get("text")
    return wanted
