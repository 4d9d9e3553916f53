"""Reference data: organisations, locations, resources, appointment types, and the
schedules (weekly hours and their exceptions) of resources."""

from __future__ import annotations

import uuid
from typing import Any

from clinic.booking import views
from clinic.booking.commands import (
    AddScheduleException,
    DefineAppointmentType,
    RegisterLocation,
    RegisterOrganization,
    RegisterResource,
    RemoveScheduleException,
    Retire,
    SetOverbookingAllowance,
    SetWeeklyHours,
    UpdateAppointmentType,
    UpdateLocation,
    UpdateResource,
)
from clinic.booking.decision import Attempt, Decision, UseCase
from clinic.booking.domain.errors import InvalidRequestError
from clinic.booking.domain.reference import (
    AppointmentType,
    Location,
    Organization,
    Resource,
)
from clinic.booking.domain.schedule import Schedule, schedule_id
from clinic.booking.domain.values import ScheduleException


def register_organization(command: RegisterOrganization, attempt: Attempt) -> Decision:
    """A tenant: a hospital group."""
    organization = Organization(name=command.organization_name)
    return Decision([organization], {"id": str(organization.id), "name": organization.name})


def register_location(command: RegisterLocation, attempt: Attempt) -> Decision:
    """A clinic location with its IANA time zone."""
    org = command.organization_id
    organization = attempt.load(Organization, org, org, "organization")
    location = Location(
        organization_id=org,
        name=command.location_name,
        address=command.address,
        time_zone=command.time_zone,
    )
    organization.add_location(location.id)
    return Decision([location, organization], views.location(location))


def register_resource(command: RegisterResource, attempt: Attempt) -> Decision:
    """A provider, room or device; its schedule starts empty."""
    org = command.organization_id
    organization = attempt.load(Organization, org, org, "organization")
    locations = [attempt.load(Location, lid, org, "location") for lid in command.location_ids]
    for location in locations:
        location.check_active()
    resource = Resource(
        organization_id=org,
        category=command.category,
        name=command.resource_name,
        kind=command.kind,
        specialties=tuple(command.specialties),
        location_ids=tuple(command.location_ids),
        time_zone=locations[0].time_zone,
        overbooking_allowance=command.overbooking_allowance,
    )
    resource.set_languages(tuple(command.languages))
    schedule = Schedule(resource_id=resource.id, organization_id=org)
    organization.list_resource(resource.directory_entry())
    return Decision([resource, schedule, organization], views.resource(resource))


def set_overbooking_allowance(command: SetOverbookingAllowance, attempt: Attempt) -> Decision:
    resource = attempt.load(Resource, command.resource_id, command.organization_id, "resource")
    resource.set_overbooking_allowance(command.allowance)
    return Decision([resource], views.resource(resource))


def define_appointment_type(command: DefineAppointmentType, attempt: Attempt) -> Decision:
    """What a visit needs: steps (sequential or parallel) and the resources of each."""
    org = command.organization_id
    organization = attempt.load(Organization, org, org, "organization")
    for step in command.steps:
        for requirement in step.requirements:
            if requirement.resource_id is not None:
                attempt.load(Resource, requirement.resource_id, org, "resource").check_active()
    kind = AppointmentType(
        organization_id=org,
        name=command.type_name,
        steps=tuple(command.steps),
        buffer_before_minutes=command.buffer_before_minutes,
        buffer_after_minutes=command.buffer_after_minutes,
        seats=command.seats,
        minimum_notice_minutes=command.minimum_notice_minutes,
        maximum_horizon_days=command.maximum_horizon_days,
        cancellation_cutoff_minutes=command.cancellation_cutoff_minutes,
        patient_bookable=command.patient_bookable,
        preparation=command.preparation,
        specialty=command.specialty,
        reschedule_cutoff_minutes=command.reschedule_cutoff_minutes,
        reminder_plan=tuple(command.reminder_plan),
        patient_facing=dict(command.patient_facing),
    )
    organization.add_appointment_type(kind.id)
    return Decision([kind, organization], views.appointment_type(kind))


def update_location(command: UpdateLocation, attempt: Attempt) -> Decision:
    """Rename or re-address a location (its time zone is fixed)."""
    command.context.acting.check_not_patient("change reference data")
    org = command.organization_id
    location = attempt.load(Location, command.location_id, org, "location")
    location.update(command.location_name, command.address)
    return Decision([location], views.location(location))


