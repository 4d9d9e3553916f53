"""Topic names. Versioned as ``<domain>.<stream>.v<N>``; every topic is keyed by aggregate id."""

from enum import StrEnum


class Topic(StrEnum):
    """Every Kafka topic the platform publishes to.

    A breaking change to what a topic carries is a new topic version, never an edit here.
    """

    REFERENCE = "booking.reference.v1"
    """Organisations, locations, providers, rooms, devices, appointment types, patients."""

    SCHEDULES = "booking.schedules.v1"
    """Weekly working hours and their exceptions (leave, holidays, blocked or extra time)."""

    RESOURCE_DAYS = "booking.resource-days.v1"
    """Who holds which minutes of one resource on one local day."""

    APPOINTMENTS = "booking.appointments.v1"
    """The lifecycle of each appointment: held, booked, rescheduled, cancelled, ..."""

    WAITLIST = "booking.waitlist.v1"
    """Patients waiting for earlier time."""


ALL_TOPICS: tuple[Topic, ...] = tuple(Topic)


def dead_letter_topic(group_id: str) -> str:
    """Where a consumer group parks messages it could not process after its retries."""
    return f"deadletter.{group_id}.v1"
