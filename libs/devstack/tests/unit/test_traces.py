"""The local trace receiver without a socket: OTLP/HTTP exports in protobuf and JSON taken
in (and bad ones refused, changing nothing), traces listed and shown in tree order, pages
escaped, the store file read back after a restart, and only the newest traces kept."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan

from clinic.devstack.traces import MAX_BODY_BYTES, Span, Trace, TraceStore, create_app

BASE = "http://traces.test"
PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}
T0 = 1_780_000_000_000_000_000  # 2026-05-28T20:26:40Z, in nanoseconds
MS = 1_000_000
TRACE = "5b8efff798038103d269b633813fc60c"


def span(
    name: str,
    span_id: str,
    parent: str = "",
    start_ms: int = 0,
    end_ms: int = 1,
    trace_id: str = TRACE,
    **extra: Any,
) -> OtlpSpan:
    return OtlpSpan(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent),
        name=name,
        start_time_unix_nano=T0 + start_ms * MS,
        end_time_unix_nano=T0 + end_ms * MS,
        **extra,
    )


def export(*by_service: tuple[str, list[OtlpSpan]]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(
                    attributes=[KeyValue(key="service.name", value=AnyValue(string_value=name))]
                ),
                scope_spans=[ScopeSpans(spans=spans)],
            )
            for name, spans in by_service
        ]
    )


def one_span_trace(n: int, name: str = "GET /healthz", service: str = "gateway") -> bytes:
    trace_id = f"{n + 1:032x}"
    one = span(name, f"{n + 1:016x}", start_ms=n, end_ms=n + 1, trace_id=trace_id)
    return bytes(export((service, [one])).SerializeToString())


@pytest.fixture
def store() -> TraceStore:
    return TraceStore(max_traces=50)


@pytest.fixture
async def http(store: TraceStore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(store))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def test_spans_of_two_services_sent_out_of_order_come_back_as_one_trace_in_tree_order(
    http: httpx.AsyncClient,
) -> None:
    # 1. The gateway's server span calls booking (a client span); booking's server span
    #    saves, and fails. Booking's spans arrive first, as they would from a busy exporter.
    booking = [
        span("save appointment", "00000000000000c2", "00000000000000c1", 3, 8,
             status={"code": 2, "message": "slot taken"}),
        span("POST /appointments", "00000000000000c1", "00000000000000b2", 2, 9,
             kind=OtlpSpan.SPAN_KIND_SERVER),
    ]  # fmt: skip
    gateway = [
        span("authorize", "00000000000000b1", "00000000000000a1", 0, 1),
        span("POST booking", "00000000000000b2", "00000000000000a1", 1, 10,
             kind=OtlpSpan.SPAN_KIND_CLIENT),
        span("POST /v1/appointments", "00000000000000a1", "", 0, 12,
             kind=OtlpSpan.SPAN_KIND_SERVER,
             attributes=[KeyValue(key="http.response.status_code",
                                  value=AnyValue(int_value=409))]),
    ]  # fmt: skip
    body = export(("booking", booking), ("gateway", gateway)).SerializeToString()

    # 2. The export is answered with an empty response in protobuf.
    answer = await http.post("/v1/traces", content=body, headers=PROTOBUF)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(answer.content).HasField("partial_success")

    # 3. The list has one trace, named by its root, covering both services.
    [summary] = (await http.get("/traces")).json()
    assert summary == {
        "trace_id": TRACE,
        "root_name": "POST /v1/appointments",
        "root_service": "gateway",
        "services": ["booking", "gateway"],
        "span_count": 5,
        "started": "2026-05-28T20:26:40.000000Z",
        "duration_ms": 12.0,
        "error": True,
    }

    # 4. The trace lists parents before children, siblings by start, with their depth.
    trace = (await http.get(f"/traces/{TRACE}")).json()
    assert [(s["depth"], s["service"], s["name"], s["kind"]) for s in trace["spans"]] == [
        (0, "gateway", "POST /v1/appointments", "SERVER"),
        (1, "gateway", "authorize", "INTERNAL"),
        (1, "gateway", "POST booking", "CLIENT"),
        (2, "booking", "POST /appointments", "SERVER"),
        (3, "booking", "save appointment", "INTERNAL"),
    ]
    root, *_, saving = trace["spans"]
    assert root["parent_span_id"] is None
    assert root["attributes"] == {"http.response.status_code": 409}
    assert (root["start"], root["end"], root["duration_ms"]) == (
        "2026-05-28T20:26:40.000000Z",
        "2026-05-28T20:26:40.012000Z",
        12.0,
    )
    assert saving["status"] == {"code": "ERROR", "message": "slot taken"}
    assert saving["parent_span_id"] == "00000000000000c1"


async def test_an_otlp_json_export_with_hex_ids_is_kept_and_answered_in_json(
    http: httpx.AsyncClient,
) -> None:
    # The spec's own example shape: ids in hex, enums and 64-bit integers as JSON allows.
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "emr-bridge"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "clinic"},
                        "spans": [
                            {
                                "traceId": TRACE.upper(),
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "",
                                "name": "consume booking.appointments.v1",
                                "kind": 5,
                                "startTimeUnixNano": str(T0),
                                "endTimeUnixNano": str(T0 + 2_500_000),
                                "attributes": [
                                    {"key": "messaging.batch.message_count",
                                     "value": {"intValue": "3"}},
                                    {"key": "retry", "value": {"boolValue": False}},
                                    {"key": "topics", "value": {"arrayValue": {"values": [
                                        {"stringValue": "a"}, {"stringValue": "b"}]}}},
                                ],
                                "events": [{"timeUnixNano": str(T0 + MS), "name": "handled"}],
                                "status": {"code": 1},
                                "someFieldFromTheFuture": True,
                            }
                        ],
                    }
                ],
            }
        ]
    }  # fmt: skip

    answer = await http.post("/v1/traces", content=json.dumps(body), headers=JSON)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {}
    [kept] = (await http.get(f"/traces/{TRACE}")).json()["spans"]
    assert (kept["trace_id"], kept["span_id"]) == (TRACE, "eee19b7ec3c1b174")
    assert (kept["service"], kept["kind"], kept["status"]["code"]) == (
        "emr-bridge",
        "CONSUMER",
        "OK",
    )
    assert kept["attributes"] == {
        "messaging.batch.message_count": 3,
        "retry": False,
        "topics": ["a", "b"],
    }
    assert kept["events"] == [
        {
            "name": "handled",
            "time": "2026-05-28T20:26:40.001000Z",
            "time_unix_nano": T0 + MS,
            "attributes": {},
        }
    ]
    assert kept["duration_ms"] == 2.5


async def test_a_gzip_compressed_export_is_unpacked_and_kept(http: httpx.AsyncClient) -> None:
    body = gzip.compress(one_span_trace(0))

    answer = await http.post(
        "/v1/traces", content=body, headers={**PROTOBUF, "content-encoding": "gzip"}
    )

    assert answer.status_code == 200
    assert [t["root_name"] for t in (await http.get("/traces")).json()] == ["GET /healthz"]


async def test_spans_with_invalid_ids_are_refused_and_counted_as_a_partial_success(
    http: httpx.AsyncClient, store: TraceStore
) -> None:
    good = span("good", "0000000000000001")
    zero_trace = span("zero trace id", "0000000000000002", trace_id="0" * 32)
    short_span = OtlpSpan(trace_id=bytes.fromhex(TRACE), span_id=b"\x01", name="short span id")
    body = export(("gateway", [good, zero_trace, short_span])).SerializeToString()

    answer = await http.post("/v1/traces", content=body, headers=PROTOBUF)

    assert answer.status_code == 200
    partial = ExportTraceServiceResponse.FromString(answer.content).partial_success
    assert partial.rejected_spans == 2
    assert "zero trace id" in partial.error_message
    assert "short span id" in partial.error_message
    assert [s.name for s in store.traces()[0].spans] == ["good"]


@pytest.mark.parametrize(
    ("headers", "body", "says"),
    [
        (PROTOBUF, b"\xff\xff\xff\xff", "not an OTLP ExportTraceServiceRequest in protobuf"),
        (JSON, b"{not json", "not JSON"),
        (JSON, b"[1, 2]", "must be a JSON object"),
        (JSON, b'{"resourceSpans": 7}', "not an OTLP/JSON trace export"),
        (
            JSON,
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "AAAA+/=="}]}]}]}',
            "traceId 'AAAA+/==' is not hex",
        ),
        ({**PROTOBUF, "content-encoding": "gzip"}, b"plain bytes", "not valid gzip"),
        ({**PROTOBUF, "content-encoding": "gzip"}, gzip.compress(b"x" * 100)[:20], "cut short"),
    ],
    ids=["protobuf", "json", "json-array", "json-shape", "json-base64-id", "gzip", "gzip-cut"],
)
async def test_a_malformed_export_is_a_400_that_says_why_and_keeps_nothing(
    http: httpx.AsyncClient,
    store: TraceStore,
    headers: dict[str, str],
    body: bytes,
    says: str,
) -> None:
    answer = await http.post("/v1/traces", content=body, headers=headers)

    assert answer.status_code == 400
    # The OTLP/HTTP rule: a google.rpc.Status in the request's encoding.
    if headers["content-type"] == "application/json":
        message = answer.json()["message"]
    else:
        assert answer.headers["content-type"] == "application/x-protobuf"
        message = Status.FromString(answer.content).message
    assert says in message
    assert len(store) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {**PROTOBUF, "content-encoding": "br"},
    ],
    ids=["text", "form", "brotli"],
)
async def test_an_unsupported_content_type_or_encoding_is_a_415(
    http: httpx.AsyncClient, store: TraceStore, headers: dict[str, str]
) -> None:
    answer = await http.post("/v1/traces", content=one_span_trace(0), headers=headers)

    assert answer.status_code == 415
    assert len(store) == 0


async def test_a_body_over_the_limit_is_a_413_sent_or_unpacked_and_keeps_nothing(
    http: httpx.AsyncClient, store: TraceStore
) -> None:
    too_large = b"\x00" * (MAX_BODY_BYTES + 1)
    sent = await http.post("/v1/traces", content=too_large, headers=PROTOBUF)
    unpacked = await http.post(
        "/v1/traces",
        content=gzip.compress(too_large),
        headers={**JSON, "content-encoding": "gzip"},
    )

    assert sent.status_code == 413
    assert "exceeds" in Status.FromString(sent.content).message
    assert unpacked.status_code == 413
    assert "unpacked body exceeds" in unpacked.json()["message"]
    assert len(store) == 0


async def test_the_list_filters_by_service_and_span_name_and_honours_its_limit(
    http: httpx.AsyncClient,
) -> None:
    for n, (name, service) in enumerate(
        [("GET /v1/slots", "availability"), ("POST /v1/holds", "booking"),
         ("GET /v1/slots", "gateway"), ("POST /v1/appointments", "booking")]
    ):  # fmt: skip
        await http.post("/v1/traces", content=one_span_trace(n, name, service), headers=PROTOBUF)

    def names(answer: httpx.Response) -> list[str]:
        return [t["root_name"] for t in answer.json()]

    assert names(await http.get("/traces")) == [
        "POST /v1/appointments",
        "GET /v1/slots",
        "POST /v1/holds",
        "GET /v1/slots",
    ]
    assert names(await http.get("/traces", params={"service": "booking"})) == [
        "POST /v1/appointments",
        "POST /v1/holds",
    ]
    assert names(await http.get("/traces", params={"name": "slots"})) == ["GET /v1/slots"] * 2
    assert len((await http.get("/traces", params={"limit": "1"})).json()) == 1
    refused = await http.get("/traces", params={"limit": "none"})
    assert refused.status_code == 400
    assert refused.headers["content-type"] == "application/problem+json"


async def test_an_unknown_trace_is_a_404_problem_as_json_and_as_a_page(
    http: httpx.AsyncClient,
) -> None:
    for path in (f"/traces/{TRACE}", f"/traces/{TRACE}.html"):
        answer = await http.get(path)

        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == "Trace not found"


async def test_the_pages_list_the_traces_and_draw_one_with_everything_escaped(
    http: httpx.AsyncClient,
) -> None:
    hostile = "<script>alert('x')</script>"
    spans = [
        span(hostile, "00000000000000a1", "", 0, 10, kind=OtlpSpan.SPAN_KIND_SERVER,
             attributes=[KeyValue(key="note", value=AnyValue(string_value="<b>bold</b>"))]),
        span("child & co", "00000000000000a2", "00000000000000a1", 5, 10,
             status={"code": 2, "message": "<i>failed</i>"}),
    ]  # fmt: skip
    body = export(('booking"><img src=x>', spans)).SerializeToString()
    await http.post("/v1/traces", content=body, headers=PROTOBUF)

    listing = await http.get("/")
    page = await http.get(f"/traces/{TRACE}.html")

    for answer in (listing, page):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/html")
        assert "<script>" not in answer.text
        assert "<img" not in answer.text
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in answer.text
        assert '<th scope="col">' in answer.text
    assert f'href="/traces/{TRACE}.html"' in listing.text
    assert '<label for="service">' in listing.text
    assert "✖ error" in listing.text
    # The child is indented under its parent and its bar starts half-way along.
    assert "child &amp; co" in page.text
    assert "padding-left:1.75em" in page.text
    assert "left:50.000%;width:50.000%" in page.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in page.text
    assert "✖ error: &lt;i&gt;failed&lt;/i&gt;" in page.text
    assert "<i>" not in page.text


async def test_health_says_alive(http: httpx.AsyncClient) -> None:
    assert (await http.get("/healthz")).json() == {"status": "alive"}


def kept_span(n: int, trace: int) -> Span:
    return Span(
        trace_id=f"{trace + 1:032x}",
        span_id=f"{n + 1:016x}",
        parent_span_id=None,
        name=f"span {n} of trace {trace}",
        kind="SERVER",
        service="booking",
        start_ns=T0 + trace * MS,
        end_ns=T0 + trace * MS + 1500,
        status="UNSET",
        status_message="",
        attributes={"n": n, "nested": {"ok": [1.5, True, None]}},
    )


def test_only_the_newest_traces_are_kept(tmp_path: Path) -> None:
    store = TraceStore(max_traces=3)

    for trace in range(5):
        store.add([kept_span(0, trace)])
    store.add([kept_span(1, 2)])  # an older trace that receives a span stays

    kept = {t.trace_id for t in store.traces()}
    assert kept == {f"{n + 1:032x}" for n in (2, 3, 4)}
    assert store.trace(f"{1:032x}") is None


def test_the_store_file_brings_the_traces_back_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "traces" / "spans.jsonl"
    before = TraceStore(max_traces=10, path=path)
    before.add([kept_span(0, 0), kept_span(1, 0)])
    before.add([kept_span(2, 1)])
    with path.open("a") as file:
        file.write("{a line cut short by a crash\n")

    after = TraceStore(max_traces=10, path=path)

    assert [t.to_json() for t in after.traces()] == [t.to_json() for t in before.traces()]
    lines = path.read_text().splitlines()
    assert len(lines) == 3  # the unreadable line is gone
    assert json.loads(lines[0])["name"] == "span 0 of trace 0"  # a person can grep it


def test_a_restart_keeps_only_the_newest_traces_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "spans.jsonl"
    writer = TraceStore(max_traces=100, path=path)
    for trace in range(6):
        writer.add([kept_span(0, trace)])

    reader = TraceStore(max_traces=2, path=path)

    assert [t.trace_id for t in reader.traces()] == [f"{6:032x}", f"{5:032x}"]
    assert len(path.read_text().splitlines()) == 2


@st.composite
def forests(draw: st.DrawFn) -> list[Span]:
    """Spans whose parents are earlier spans, absent spans (not arrived yet) or none."""
    count = draw(st.integers(1, 25))
    spans: list[Span] = []
    for n in range(count):
        parent = draw(st.sampled_from([None, "ffffffffffffffff", *[s.span_id for s in spans]]))
        start = draw(st.integers(0, 50))
        spans.append(
            Span(TRACE, f"{n + 1:016x}", parent, f"s{n}", "INTERNAL", "svc", start, start + 1,
                 "UNSET", "", {})
        )  # fmt: skip
    return draw(st.permutations(spans))


@given(forests())
def test_a_trace_lists_every_span_once_each_after_its_parent_one_level_deeper(
    spans: list[Span],
) -> None:
    tree = Trace.of(TRACE, spans).tree

    assert sorted(s.span_id for _, s in tree) == sorted(s.span_id for s in spans)
    position = {s.span_id: i for i, (_, s) in enumerate(tree)}
    depth = {s.span_id: d for d, s in tree}
    for level, s in tree:
        if s.parent_span_id in position:
            assert position[s.parent_span_id] < position[s.span_id]
            assert level == depth[s.parent_span_id] + 1
        else:
            assert level == 0
