"""What every request to the gateway passes before a route sees it.

- Every answer carries security headers; answers under ``/v1/`` also say they are not to
  be cached or framed, and carry a content security policy that allows nothing.
- A request under ``/v1/`` needs a valid bearer token (401 otherwise, before its body is
  read), then is counted against its client's and organisation's rate limits (429 over
  them). The principal the token names is put in the request's state for the routes.
- A message's links (``/v1/links/{token}``) need no bearer token: the signed token is the
  credential; they are counted against the client limit by network address.
"""

from __future__ import annotations

from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clinic.gateway.auth import Unauthenticated
from clinic.gateway.metrics import GatewayMetrics
from clinic.gateway.principal import Principal
from clinic.gateway.rate_limits import RateLimitedError, RateLimits
from clinic.platform.problems import Problem, send_problem

API_PREFIX = "/v1/"
OPEN_PREFIX = "/v1/links/"
"""A message's links: the signed token in the path is the credential (no bearer token)."""

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"strict-transport-security", b"max-age=63072000; includeSubDomains"),
    (b"x-frame-options", b"DENY"),
)
API_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)


class Verifier(Protocol):
    async def verify(self, authorization: str | None) -> Principal: ...


class Guard:
    def __init__(
        self,
        app: ASGIApp,
        verifier: Verifier,
        rate_limits: RateLimits,
        metrics: GatewayMetrics,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.rate_limits = rate_limits
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not path.startswith(API_PREFIX):
            await self.app(scope, receive, _adding(send, SECURITY_HEADERS))
            return
        headers = SECURITY_HEADERS + API_HEADERS
        principal: Principal | None = None
        try:
            if path.startswith(OPEN_PREFIX):
                client = scope.get("client")
                standing = await self.rate_limits.check_address(client[0] if client else "-")
            else:
                principal = await self.verifier.verify(_header(scope, b"authorization"))
                standing = await self.rate_limits.check(principal)
        except Problem as problem:
            if isinstance(problem, RateLimitedError):
                self.metrics.rate_limited.labels(problem.scope).inc()
            elif isinstance(problem, Unauthenticated):
                self.metrics.auth_failures.labels(problem.reason).inc()
            else:
                self.metrics.auth_failures.labels(problem.slug).inc()
            extra = tuple(
                (k.lower().encode(), v.encode()) for k, v in (problem.headers or {}).items()
            )
            await send_problem(send, problem.body(path), *headers, *extra)
            return
        scope.setdefault("state", {})["principal"] = principal
        limits = tuple((k.lower().encode(), v.encode()) for k, v in standing.headers.items())
        await self.app(scope, receive, _adding(send, headers + limits))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _adding(send: Send, headers: tuple[tuple[bytes, bytes], ...]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {k.lower() for k, _ in message.get("headers", ())}
            added = [(k, v) for k, v in headers if k not in present]
            message = {**message, "headers": [*message.get("headers", ()), *added]}
        await send(message)

    return sending
