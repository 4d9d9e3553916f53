"""One server span per request: it continues the caller's trace, is named by its route
template, and says how the request ended; health checks are not traced."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.telemetry import TelemetryConfig
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from clinic.platform.telemetry import FRAMEWORK_TELEMETRY_OFF, instrument_http

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


def _app() -> tuple[FastAPI, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    @app.get("/links/{token}/open")
    async def link(token: str) -> dict[str, str]:
        return {"link": "opened"}

    @app.get("/broken")
    async def broken() -> Response:
        return Response(status_code=503)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    instrument_http(app, provider)
    return app, exporter


async def test_a_request_continues_the_callers_trace_under_its_route_template() -> None:
    app, exporter = _app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        answer = await c.get("/items/7", headers={"traceparent": TRACEPARENT})
    assert answer.status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.name == "GET /items/{item_id}"
    assert span.kind == SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == CALLER_TRACE
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.path"] == "/items/7"


async def test_a_links_signed_token_is_recorded_by_its_name_never_its_value() -> None:
    app, exporter = _app()
    token = "eyJhcHBvaW50bWVudCI6IjEifQ.c2lnbmVk"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get(f"/links/{token}/open")).status_code == 200
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["url.path"] == "/links/{token}/open"
    assert token not in str(dict(span.attributes))
    assert token not in span.name


async def test_a_links_token_is_hidden_even_where_no_route_matched() -> None:
    app, exporter = _app()
    token = "eyJhcHBvaW50bWVudCI6IjEifQ.c2lnbmVk"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get(f"/v1/links/{token}/nowhere")).status_code == 404
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["url.path"] == "/v1/links/{token}/nowhere"


async def test_a_5xx_is_an_error_span_and_health_checks_make_no_span() -> None:
    app, exporter = _app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await c.get("/broken")
        await c.get("/healthz")
        await c.get("/nowhere")
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert set(spans) == {"GET /broken", "GET"}
    assert spans["GET /broken"].status.status_code == StatusCode.ERROR
    assert spans["GET"].attributes is not None
    assert spans["GET"].attributes["http.response.status_code"] == 404
    assert format(spans["GET /broken"].context.trace_id, "032x") != CALLER_TRACE


def _service_like_app(telemetry: TelemetryConfig | None) -> tuple[FastAPI, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI(telemetry={**(telemetry or {}), "tracer_provider": provider})

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    instrument_http(app, provider)
    return app, exporter


async def test_the_framework_traces_nothing_itself_so_a_request_is_one_span_not_several() -> None:
    """FastAPI traces by itself once a tracer provider is there (as every service installs
    one globally): a second server span and spans around the endpoint. Service apps are
    built with it off; without that, this request would make several spans."""
    spans_by: dict[str, list[str]] = {}
    for name, telemetry in (("platform", FRAMEWORK_TELEMETRY_OFF), ("framework default", None)):
        app, exporter = _service_like_app(telemetry)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/items/7")).status_code == 200
        spans_by[name] = [span.name for span in exporter.get_finished_spans()]
    assert spans_by["platform"] == ["GET /items/{item_id}"]
    assert len(spans_by["framework default"]) > 1
