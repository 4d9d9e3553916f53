"""Prometheus metrics: one registry per app, HTTP RED metrics, the ``/metrics`` endpoint."""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Counters and histograms without their ``_created`` gauges: a series per labelled child
# that no dashboard or alert reads (Prometheus detects counter resets by itself).
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests answered, by route and status class.",
            ["service", "method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route.",
            ["service", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.service = service


def create_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


class RecordRequests:
    """ASGI middleware (not Starlette's BaseHTTPMiddleware, which costs far more per
    request): times each request and counts it by route template and status class."""

    UNTRACKED = frozenset({"/metrics", "/healthz", "/readyz"})

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless the app answers

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            # The router records the matched route in the (shared) scope.
            template = getattr(scope.get("route"), "path", "unmatched")
            if template not in self.UNTRACKED:
                metrics, method = self.metrics, scope["method"]
                metrics.latency.labels(metrics.service, method, template).observe(
                    time.perf_counter() - started
                )
                metrics.requests.labels(
                    metrics.service, method, template, f"{status // 100}xx"
                ).inc()


def install_metrics(app: FastAPI, registry: CollectorRegistry, service: str) -> None:
    """Count and time every request by its route template, and serve ``/metrics``."""
    app.add_middleware(RecordRequests, metrics=HttpMetrics(registry, service))

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
