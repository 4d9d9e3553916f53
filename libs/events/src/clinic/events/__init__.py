"""Wire contracts shared by every clinic service.

This package declares, in one place, what travels between services: the event envelope,
the typed payloads and the topic names. It holds no behaviour beyond (de)serialisation,
so producers and consumers can depend on it without depending on each other.
"""

from clinic.events.catalog import payload_types
from clinic.events.envelope import Actor, Envelope, TraceContext, UnknownEventTypeError
from clinic.events.payload import EventPayload
from clinic.events.topics import ALL_TOPICS, EVENT_TOPIC_CONFIG, Topic, topic_config

__all__ = [
    "ALL_TOPICS",
    "EVENT_TOPIC_CONFIG",
    "Actor",
    "Envelope",
    "EventPayload",
    "Topic",
    "TraceContext",
    "UnknownEventTypeError",
    "payload_types",
    "topic_config",
]
