"""Reference data: organisations, locations, resources, appointment types, and the
schedules (weekly hours and their exceptions) of resources."""

from __future__ import annotations

import uuid

from clinic.booking import views
from clinic.booking.commands import (
    AddScheduleException,
    DefineAppointmentType,
    RegisterLocation,
    RegisterOrganization,
    RegisterResource,
    RemoveScheduleException,
    SetOverbookingAllowance,
    SetWeeklyHours,
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
                attempt.load(Resource, requirement.resource_id, org, "resource")
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
    )
    organization.add_appointment_type(kind.id)
    return Decision([kind, organization], views.appointment_type(kind))


def set_weekly_hours(command: SetWeeklyHours, attempt: Attempt) -> Decision:
    """Replace the resource's weekly working hours (local wall-clock time per location)."""
    org = command.organization_id
    resource = attempt.load(Resource, command.resource_id, org, "resource")
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
