"""A trace started where an event is published continues where it is consumed: the
traceparent travels in Kafka headers, and logs on both sides carry the same trace id."""

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace
from prometheus_client import CollectorRegistry

from clinic.platform.kafka import KafkaAccess, create_broker, ensure_topics
from clinic.platform.logs import JsonFormatter
from clinic.platform.settings import ServiceSettings
from clinic.platform.telemetry import create_tracer_provider


class ProbeSettings(ServiceSettings):
    service_name = "probe"


async def test_a_consumer_continues_the_trace_of_the_publisher(
    settings_for: Callable[..., ProbeSettings], schema_name: str
) -> None:
    settings = settings_for(ProbeSettings)
    provider = create_tracer_provider("probe", "")
    broker = create_broker(settings, provider, CollectorRegistry())
    topic = f"test.trace.{schema_name}"
    seen: dict[str, Any] = {}
    formatter = JsonFormatter("probe")

    @broker.subscriber(topic, group_id=f"trace-{schema_name}", auto_offset_reset="earliest")
    async def on_message(message: KafkaMessage) -> None:
        context = trace.get_current_span().get_span_context()
        seen["trace_id"] = format(context.trace_id, "032x")
        seen["traceparent"] = message.headers.get("traceparent")
        record = logging.LogRecord("probe", logging.INFO, __file__, 1, "consumed", None, None)
        seen["log"] = json.loads(formatter.format(record))

    await ensure_topics(KafkaAccess.of(settings), [topic], 1)
    await broker.start()
    try:
        with provider.get_tracer("test").start_as_current_span("book") as span:
            published_trace = format(span.get_span_context().trace_id, "032x")
            await broker.publish(b"{}", topic, key=str(uuid.uuid4()).encode())
        for _ in range(300):
            if "trace_id" in seen:
                break
            await asyncio.sleep(0.05)
    finally:
        await broker.stop()
    assert seen["traceparent"].split("-")[1] == published_trace
    assert seen["trace_id"] == published_trace
    assert seen["log"]["trace_id"] == published_trace
