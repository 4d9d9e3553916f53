"""OpenTelemetry tracing: one provider per service, HTTP spans, Kafka header propagation.

One booking is one trace: the gateway's request span, booking's (the gateway sends
``traceparent``), then every event the booking decided carries that context in its envelope
(``Envelope.trace``); the relay publishes each event in a span of that trace (and Kafka's
headers carry it on), and each consumer applies it in a span of that trace too, even when it
applies a whole batch in one transaction (:func:`context_of`).

Traces go to an OTLP/HTTP collector when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; without it
spans are still created (so logs carry trace ids and Kafka headers carry ``traceparent``)
but not exported.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.events.envelope import Envelope, TraceContext
from clinic.platform.paths import shown_path


def create_tracer_provider(service: str, otlp_endpoint: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def install_global(provider: TracerProvider) -> None:
    """Make ``provider`` the process-wide one (once; later calls keep the first)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        trace.set_tracer_provider(provider)


# FastAPI (0.165 on) traces by itself once a global tracer provider is installed: a second
# server span per request, spans around dependencies and the endpoint, and its own metrics
# and logs. The platform's one span per request (TraceRequests) and Prometheus metrics
# already cover that; the framework's copy doubled every trace and cost about 0.2 ms per
# request (bench/gateway_bench.py, profiled). Every service app is built with it off.
FRAMEWORK_TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def instrument_http(app: FastAPI, provider: TracerProvider) -> None:
    """One server span per request (see :class:`TraceRequests`)."""
    app.add_middleware(TraceRequests, tracer=provider.get_tracer("clinic.platform.http"))


class TraceRequests:
    """One server span per HTTP request, continuing the caller's trace (W3C
    ``traceparent``), named by the route template (``GET /v1/appointments/{appointment_id}``)
    with the semantic conventions' attributes (method, route, path, status; an error status
    for a 5xx). Health, readiness and metrics requests are not traced. A path parameter that
    is a credential (a message link's signed ``token``) is recorded by its name, never its
    value: traces are read by more people than may act on a patient's appointment.

    A few lines instead of opentelemetry-instrumentation-fastapi: that instrumentation, which
    also finds the route by trying every route again and wraps every message sent, cost
    about half a millisecond per request, more than the gateway's own work
    (bench/gateway_bench.py)."""

    UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})

    def __init__(self, app: ASGIApp, tracer: trace.Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.UNTRACED:
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers") or ()
            if key in (b"traceparent", b"tracestate")
        }
        method = scope["method"]
        status = 500
        with self.tracer.start_as_current_span(
            method,
            context=propagate.extract(carrier) if carrier else None,
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method},
        ) as span:

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, sending)
            finally:
                # The router records the matched route in the (shared) scope.
                template = getattr(scope.get("route"), "path", None)
                if template is not None:
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
                span.set_attribute("url.path", shown_path(scope))
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(trace.Status(trace.StatusCode.ERROR))


def kafka_middleware(provider: TracerProvider) -> KafkaTelemetryMiddleware:
    """Spans around every publish and consume, context carried in Kafka headers."""
    return KafkaTelemetryMiddleware(tracer_provider=provider)


def context_of(trace_context: TraceContext | None) -> Context | None:
    """The OpenTelemetry context an event's W3C trace context names (its spans' parent)."""
    if trace_context is None:
        return None
    return context_from(trace_context.traceparent, trace_context.tracestate)


def context_from(traceparent: str | None, tracestate: str | None = None) -> Context | None:
    """The context a ``traceparent`` (and ``tracestate``) names; None without one. A
    malformed one names none: the span starts a trace of its own."""
    if not traceparent:
        return None
    carrier = {"traceparent": traceparent}
    if tracestate:
        carrier["tracestate"] = tracestate
    return propagate.extract(carrier)


def event_attributes(envelope: Envelope, topic: str) -> dict[str, str | int]:
    """The semantic conventions' messaging attributes of one event, with its identity."""
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.message.id": str(envelope.event_id),
        "clinic.event.type": envelope.type,
        "clinic.aggregate.id": str(envelope.aggregate_id),
        "clinic.aggregate.version": envelope.aggregate_version,
    }


def current_trace_context() -> TraceContext | None:
    """The W3C context of the current span, to stamp on events decided inside it."""
    carrier: dict[str, Any] = {}
    propagate.inject(carrier)
    if "traceparent" not in carrier:
        return None
    return TraceContext(traceparent=carrier["traceparent"], tracestate=carrier.get("tracestate"))
