"""The services behind the gateway, reached over HTTP with pooled keep-alive connections.

- Every call has a connect timeout and an overall timeout.
- A call is retried only when retrying cannot do a thing twice: a connection that was never
  made, or a safe or idempotent call (GET, and booking's commands, which carry an
  Idempotency-Key booking answers once) that met a timeout, a broken connection or a 502,
  503 or 504. Retries back off and are bounded.
- A service that cannot be reached, or keeps answering 502/503/504, is a 503 problem with
  ``Retry-After`` for the client; one that fails (500) is a 502 problem. A service's own
  problems (4xx) are the client's answer.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from opentelemetry import propagate

from clinic.gateway.metrics import GatewayMetrics
from clinic.gateway.settings import GatewaySettings
from clinic.platform.problems import Problem

RETRIED_STATUSES = frozenset({502, 503, 504})


class ServiceUnavailableError(Problem):
    status = 503
    slug = "service-unavailable"
    title = "A service the answer needs is unavailable"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class BadGatewayError(Problem):
    status = 502
    slug = "bad-gateway"
    title = "A service the answer needs failed"


@dataclass(frozen=True)
class Reply:
    """A service's answer: its status, headers (lower-case names) and body (raw, and as
    JSON when it is)."""

    status: int
    headers: dict[str, str]
    content: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, parsed once however many readers ask."""
        return self._parsed

    @functools.cached_property
    def _parsed(self) -> Any:
        return orjson.loads(self.content) if self.content else None


Params = Mapping[str, Any] | None


def _query(params: Params) -> list[tuple[str, str]]:
    """Query pairs, a list value repeated (``location_id=a&location_id=b``)."""
    pairs: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        for one in value if isinstance(value, list | tuple) else [value]:
            if one is not None:
                pairs.append((name, str(one).lower() if isinstance(one, bool) else str(one)))
    return pairs


class Service:
    """One service's API: a pooled keep-alive client (aiohttp: a fraction of httpx's cost
    per call, measured in bench/gateway_bench.py), its timeouts and its retry policy. The
    session is made on first use, inside the server's event loop."""

    def __init__(
        self, name: str, base_url: str, settings: GatewaySettings, metrics: GatewayMetrics
    ) -> None:
        self.name = name
        self.metrics = metrics
        self.base_url = base_url.rstrip("/")
        self.retries = settings.upstream_retries
        self.retry_after = settings.retry_after_seconds
        self.timeout = aiohttp.ClientTimeout(
            total=settings.upstream_timeout_seconds,
            sock_connect=settings.upstream_connect_timeout_seconds,
        )
        self.pool_size = settings.upstream_pool_size
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.pool_size, keepalive_timeout=30),
                timeout=self.timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Params = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Reply:
        """``idempotent``: whether the call may be repeated after a timeout or a 5xx; by
        default, GET and HEAD are, and writes with an ``Idempotency-Key``."""
        if idempotent is None:
            idempotent = method in ("GET", "HEAD") or "Idempotency-Key" in (headers or {})
        started = time.perf_counter()
        outcome = "unavailable"
        try:
            reply = await self._call(method, path, params, body, headers, idempotent)
        except BadGatewayError:
            outcome = "5xx"
            raise
        else:
            outcome = f"{reply.status // 100}xx"
            return reply
        finally:
            self.metrics.upstream.labels(self.name, outcome).inc()
            self.metrics.upstream_seconds.labels(self.name).observe(time.perf_counter() - started)

    async def _call(
        self,
        method: str,
        path: str,
        params: Params,
        body: Any,
        headers: dict[str, str] | None,
        idempotent: bool,
    ) -> Reply:
        content = None if body is None else orjson.dumps(body)
        sent_headers = dict(headers or {})
        if content is not None:
            sent_headers["Content-Type"] = "application/json"
        _inject_trace(sent_headers)
        url = self.base_url + path
        query = _query(params)
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.metrics.upstream_retries.labels(self.name).inc()
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
            try:
                async with self._client().request(
                    method, url, params=query, data=content, headers=sent_headers
                ) as response:
                    status = response.status
                    payload = await response.read()
                    answered = {k.lower(): v for k, v in response.headers.items()}
            except aiohttp.ClientConnectorError as error:
                reason = f"cannot connect ({type(error).__name__})"
                continue  # nothing was sent: always safe to try again
            except (aiohttp.ClientError, TimeoutError) as error:
                reason = f"no answer ({type(error).__name__})"
                if idempotent:
                    continue
                raise ServiceUnavailableError(
                    f"{self.name} did not answer; the request may or may not have been "
                    "taken: send it again with the same Idempotency-Key to find out",
                    self.retry_after,
                ) from None
            if status in RETRIED_STATUSES:
                reason = f"answered {status}"
                if idempotent:
                    continue
                break
            if status >= 500:
                raise BadGatewayError(
                    f"{self.name} failed to answer (HTTP {status}); it is logged there with "
                    "the request's trace id"
                )
            return Reply(status, answered, payload)
        raise ServiceUnavailableError(
            f"{self.name} is unavailable ({reason}); try again shortly", self.retry_after
        )


def _inject_trace(headers: dict[str, str]) -> None:
    """The request's trace goes on to the service (W3C ``traceparent``)."""
    propagate.inject(headers)


@dataclass
class Services:
    booking: Service
    availability: Service
    notification: Service

    @classmethod
    def from_settings(cls, settings: GatewaySettings, metrics: GatewayMetrics) -> Services:
        return cls(
            booking=Service("booking", settings.booking_url, settings, metrics),
            availability=Service("availability", settings.availability_url, settings, metrics),
            notification=Service("notification", settings.notification_url, settings, metrics),
        )

    async def close(self) -> None:
        for service in (self.booking, self.availability, self.notification):
            await service.close()