def update_resource(command: UpdateResource, attempt: Attempt) -> Decision:
    """Rename a resource, change its kind, specialties or languages, or move it between
    locations: pools follow at once (the organisation's directory changes in the same
    decision; languages choose no pool)."""
    command.context.acting.check_not_patient("change reference data")
    org = command.organization_id
    resource = attempt.load(Resource, command.resource_id, org, "resource")
    for location_id in command.location_ids or ():
        attempt.load(Location, location_id, org, "location").check_active()
    moved = resource.update(
        command.resource_name, command.kind, command.specialties, command.location_ids
    )
    spoken = command.languages is not None and resource.set_languages(command.languages)
    if not moved:
        return Decision([resource] if spoken else [], views.resource(resource))
    organization = attempt.load(Organization, org, org, "organization")
    organization.relist_resource(resource.directory_entry())
    return Decision([resource, organization], views.resource(resource))


def update_appointment_type(command: UpdateAppointmentType, attempt: Attempt) -> Decision:
    """Change a type's definition: new bookings follow it; booked ones keep their time."""
    command.context.acting.check_not_patient("change reference data")
    org = command.organization_id
    kind = attempt.load(AppointmentType, command.appointment_type_id, org, "appointment type")
    for step in command.changes.get("steps", ()):
        for requirement in step.requirements:
            if requirement.resource_id is not None:
                attempt.load(Resource, requirement.resource_id, org, "resource").check_active()
    kind.update(**command.changes)
    return Decision([kind], views.appointment_type(kind))


RETIRABLE: dict[str, type[Location | Resource | AppointmentType]] = {
    "location": Location,
    "resource": Resource,
    "appointment type": AppointmentType,
}


def retire(command: Retire, attempt: Attempt) -> Decision:
    """A location, resource or type takes no new bookings from now on; what was booked with
    it stays for the clinic to move or cancel. A retired resource leaves every pool."""
    command.context.acting.check_not_patient("retire reference data")
    org = command.organization_id
    target = attempt.load(RETIRABLE[command.retires], command.target_id, org, command.retires)
    target.retire(command.reason)
    changed: list[Any] = [target]
    if isinstance(target, Resource):
        organization = attempt.load(Organization, org, org, "organization")
        organization.delist_resource(target.id)
        changed.append(organization)
    view = {
        Location: views.location,
        Resource: views.resource,
        AppointmentType: views.appointment_type,
    }[type(target)](target)  # type: ignore[operator]
    return Decision(changed, view)


def set_weekly_hours(command: SetWeeklyHours, attempt: Attempt) -> Decision:
    """Replace the resource's weekly working hours (local wall-clock time per location)."""
    org = command.organization_id
    resource = attempt.load(Resource, command.resource_id, org, "resource")
    resource.check_active()
    for rule in command.hours:
        if rule.location_id not in resource.location_ids:
            raise InvalidRequestError(
                f"{resource.name} does not work at location {rule.location_id}"
            )
    schedule = attempt.load(Schedule, schedule_id(command.resource_id), org, "schedule")
    schedule.set_weekly_hours(tuple(command.hours))
    return Decision([schedule], views.schedule(schedule))


def add_schedule_exception(command: AddScheduleException, attempt: Attempt) -> Decision:
    """Leave, a holiday or blocked time (removes working time), or one-off extra hours."""
    org = command.organization_id
    resource = attempt.load(Resource, command.resource_id, org, "resource")
    if command.location_id and command.location_id not in resource.location_ids:
        raise InvalidRequestError(
            f"{resource.name} does not work at location {command.location_id}"
        )
    schedule = attempt.load(Schedule, schedule_id(command.resource_id), org, "schedule")
    schedule.add_exception(
        ScheduleException(
            uuid.uuid4(),
            command.kind,
            command.start,
            command.end,
            command.location_id,
            command.reason,
        )
    )
    return Decision([schedule], views.schedule(schedule))


def remove_schedule_exception(command: RemoveScheduleException, attempt: Attempt) -> Decision:
    org = command.organization_id
    schedule = attempt.load(Schedule, schedule_id(command.resource_id), org, "schedule")
    schedule.remove_exception(command.exception_id)
    return Decision([schedule], views.schedule(schedule))


REGISTER_ORGANIZATION = UseCase(register_organization)
REGISTER_LOCATION = UseCase(register_location)
REGISTER_RESOURCE = UseCase(register_resource)
SET_OVERBOOKING_ALLOWANCE = UseCase(set_overbooking_allowance)
DEFINE_APPOINTMENT_TYPE = UseCase(define_appointment_type)
SET_WEEKLY_HOURS = UseCase(set_weekly_hours)
ADD_SCHEDULE_EXCEPTION = UseCase(add_schedule_exception)
REMOVE_SCHEDULE_EXCEPTION = UseCase(remove_schedule_exception)
UPDATE_LOCATION = UseCase(update_location)
UPDATE_RESOURCE = UseCase(update_resource)
UPDATE_APPOINTMENT_TYPE = UseCase(update_appointment_type)
RETIRE = UseCase(retire)
