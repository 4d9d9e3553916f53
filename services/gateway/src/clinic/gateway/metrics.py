"""The gateway's own metrics, beside the platform's HTTP ones (``http_requests_total`` and
``http_request_duration_seconds`` per route): how the services behind it answer, and what it
refuses before any route runs."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from clinic.platform.metrics import LATENCY_BUCKETS


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.upstream = Counter(
            "gateway_upstream_requests_total",
            "Calls to the services behind the gateway, by service and outcome: the status class "
            "of the final answer (2xx, 4xx, 5xx), or unavailable (no answer, or 502/503/504 "
            "after the retries allowed).",
            ["service", "outcome"],
            registry=registry,
        )
        self.upstream_seconds = Histogram(
            "gateway_upstream_request_duration_seconds",
            "Time a service took to answer a call from the gateway, retries included.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_retries = Counter(
            "gateway_upstream_retries_total",
            "Calls sent again after a refused connection, a timeout or a 502/503/504.",
            ["service"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "gateway_rate_limited_total",
            "Requests refused with 429, by the limit they met (client or organization).",
            ["scope"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "gateway_auth_failures_total",
            "Requests refused before any route for their token: missing, expired or invalid "
            "(401), or the identity provider's keys unavailable (503).",
            ["reason"],
            registry=registry,
        )
        self.replays = Counter(
            "gateway_idempotent_replays_total",
            "POSTs answered with the stored first answer to their Idempotency-Key.",
            registry=registry,
        )
