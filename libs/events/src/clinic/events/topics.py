"""Topic names. Versioned as ``<domain>.<stream>.v<N>``; every topic is keyed by aggregate id."""

from enum import StrEnum


class Topic(StrEnum):
    """Every Kafka topic the platform publishes to.

    A breaking change to what a topic carries is a new topic version, never an edit here.
    """

    REFERENCE = "booking.reference.v1"
    """Organisations, locations, providers, rooms, devices, appointment types. (Patient
    events travelled here until they moved to ``booking.patients.v1``.)"""

    PATIENTS = "booking.patients.v1"
    """Patients: the only topic with personal data, read only by those who need it."""

    SCHEDULES = "booking.schedules.v1"
    """Weekly working hours and their exceptions (leave, holidays, blocked or extra time)."""

    RESOURCE_DAYS = "booking.resource-days.v1"
    """Who holds which minutes of one resource on one local day."""

    APPOINTMENTS = "booking.appointments.v1"
    """The lifecycle of each appointment: held, booked, rescheduled, cancelled, ..."""

    WAITLIST = "booking.waitlist.v1"
    """Patients waiting for earlier time."""


ALL_TOPICS: tuple[Topic, ...] = tuple(Topic)

EVENT_TOPIC_CONFIG: dict[str, str] = {
    "cleanup.policy": "delete",
    "retention.ms": "-1",
    "retention.bytes": "-1",
}
"""Event topics keep every record for ever: a projection can always be rebuilt from the
topics alone (booking's event store remains the source of truth). Partition count and
replication factor are deployment settings (``KAFKA_PARTITIONS``, ``KAFKA_REPLICATION_FACTOR``)."""


def topic_config(topic: str, replication_factor: int) -> dict[str, str]:
    """The broker configuration a topic is created with: event topics keep everything; a
    write is acknowledged once two replicas have it where there are three or more."""
    config = dict(EVENT_TOPIC_CONFIG) if topic in ALL_TOPICS else {}
    config["min.insync.replicas"] = str(max(1, min(2, replication_factor - 1)))
    return config


def dead_letter_topic(group_id: str) -> str:
    """Where a consumer group parks messages it could not process after its retries."""
    return f"deadletter.{group_id}.v1"
