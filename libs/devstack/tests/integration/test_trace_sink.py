"""The local trace receiver over a real socket on 127.0.0.1: spans exported by the
OpenTelemetry SDK from two services that share a trace (a ``traceparent`` passed between
them) arrive as one trace, and the command ``make up OBS=1`` runs keeps its traces across a
restart (no PostgreSQL or Kafka needed)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from clinic.devstack.components import free_port
from clinic.devstack.traces import TraceSink, covering

PROPAGATOR = TraceContextTextMapPropagator()


@pytest.fixture
def sink() -> Iterator[TraceSink]:
    with TraceSink() as running:
        yield running


def service(name: str, endpoint: str, *, batch: bool = False, gzip: bool = False) -> TracerProvider:
    """A service's tracer provider exporting as the platform's does (OTLP/HTTP, protobuf)."""
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    exporter = OTLPSpanExporter(
        endpoint=f"{endpoint}/v1/traces",
        compression=Compression.Gzip if gzip else Compression.NoCompression,
        timeout=5,
    )
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


def test_spans_of_two_services_sharing_a_traceparent_arrive_as_one_trace_in_tree_order(
    sink: TraceSink,
) -> None:
    gateway = service("gateway", sink.url, batch=True)
    booking = service("booking", sink.url, gzip=True)

    def booking_serves(headers: dict[str, str]) -> None:
        # 2. Booking continues the trace from the header it received, and its save fails.
        tracer = booking.get_tracer("test.booking")
        context = PROPAGATOR.extract(headers)
        with (
            tracer.start_as_current_span(
                "POST /appointments", context=context, kind=trace.SpanKind.SERVER
            ),
            tracer.start_as_current_span("save appointment") as saving,
        ):
            saving.add_event("slot checked", {"slot.free": False})
            saving.set_status(trace.StatusCode.ERROR, "slot taken")

    try:
        # 1. The gateway serves a request and calls booking, passing its traceparent.
        tracer = gateway.get_tracer("test.gateway")
        with tracer.start_as_current_span(
            "POST /v1/appointments", kind=trace.SpanKind.SERVER
        ) as served:
            served.set_attribute("http.route", "/v1/appointments")
            with tracer.start_as_current_span("POST", kind=trace.SpanKind.CLIENT):
                headers: dict[str, str] = {}
                PROPAGATOR.inject(headers)
                booking_serves(headers)
        trace_id = format(served.get_span_context().trace_id, "032x")
        gateway.force_flush()

        # 3. The sink has one trace spanning both, parents before children.
        found = sink.wait_for(covering("gateway", "booking"), within=10)
    finally:
        gateway.shutdown()
        booking.shutdown()

    assert found.trace_id == trace_id
    assert [(depth, s.service, s.name, s.kind) for depth, s in found.tree] == [
        (0, "gateway", "POST /v1/appointments", "SERVER"),
        (1, "gateway", "POST", "CLIENT"),
        (2, "booking", "POST /appointments", "SERVER"),
        (3, "booking", "save appointment", "INTERNAL"),
    ]
    assert found.root.attributes == {"http.route": "/v1/appointments"}
    saving_kept = found.spans[-1]
    assert (saving_kept.status, saving_kept.status_message) == ("ERROR", "slot taken")
    assert [(e.name, e.attributes) for e in saving_kept.events] == [
        ("slot checked", {"slot.free": False})
    ]
    assert found.error

    # 4. A person sees the same over HTTP: the list, the JSON and the page.
    [summary] = httpx.get(f"{sink.url}/traces", timeout=5).json()
    assert (summary["trace_id"], summary["services"]) == (trace_id, ["booking", "gateway"])
    spans = httpx.get(f"{sink.url}/traces/{trace_id}", timeout=5).json()["spans"]
    assert [s["depth"] for s in spans] == [0, 1, 2, 3]
    page = httpx.get(f"{sink.url}/traces/{trace_id}.html", timeout=5)
    assert page.status_code == 200
    assert "save appointment" in page.text
    assert "slot taken" in page.text


def test_waiting_for_a_trace_that_never_comes_names_the_traces_seen(sink: TraceSink) -> None:
    gateway = service("gateway", sink.url)
    try:
        with gateway.get_tracer("test").start_as_current_span("GET /v1/slots"):
            pass
    finally:
        gateway.shutdown()

    with pytest.raises(AssertionError) as failure:
        sink.wait_for(covering("gateway", "availability"), within=0.3)

    message = str(failure.value)
    assert "no trace matched covering(availability, gateway) within 0.3 s" in message
    assert "1 traces seen" in message
    assert "'GET /v1/slots': services ['gateway'], 1 spans" in message


def test_the_command_keeps_its_traces_in_its_store_file_across_a_restart(
    tmp_path: Path,
) -> None:
    store = tmp_path / "traces.jsonl"
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def run() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "clinic.devstack.traces", "--port", str(port),
                   "--store", str(store)]  # fmt: skip
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        return process
                except httpx.TransportError:
                    pass
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the trace sink never answered /healthz"
                time.sleep(0.1)
        except BaseException:
            stop(process)
            raise

    def stop(process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        process.wait(timeout=10)

    first = run()
    try:
        booking = service("booking", url)
        with booking.get_tracer("test").start_as_current_span("POST /holds"):
            pass
        booking.shutdown()
    finally:
        stop(first)

    second = run()
    try:
        [kept] = httpx.get(f"{url}/traces", timeout=5).json()
    finally:
        stop(second)

    assert (kept["root_name"], kept["services"]) == ("POST /holds", ["booking"])
    assert '"name":"POST /holds"' in store.read_text()
