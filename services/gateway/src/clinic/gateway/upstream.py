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
import json
from dataclasses import dataclass
from typing import Any

import httpx

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
    """A service's answer: its status, headers and body (raw, and as JSON when it is)."""

    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.content) if self.content else None


class Service:
    """One service's API: a pooled client, its timeouts and its retry policy."""

    def __init__(
        self,
        name: str,
        base_url: str,
        settings: GatewaySettings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.retries = settings.upstream_retries
        self.retry_after = settings.retry_after_seconds
        self.client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(
                settings.upstream_timeout_seconds,
                connect=settings.upstream_connect_timeout_seconds,
            ),
            limits=httpx.Limits(
                max_connections=settings.upstream_pool_size,
                max_keepalive_connections=settings.upstream_pool_size,
                keepalive_expiry=30,
            ),
            transport=transport,
        )

    async def close(self) -> None:
        await self.client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Reply:
        """``idempotent``: whether the call may be repeated after a timeout or a 5xx; by
        default, GET and HEAD are, and writes with an ``Idempotency-Key``."""
        if idempotent is None:
            idempotent = method in ("GET", "HEAD") or "Idempotency-Key" in (headers or {})
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        sent_headers = dict(headers or {})
        if content is not None:
            sent_headers["Content-Type"] = "application/json"
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(0.05 * 2**attempt, 1.0))
            try:
                response = await self.client.request(
                    method, path, params=params, content=content, headers=sent_headers
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                reason = f"cannot connect ({type(error).__name__})"
                continue  # nothing was sent: always safe to try again
            except httpx.TransportError as error:
                reason = f"no answer ({type(error).__name__})"
                if idempotent:
                    continue
                raise ServiceUnavailableError(
                    f"{self.name} did not answer; the request may or may not have been "
                    "taken: send it again with the same Idempotency-Key to find out",
                    self.retry_after,
                ) from None
            if response.status_code in RETRIED_STATUSES:
                reason = f"answered {response.status_code}"
                if idempotent:
                    continue
                break
            if response.status_code >= 500:
                raise BadGatewayError(
                    f"{self.name} failed to answer (HTTP {response.status_code}); it is logged "
                    "there with the request's trace id"
                )
            return Reply(response.status_code, response.headers, response.content)
        raise ServiceUnavailableError(
            f"{self.name} is unavailable ({reason}); try again shortly", self.retry_after
        )


@dataclass
class Services:
    booking: Service
    availability: Service
    notification: Service

    @classmethod
    def from_settings(
        cls, settings: GatewaySettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> Services:
        return cls(
            booking=Service("booking", settings.booking_url, settings, transport),
            availability=Service("availability", settings.availability_url, settings, transport),
            notification=Service("notification", settings.notification_url, settings, transport),
        )

    async def close(self) -> None:
        for service in (self.booking, self.availability, self.notification):
            await service.close()
