"""A local trace receiver for development: it takes the spans the services export over
OTLP/HTTP and keeps them where a person can read them: a page in the browser, JSON, and a
file of JSON lines to grep.

Why this and not Jaeger or the OpenTelemetry Collector: both ship as Go binaries (GitHub
releases) or container images, and this project's machines reach only package registries
(PyPI, npm, Maven Central, Debian) and have no Docker. None of those registries ships a
general-purpose trace store that runs as a plain process, so ``make up OBS=1`` starts this
small sink instead. It is not a collector: it keeps the newest traces (2000 by default) in
memory, optionally appends every span to a file, and shows them. Anything that speaks
OTLP/HTTP can send to it; point a real collector or Jaeger at the services instead by
setting ``OTEL_EXPORTER_OTLP_ENDPOINT`` to theirs.

FOR LOCAL DEVELOPMENT ONLY. It has no authentication and spans can carry identifiers from
requests: it listens on 127.0.0.1 unless told otherwise.

URLs (the base URL is what ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set to; exporters add
``/v1/traces``):

- ``POST /v1/traces``: the OTLP/HTTP trace export, as ``application/x-protobuf`` (what the
  Python SDK's ``OTLPSpanExporter`` sends) or ``application/json`` (OTLP/JSON: ids as hex
  strings), optionally gzip-compressed (``Content-Encoding: gzip``). Answers 200 with an
  ``ExportTraceServiceResponse`` in the request's encoding (``partial_success`` counts the
  spans refused for invalid ids); a malformed body is a 400, an unsupported content type
  or encoding a 415, a body over 8 MiB (sent or unpacked) a 413, each with a
  ``google.rpc.Status`` saying why (protobuf for a protobuf request, else JSON).
- ``GET /``: the traces, newest first, as a page; ``GET /traces/{trace_id}.html``: one
  trace as an indented tree with a waterfall of its spans.
- ``GET /traces?service=&name=&limit=``: the same list as JSON; ``service`` keeps traces
  with a span of that service, ``name`` those with a span whose name contains the text.
- ``GET /traces/{trace_id}``: one trace as JSON, its spans in tree order with their depth.
- ``GET /healthz``, ``GET /readyz``.

``python -m clinic.devstack.traces --port 4318 [--host 127.0.0.1] [--store FILE]
[--max-traces 2000]`` serves it (``TRACES_HOST``, ``TRACES_PORT``, ``TRACES_STORE``,
``TRACES_MAX_TRACES`` set the same). With a store file each span received is appended to it
as a JSON line, and the file is read back at start (keeping the newest traces), so traces
outlive a restart. Tests run it in-process with :class:`TraceSink`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import html
import json
import logging
import os
import socket
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from google.protobuf import json_format  # type: ignore[import-untyped]
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as OtlpSpan
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from clinic.platform.problems import PROBLEM_JSON, problem_body

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_TRACES = 2000
DEFAULT_LIMIT = 100
PAGE_ROWS = 500
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KINDS = {
    OtlpSpan.SPAN_KIND_UNSPECIFIED: "INTERNAL",  # as the spec says to read it
    OtlpSpan.SPAN_KIND_INTERNAL: "INTERNAL",
    OtlpSpan.SPAN_KIND_SERVER: "SERVER",
    OtlpSpan.SPAN_KIND_CLIENT: "CLIENT",
    OtlpSpan.SPAN_KIND_PRODUCER: "PRODUCER",
    OtlpSpan.SPAN_KIND_CONSUMER: "CONSUMER",
}
_STATUSES = {0: "UNSET", 1: "OK", 2: "ERROR"}
# google.rpc.Code values for the Status an error answer carries.
_RPC_CODES = {400: 3, 413: 8, 415: 3}


# --- What is kept ------------------------------------------------------------------------


@dataclass(frozen=True)
class SpanEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "time": rfc3339(self.time_ns),
            "time_unix_nano": self.time_ns,
            "attributes": self.attributes,
        }


@dataclass(frozen=True)
class Span:
    """One span as received, its ids in lower-case hex and its attributes as JSON values."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    """SERVER, CLIENT, PRODUCER, CONSUMER or INTERNAL."""
    service: str
    """The resource's ``service.name``."""
    start_ns: int
    end_ns: int
    status: str
    """UNSET, OK or ERROR."""
    status_message: str
    attributes: dict[str, Any]
    events: tuple[SpanEvent, ...] = ()

    @property
    def duration_ms(self) -> float:
        return round(max(self.end_ns - self.start_ns, 0) / 1e6, 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "name": self.name,
            "kind": self.kind,
            "service": self.service,
            "start": rfc3339(self.start_ns),
            "end": rfc3339(self.end_ns),
            "start_unix_nano": self.start_ns,
            "end_unix_nano": self.end_ns,
            "duration_ms": self.duration_ms,
            "status": {"code": self.status, "message": self.status_message},
            "attributes": self.attributes,
            "events": [event.to_json() for event in self.events],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Span:
        """The span :meth:`to_json` wrote (a line of the store file). Raises KeyError,
        TypeError or ValueError for anything else."""
        return cls(
            trace_id=_hex_id(data["trace_id"], 16),
            span_id=_hex_id(data["span_id"], 8),
            parent_span_id=_hex_id(data["parent_span_id"], 8) if data["parent_span_id"] else None,
            name=str(data["name"]),
            kind=str(data["kind"]),
            service=str(data["service"]),
            start_ns=int(data["start_unix_nano"]),
            end_ns=int(data["end_unix_nano"]),
            status=str(data["status"]["code"]),
            status_message=str(data["status"]["message"]),
            attributes=dict(data["attributes"]),
            events=tuple(
                SpanEvent(str(e["name"]), int(e["time_unix_nano"]), dict(e["attributes"]))
                for e in data["events"]
            ),
        )


@dataclass(frozen=True)
class Trace:
    """A trace's spans received so far, in tree order: parents before their children,
    siblings by start. A span whose parent has not arrived is shown as a root."""

    trace_id: str
    tree: tuple[tuple[int, Span], ...]
    """(depth, span) pairs in tree order; roots have depth 0."""

    @classmethod
    def of(cls, trace_id: str, spans: Iterable[Span]) -> Trace:
        return cls(trace_id, _tree(spans))

    @property
    def spans(self) -> list[Span]:
        return [span for _, span in self.tree]

    @property
    def root(self) -> Span:
        """The span with no parent (the earliest, if several), else the earliest span."""
        spans = self.spans
        parentless = [s for s in spans if s.parent_span_id is None]
        return min(parentless or spans, key=lambda s: (s.start_ns, s.span_id))

    @property
    def services(self) -> list[str]:
        return sorted({span.service for span in self.spans})

    @property
    def started_ns(self) -> int:
        return min(span.start_ns for span in self.spans)

    @property
    def ended_ns(self) -> int:
        return max(span.end_ns for span in self.spans)

    @property
    def duration_ms(self) -> float:
        return round(max(self.ended_ns - self.started_ns, 0) / 1e6, 3)

    @property
    def error(self) -> bool:
        return any(span.status == "ERROR" for span in self.spans)

    def summary(self) -> dict[str, Any]:
        root = self.root
        return {
            "trace_id": self.trace_id,
            "root_name": root.name,
            "root_service": root.service,
            "services": self.services,
            "span_count": len(self.tree),
            "started": rfc3339(self.started_ns),
            "duration_ms": self.duration_ms,
            "error": self.error,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "spans": [{**span.to_json(), "depth": depth} for depth, span in self.tree],
        }


def _tree(spans: Iterable[Span]) -> tuple[tuple[int, Span], ...]:
    by_id = {span.span_id: span for span in spans}
    children: dict[str | None, list[Span]] = {}
    for span in by_id.values():
        parent = span.parent_span_id if span.parent_span_id in by_id else None
        children.setdefault(parent, []).append(span)
    for siblings in children.values():
        siblings.sort(key=lambda s: (s.start_ns, s.span_id))
    ordered: list[tuple[int, Span]] = []
    seen: set[str] = set()

    def visit(span: Span, depth: int) -> None:
        stack = [(depth, span)]
        while stack:
            level, current = stack.pop()
            if current.span_id in seen:
                continue
            seen.add(current.span_id)
            ordered.append((level, current))
            stack.extend((level + 1, c) for c in reversed(children.get(current.span_id, [])))

    for root in children.get(None, []):
        visit(root, 0)
    # Spans in a parent cycle (only a broken exporter sends those) are still shown.
    for span in sorted(by_id.values(), key=lambda s: (s.start_ns, s.span_id)):
        if span.span_id not in seen:
            visit(span, 0)
    return tuple(ordered)


def rfc3339(unix_nanos: int) -> str:
    """``2026-03-01T09:30:00.123456Z``: UTC, to the microsecond."""
    moment = _EPOCH + timedelta(microseconds=unix_nanos // 1000)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _hex_id(value: Any, size: int) -> str:
    text = str(value).lower()
    raw = bytes.fromhex(text)
    if len(raw) != size or not any(raw):
        raise ValueError(f"{value!r} is not a {size}-byte id in hex")
    return raw.hex()


class TraceStore:
    """The newest ``max_traces`` traces in memory (the trace that received a span least
    recently goes first), and with ``path`` every span appended to that file as a JSON
    line, read back at start. Safe to use from several threads."""

    def __init__(self, max_traces: int = DEFAULT_MAX_TRACES, path: Path | None = None) -> None:
        if max_traces < 1:
            raise ValueError("max_traces must be at least 1")
        self.max_traces = max_traces
        self.path = path
        self._traces: OrderedDict[str, dict[str, Span]] = OrderedDict()
        self._lock = threading.Lock()
        if path is not None:
            self._load(path)

    def add(self, spans: Sequence[Span]) -> None:
        if not spans:
            return
        with self._lock:
            self._keep(spans)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as file:
                    file.writelines(_line(span) for span in spans)

    def _keep(self, spans: Iterable[Span]) -> None:
        for span in spans:
            trace = self._traces.setdefault(span.trace_id, {})
            trace[span.span_id] = span  # an exporter that sends a span again replaces it
            self._traces.move_to_end(span.trace_id)
        while len(self._traces) > self.max_traces:
            self._traces.popitem(last=False)

    def _load(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            return
        lines = unreadable = 0
        with path.open(encoding="utf-8", errors="replace") as file:
            for n, line in enumerate(file, 1):
                if not line.strip():
                    continue
                lines += 1
                try:
                    self._keep([Span.from_json(json.loads(line))])
                except (ValueError, KeyError, TypeError, AttributeError) as error:
                    unreadable += 1
                    log.warning("skipped line %d of %s: %s", n, path, error)
        kept = [span for trace in self._traces.values() for span in trace.values()]
        if len(kept) < lines:
            # Evicted and unreadable spans go, so the file stays about as large as memory.
            partial = path.with_name(path.name + ".partial")
            partial.write_text("".join(_line(span) for span in kept), encoding="utf-8")
            os.replace(partial, path)
        log.info(
            "read %d spans of %d traces from %s (%d unreadable lines skipped)",
            len(kept),
            len(self._traces),
            path,
            unreadable,
        )

    def traces(
        self, service: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[Trace]:
        """Newest (by start) first: all, or those with a span of ``service``, or with a span
        whose name contains ``name`` (ignoring case)."""
        with self._lock:
            kept = [(trace_id, list(spans.values())) for trace_id, spans in self._traces.items()]
        needle = name.casefold() if name else None
        found = [
            Trace.of(trace_id, spans)
            for trace_id, spans in kept
            if (not service or any(s.service == service for s in spans))
            and (not needle or any(needle in s.name.casefold() for s in spans))
        ]
        found.sort(key=lambda t: (t.started_ns, t.trace_id), reverse=True)
        return found if limit is None else found[:limit]

    def trace(self, trace_id: str) -> Trace | None:
        with self._lock:
            spans = list(self._traces.get(trace_id.lower(), {}).values())
        return Trace.of(trace_id.lower(), spans) if spans else None

    def services(self) -> list[str]:
        with self._lock:
            return sorted({s.service for spans in self._traces.values() for s in spans.values()})

    def __len__(self) -> int:
        with self._lock:
            return len(self._traces)


def _line(span: Span) -> str:
    return json.dumps(span.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"


# --- OTLP/HTTP ---------------------------------------------------------------------------


class ExportRefused(Exception):
    """An export the sink does not accept: ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def decode_export(
    body: bytes, media_type: str, content_encoding: str = "identity"
) -> ExportTraceServiceRequest:
    """The export request in ``body`` (OTLP protobuf or OTLP/JSON, maybe gzip-compressed).
    Raises :class:`ExportRefused`."""
    if content_encoding == "gzip":
        body = _gunzip(body)
    request = ExportTraceServiceRequest()
    if media_type == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError:
            raise ExportRefused(
                400, "the body is not an OTLP ExportTraceServiceRequest in protobuf"
            ) from None
        return request
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ExportRefused(400, "the body is not JSON") from None
    if not isinstance(data, dict):
        raise ExportRefused(400, "the body must be a JSON object (an ExportTraceServiceRequest)")
    _hex_ids_to_base64(data)
    try:
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise ExportRefused(400, f"the body is not an OTLP/JSON trace export: {error}") from None
    return request


def _gunzip(body: bytes) -> bytes:
    unpacker = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        unpacked = unpacker.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise ExportRefused(400, "the body is not valid gzip (Content-Encoding: gzip)") from None
    if len(unpacked) > MAX_BODY_BYTES:
        raise ExportRefused(413, f"the unpacked body exceeds {MAX_BODY_BYTES} bytes")
    if not unpacker.eof:
        raise ExportRefused(400, "the gzip body is cut short")
    return unpacked


def _hex_ids_to_base64(data: dict[str, Any]) -> None:
    """OTLP/JSON carries trace and span ids as hex strings, where protobuf's JSON mapping
    expects base64 for bytes: turn them into what ``json_format`` reads."""
    for resource_spans in _objects(data, "resourceSpans", "resource_spans"):
        for scope_spans in _objects(resource_spans, "scopeSpans", "scope_spans"):
            for span in _objects(scope_spans, "spans"):
                _rebase(span, "traceId", "trace_id", "spanId", "span_id")
                _rebase(span, "parentSpanId", "parent_span_id")
                for link in _objects(span, "links"):
                    _rebase(link, "traceId", "trace_id", "spanId", "span_id")


def _objects(data: dict[str, Any], *keys: str) -> list[dict[str, Any]]:
    for key in keys:
        value = data.get(key)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []  # anything else is left for json_format to refuse


def _rebase(data: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str):
            try:
                data[key] = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise ExportRefused(
                    400, f"{key} {value[:40]!r} is not hex (OTLP/JSON carries ids as hex)"
                ) from None


def spans_of(request: ExportTraceServiceRequest) -> tuple[list[Span], list[str]]:
    """The spans of an export, and why each span refused was refused (invalid ids)."""
    spans: list[Span] = []
    refused: list[str] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or "unknown_service")
        for scope_spans in resource_spans.scope_spans:
            for otlp in scope_spans.spans:
                problem = _id_problem(otlp)
                if problem:
                    refused.append(f"span {otlp.name[:80]!r} of {service}: {problem}")
                    continue
                spans.append(
                    Span(
                        trace_id=otlp.trace_id.hex(),
                        span_id=otlp.span_id.hex(),
                        parent_span_id=otlp.parent_span_id.hex() or None,
                        name=otlp.name,
                        kind=_KINDS.get(otlp.kind, "INTERNAL"),
                        service=service,
                        start_ns=otlp.start_time_unix_nano,
                        end_ns=otlp.end_time_unix_nano,
                        status=_STATUSES.get(otlp.status.code, "UNSET"),
                        status_message=otlp.status.message,
                        attributes=_attributes(otlp.attributes),
                        events=tuple(
                            SpanEvent(e.name, e.time_unix_nano, _attributes(e.attributes))
                            for e in otlp.events
                        ),
                    )
                )
    return spans, refused


def _id_problem(span: OtlpSpan) -> str | None:
    if len(span.trace_id) != 16 or not any(span.trace_id):
        return "its trace id must be 16 bytes, not all zero"
    if len(span.span_id) != 8 or not any(span.span_id):
        return "its span id must be 8 bytes, not all zero"
    if span.parent_span_id and len(span.parent_span_id) != 8:
        return "its parent span id must be 8 bytes or empty"
    return None


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which is None:
        return None
    return getattr(value, which)


# --- HTTP --------------------------------------------------------------------------------


def create_app(store: TraceStore) -> Starlette:
    """The receiver's HTTP API and pages (see the module's docstring)."""

    async def export(request: Request) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        answer_json = media_type != PROTOBUF
        if media_type not in (PROTOBUF, JSON):
            return _status_answer(
                415, f"send {PROTOBUF} or {JSON}, not {media_type or 'no content type'}", True
            )
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            return _status_answer(
                415, f"send gzip or no content encoding, not {encoding}", answer_json
            )
        body = await _bounded_body(request)
        if body is None:
            return _status_answer(413, f"the body exceeds {MAX_BODY_BYTES} bytes", answer_json)
        try:
            response = await run_in_threadpool(_accept, store, body, media_type, encoding)
        except ExportRefused as refused:
            return _status_answer(refused.status, refused.message, answer_json)
        if answer_json:
            return Response(json_format.MessageToJson(response, indent=None), media_type=JSON)
        return Response(response.SerializeToString(), media_type=PROTOBUF)

    def listing(request: Request) -> Response:
        try:
            limit = _limit(request.query_params.get("limit"))
        except ValueError as error:
            return _problem(400, "bad-request", "Bad request", str(error), request)
        service = request.query_params.get("service") or None
        name = request.query_params.get("name") or None
        return JSONResponse([t.summary() for t in store.traces(service, name, limit)])

    def one(request: Request) -> Response:
        trace = store.trace(request.path_params["trace_id"])
        if trace is None:
            return _unknown_trace(request)
        return JSONResponse(trace.to_json())

    def page(request: Request) -> Response:
        service = request.query_params.get("service") or None
        name = request.query_params.get("name") or None
        traces = store.traces(service, name)
        endpoint = f"{str(request.base_url).rstrip('/')}/v1/traces"
        return HTMLResponse(
            list_page(traces[:PAGE_ROWS], len(traces), store, service, name, endpoint)
        )

    def trace_page_route(request: Request) -> Response:
        trace = store.trace(request.path_params["trace_id"])
        if trace is None:
            return _unknown_trace(request)
        return HTMLResponse(trace_page(trace))

    def alive(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    return Starlette(
        routes=[
            Route("/v1/traces", export, methods=["POST"]),
            Route("/traces", listing),
            Route("/traces/{trace_id}.html", trace_page_route),
            Route("/traces/{trace_id}", one),
            Route("/", page),
            Route("/healthz", alive),
            Route("/readyz", ready),
        ]
    )


def _accept(
    store: TraceStore, body: bytes, media_type: str, encoding: str
) -> ExportTraceServiceResponse:
    spans, refused = spans_of(decode_export(body, media_type, encoding))
    store.add(spans)
    response = ExportTraceServiceResponse()
    if refused:
        response.partial_success.rejected_spans = len(refused)
        response.partial_success.error_message = "; ".join(refused[:10])
    return response


async def _bounded_body(request: Request) -> bytes | None:
    """The body, or None once it is over :data:`MAX_BODY_BYTES` (by its declared length or
    as it arrives)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _status_answer(status: int, message: str, as_json: bool) -> Response:
    """An OTLP/HTTP error answer: a google.rpc.Status in the request's encoding."""
    rpc = Status(code=_RPC_CODES.get(status, 3), message=message)
    # The rest of an oversized body is not read: the client must not reuse the connection.
    headers = {"Connection": "close"} if status == 413 else None
    if as_json:
        body = json_format.MessageToJson(rpc, indent=None)
        return Response(body, status_code=status, media_type=JSON, headers=headers)
    return Response(rpc.SerializeToString(), status, media_type=PROTOBUF, headers=headers)


def _problem(status: int, slug: str, title: str, detail: str, request: Request) -> Response:
    body = problem_body(status, slug, title, detail, request.url.path)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def _unknown_trace(request: Request) -> Response:
    trace_id = request.path_params["trace_id"]
    return _problem(
        404,
        "trace-not-found",
        "Trace not found",
        f"no trace {trace_id!r} is kept here (only the newest are)",
        request,
    )


def _limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise ValueError(f"limit must be a whole number from 1 to 10000, not {text!r}")
    return int(text)


# --- Pages -------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;
 background:#fff;margin:1.5rem;line-height:1.4}
a{color:#0b57d0}a:visited{color:#6b2ba8}
h1{font-size:1.5rem;margin:0 0 .5rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}
table{border-collapse:collapse;width:100%;margin-top:1rem}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #c8c8c8;vertical-align:top}
thead th{background:#f0f0f0;border-bottom:2px solid #767676}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.error{color:#a4161a;font-weight:600}
.ok{color:#1b5e20}
.unset{color:#4a4a4a}
form{display:flex;gap:1rem;align-items:end;flex-wrap:wrap}
label{display:flex;flex-direction:column;font-size:.9rem;font-weight:600}
input,select,button{font:inherit;padding:.25rem .4rem;border:1px solid #767676;border-radius:3px}
button{background:#0b57d0;color:#fff;border-color:#0b57d0;cursor:pointer}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}
dl.attrs{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .75rem;
 margin:.4rem 0 .2rem;font-size:.85rem}
dl.attrs dt{color:#444;font-family:ui-monospace,Menlo,monospace}
dl.attrs dd{margin:0;font-family:ui-monospace,Menlo,monospace;white-space:pre-wrap;
 word-break:break-all}
th[scope=row]{font-weight:normal}
th[scope=row] details p{margin:.3rem 0}
summary{cursor:pointer;font-weight:600;white-space:nowrap}
th.timeline{width:30%}
.track{position:relative;height:1rem;min-width:12rem;background:#f4f4f4;
 border:1px solid #d0d0d0}
.bar{position:absolute;top:0;bottom:0;min-width:2px;background:#1f5fa8}
.bar.error{background:#a4161a}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);
 white-space:nowrap}
ol.events{margin:.3rem 0;padding-left:1.2rem;font-size:.85rem}
"""


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _time_cell(unix_nanos: int) -> str:
    stamp = rfc3339(unix_nanos)
    shown = stamp[:23].replace("T", " ")  # to the millisecond
    return f'<time datetime="{html.escape(stamp)}">{html.escape(shown)}</time>'


def _duration(ms: float) -> str:
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 1000:
        return f"{ms:.2f} ms"
    return f"{ms / 1000:.2f} s"


def _status_cell(status: str, message: str = "") -> str:
    if status == "ERROR":
        text = "✖ error" + (f": {message}" if message else "")
        return f'<span class="error">{html.escape(text)}</span>'
    css = "ok" if status == "OK" else "unset"
    return f'<span class="{css}">{html.escape(status.lower())}</span>'


def list_page(
    traces: Sequence[Trace],
    matched: int,
    store: TraceStore,
    service: str | None,
    name: str | None,
    endpoint: str,
) -> str:
    """The traces, newest first, with a form to filter them by service and span name."""
    options = ['<option value="">every service</option>'] + [
        f'<option value="{html.escape(s)}"{" selected" if s == service else ""}>'
        f"{html.escape(s)}</option>"
        for s in store.services()
    ]
    rows = "".join(
        "<tr>"
        f"<td>{_time_cell(t.started_ns)}</td>"
        f'<td><a href="/traces/{html.escape(t.trace_id)}.html">{html.escape(t.root.name)}</a></td>'
        f"<td>{html.escape(', '.join(t.services))}</td>"
        f'<td class="num">{len(t.tree)}</td>'
        f'<td class="num">{_duration(t.duration_ms)}</td>'
        f"<td>{_status_cell('ERROR' if t.error else 'OK')}</td>"
        "</tr>"
        for t in traces
    )
    if not rows:
        rows = '<tr><td colspan="6">No traces yet.</td></tr>'
    shown = (
        f"{len(traces)} of {matched} matching traces"
        if matched > len(traces)
        else f"{matched} traces"
    )
    body = (
        "<h1>Traces</h1>"
        f"<p>The newest traces sent to <code>{html.escape(endpoint)}</code> (at most "
        f'{store.max_traces} are kept). As JSON: <a href="/traces">/traces</a>. '
        '<a href="/">Refresh</a>.</p>'
        '<form method="get" action="/" role="search">'
        f'<label for="service">Service<select id="service" name="service">{"".join(options)}'
        "</select></label>"
        '<label for="name">Span name contains<input id="name" name="name" type="search" '
        f'value="{html.escape(name or "")}"></label>'
        '<button type="submit">Filter</button></form>'
        f"<table><caption>{html.escape(shown)}, newest first</caption><thead><tr>"
        '<th scope="col">Started (UTC)</th><th scope="col">Root span</th>'
        '<th scope="col">Services</th><th scope="col" class="num">Spans</th>'
        '<th scope="col" class="num">Duration</th><th scope="col">Status</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
    )
    return _document("Traces", body)


def _attribute_list(attributes: dict[str, Any]) -> str:
    items = "".join(
        f"<dt>{html.escape(key)}</dt><dd>{html.escape(_shown(value))}</dd>"
        for key, value in sorted(attributes.items())
    )
    return f'<dl class="attrs">{items}</dl>' if items else ""


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def trace_page(trace: Trace) -> str:
    """One trace: its spans as an indented tree, each with a bar placed by its start and
    scaled by its duration, the attributes and events in a details element."""
    started, total = trace.started_ns, max(trace.ended_ns - trace.started_ns, 1)
    rows = []
    for depth, span in trace.tree:
        offset = min(max((span.start_ns - started) / total * 100, 0.0), 100.0)
        width = min(max((span.end_ns - span.start_ns) / total * 100, 0.0), 100.0 - offset)
        events = "".join(
            f"<li>+{html.escape(_duration((e.time_ns - started) / 1e6))} "
            f"{html.escape(e.name)}{_attribute_list(e.attributes)}</li>"
            for e in span.events
        )
        details = _attribute_list(span.attributes) or "<p>No attributes.</p>"
        if events:
            details += f'<p>Events:</p><ol class="events">{events}</ol>'
        details += f"<p>Span id <code>{html.escape(span.span_id)}</code></p>"
        bar_class = "bar error" if span.status == "ERROR" else "bar"
        rows.append(
            "<tr>"
            f'<th scope="row" style="padding-left:{0.5 + 1.25 * depth:.2f}em">'
            f'<span class="sr-only">level {depth + 1}: </span>'
            f"<details><summary>{html.escape(span.name)}</summary>{details}</details></th>"
            f"<td>{html.escape(span.service)}</td>"
            f"<td>{html.escape(span.kind.lower())}</td>"
            f"<td>{_status_cell(span.status, span.status_message)}</td>"
            f'<td class="num">+{_duration((span.start_ns - started) / 1e6)}</td>'
            f'<td class="num">{_duration(span.duration_ms)}</td>'
            f'<td><div class="track" aria-hidden="true"><div class="{bar_class}" '
            f'style="left:{offset:.3f}%;width:{width:.3f}%"></div></div></td>'
            "</tr>"
        )
    root = trace.root
    tid = html.escape(trace.trace_id)
    body = (
        '<p><a href="/">← All traces</a></p>'
        f"<h1>{html.escape(root.name)}</h1>"
        '<dl class="meta">'
        f"<dt>Trace id</dt><dd><code>{tid}</code> "
        f'(<a href="/traces/{tid}">JSON</a>)</dd>'
        f"<dt>Started</dt><dd>{_time_cell(trace.started_ns)} UTC</dd>"
        f"<dt>Duration</dt><dd>{_duration(trace.duration_ms)}</dd>"
        f"<dt>Services</dt><dd>{html.escape(', '.join(trace.services))}</dd>"
        f"<dt>Spans</dt><dd>{len(trace.tree)}</dd>"
        f"<dt>Status</dt><dd>{_status_cell('ERROR' if trace.error else 'OK')}</dd></dl>"
        "<table><caption>Spans in call order: a child under its parent; open a span's "
        "name for its attributes</caption><thead><tr>"
        '<th scope="col">Span</th><th scope="col">Service</th><th scope="col">Kind</th>'
        '<th scope="col">Status</th><th scope="col" class="num">Starts at</th>'
        '<th scope="col" class="num">Duration</th>'
        f'<th scope="col" class="timeline">Timeline (0 to {_duration(trace.duration_ms)})</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return _document(f"{root.name} · trace {trace.trace_id[:8]}", body)


# --- In-process, for tests -----------------------------------------------------------------


def covering(*services: str) -> Callable[[Trace], bool]:
    """A :meth:`TraceSink.wait_for` predicate: a trace with spans from every one of
    ``services``."""
    wanted = set(services)

    def predicate(trace: Trace) -> bool:
        return wanted <= set(trace.services)

    predicate.__name__ = f"covering({', '.join(sorted(wanted))})"
    return predicate


class TraceSink:
    """The receiver in-process, for tests: uvicorn in a thread of its own, on 127.0.0.1 at a
    free port. ``url`` is the base URL exporters are given (they post to ``/v1/traces``
    under it); :meth:`traces` and :meth:`trace` read what it kept.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`."""

    def __init__(self, max_traces: int = DEFAULT_MAX_TRACES, store: Path | None = None) -> None:
        self.store = TraceStore(max_traces, store)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the trace sink is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> TraceSink:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        self._port = int(listener.getsockname()[1])
        config = uvicorn.Config(
            create_app(self.store), log_config=None, access_log=False, lifespan="off"
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name="trace-sink", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:  # uvicorn says when it listens by a flag only
            if not self._thread.is_alive() or time.monotonic() > deadline:
                listener.close()
                raise RuntimeError("the trace sink's HTTP server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> TraceSink:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def traces(
        self, service: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[Trace]:
        return self.store.traces(service, name, limit)

    def trace(self, trace_id: str) -> Trace | None:
        return self.store.trace(trace_id)

    def wait_for(
        self, predicate: Callable[[Trace], bool], within: float = 10.0, every: float = 0.05
    ) -> Trace:
        """The newest trace ``predicate`` holds for, once one has arrived. Raises
        AssertionError after ``within`` seconds, listing the traces seen."""
        deadline = time.monotonic() + within
        while True:
            traces = self.store.traces()
            found = next((t for t in traces if predicate(t)), None)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(_nothing_matched(predicate, within, traces))
            time.sleep(every)


def _nothing_matched(predicate: Callable[[Trace], bool], within: float, seen: list[Trace]) -> str:
    wanted = getattr(predicate, "__name__", repr(predicate))
    lines = [f"no trace matched {wanted} within {within:g} s; {len(seen)} traces seen"]
    lines += [
        f"  {t.trace_id} {t.root.name!r}: services {t.services}, {len(t.tree)} spans"
        for t in seen[:20]
    ]
    if len(seen) > 20:
        lines.append(f"  ... and {len(seen) - 20} more")
    return "\n".join(lines)


# --- Command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m clinic.devstack.traces",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    env = os.environ.get
    parser.add_argument("--host", default=env("TRACES_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("TRACES_PORT", "4318")))
    parser.add_argument(
        "--store", type=Path, default=env("TRACES_STORE"), help="append spans to this file"
    )
    parser.add_argument(
        "--max-traces",
        type=int,
        default=int(env("TRACES_MAX_TRACES", str(DEFAULT_MAX_TRACES))),
        help="traces kept in memory (the oldest go first)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    store = TraceStore(args.max_traces, Path(args.store) if args.store else None)
    base = f"http://{args.host}:{args.port}"
    kept = f", keeping spans in {args.store}" if args.store else ""
    print(f"trace sink: OTLP/HTTP at {base}/v1/traces, traces at {base}/{kept}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            create_app(store), host=args.host, port=args.port, log_level="info", access_log=False
        )


if __name__ == "__main__":
    main()
