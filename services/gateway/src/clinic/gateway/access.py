"""Who may do what: every operation of the public API and the roles allowed to call it.

This table is the policy; routes name their operation and ``authorize`` checks the caller's
role against it (403 when the role may not). What a role may see within its organisation is
checked beside it: clinic roles limited to some locations see only those locations'
appointments and calendars, and a patient only their own records (others' ids are 404, as if
they did not exist).
"""

from __future__ import annotations

from uuid import UUID

from clinic.gateway.principal import Principal, Role
from clinic.platform.problems import Problem

P, FD, PR, CA, OA, OPS = (
    Role.PATIENT,
    Role.FRONT_DESK,
    Role.PROVIDER,
    Role.CLINIC_ADMIN,
    Role.ORG_ADMIN,
    Role.OPS,
)
EVERYONE = frozenset(Role)
STAFF = frozenset({FD, PR, CA, OA})
DESK = frozenset({FD, CA, OA})
ADMINS = frozenset({CA, OA})

POLICY: dict[str, frozenset[Role]] = {
    "me.get": EVERYONE,
    "live.stream": STAFF | {P},
    "slots.search": EVERYONE,
    "slots.next_available": EVERYONE,
    "holds.create": STAFF | {P},
    "appointments.create": STAFF | {P},
    "appointments.get": STAFF | {P},
    "appointments.history": STAFF | {P},
    "appointments.confirm": STAFF | {P},
    "appointments.reschedule": STAFF | {P},
    "appointments.cancel": STAFF | {P},
    "appointments.confirm_attendance": STAFF | {P},
    "appointments.check_in": STAFF,
    "appointments.arrive": STAFF,
    "appointments.complete": STAFF,
    "appointments.no_show": STAFF,
    "appointments.messages": STAFF | {P},
    "patients.search": STAFF,
    "patients.create": DESK,
    "patients.get": STAFF | {P},
    "patients.update": DESK | {P},
    "patients.appointments": STAFF | {P},
    "patients.preferences.get": STAFF | {P},
    "patients.preferences.set": DESK | {P},
    "patients.opt_out": DESK | {P},
    "patients.opt_in": DESK | {P},
    "waitlist.join": DESK | {P},
    "waitlist.get": STAFF | {P},
    "waitlist.list": STAFF | {P},
    "waitlist.leave": DESK | {P},
    "waitlist.offers": DESK,
    "calendars.location": STAFF,
    "calendars.resource": STAFF,
    "reference.read": EVERYONE,
    "locations.write": frozenset({OA}),
    "resources.write": ADMINS,
    "schedules.read": STAFF | {OPS},
    "schedules.write": ADMINS,
    "appointment_types.write": ADMINS,
    "kpis.get": ADMINS | {OPS},
    "audit.list": frozenset({OA}),
}


PATIENT_DATA_READS = frozenset(
    {
        "appointments.get",
        "appointments.history",
        "appointments.messages",
        "patients.search",
        "patients.get",
        "patients.appointments",
        "patients.preferences.get",
        "waitlist.get",
        "waitlist.list",
        "calendars.location",
        "calendars.resource",
    }
)
"""Reads that show patient data: each is audited, like every change."""


def audited_operation(method: str, operation: str) -> bool:
    return method != "GET" or operation in PATIENT_DATA_READS


class ForbiddenError(Problem):
    status = 403
    slug = "forbidden"
    title = "Your role may not do this"


class NotFoundError(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


def authorize(principal: Principal, operation: str) -> None:
    if principal.role not in POLICY[operation]:
        raise ForbiddenError(f"a {principal.role} may not do {operation}")


def check_location(principal: Principal, location_id: UUID, what: str) -> None:
    """A location-limited caller sees nothing of another location: it is not found."""
    if not principal.may_see_location(location_id):
        raise NotFoundError(f"{what} is not found")


def check_any_location(principal: Principal, location_ids: list[UUID], what: str) -> None:
    if principal.location_ids is not None and not principal.location_ids & set(location_ids):
        raise NotFoundError(f"{what} is not found")


def check_patient(principal: Principal, patient_id: UUID, what: str) -> None:
    """A patient sees only their own records: anyone else's is not found."""
    if principal.role == Role.PATIENT and principal.patient_id != patient_id:
        raise NotFoundError(f"{what} is not found")


def patient_for(principal: Principal, requested: UUID | None) -> UUID:
    """The patient a patient acts for (themself); staff name the patient."""
    if principal.role == Role.PATIENT:
        assert principal.patient_id is not None
        if requested is not None and requested != principal.patient_id:
            raise ForbiddenError("a patient books and joins waitlists for themself only")
        return principal.patient_id
    if requested is None:
        raise MissingPatientError("name the patient: patient_id")
    return requested


class MissingPatientError(Problem):
    status = 422
    slug = "patient-required"
    title = "Which patient?"
