"""Rate limits per client (a token's subject) and per organisation, with the `limits` library.

Counters are sliding windows kept in the gateway's memory, so each replica limits on its own:
with N replicas a client gets up to N times the limit. Every answer says where the client
stands with the ``RateLimit`` and ``RateLimit-Policy`` fields of the IETF draft
(draft-ietf-httpapi-ratelimit-headers), and a refusal is a 429 problem with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from clinic.gateway.principal import Principal
from clinic.platform.problems import Problem


class RateLimitedError(Problem):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, headers: dict[str, str], scope: str) -> None:
        super().__init__(detail)
        self.headers = headers
        self.scope = scope
        """The limit met: client or organization."""


@dataclass(frozen=True)
class Standing:
    """Where a client stands after a request: the headers it gets."""

    headers: dict[str, str]


class RateLimits:
    def __init__(self, per_client: str, per_organization: str) -> None:
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self.policies: tuple[tuple[str, list[RateLimitItem]], ...] = (
            ("client", parse_many(per_client)),
            ("organization", parse_many(per_organization)),
        )

    async def check(self, principal: Principal) -> Standing:
        """Count one request; raise :class:`RateLimitedError` over a limit."""
        return await self._hit(
            {
                "client": f"{principal.organization_id}/{principal.subject}",
                "organization": str(principal.organization_id),
            }
        )

    async def check_address(self, address: str) -> Standing:
        """Count one request of a caller without a token (a message's link) against the
        client limit, by its network address."""
        return await self._hit({"client": f"address/{address}"})

    async def _hit(self, keys: dict[str, str]) -> Standing:
        tightest: tuple[float, str, RateLimitItem, int, int] | None = None
        for name, items in self.policies:
            if name not in keys:
                continue
            for item in items:
                allowed = await self.limiter.hit(item, name, keys[name])
                stats = await self.limiter.get_window_stats(item, name, keys[name])
                reset = max(1, math.ceil(stats.reset_time - time.time()))
                if not allowed:
                    headers = _fields(name, item, 0, reset)
                    headers["Retry-After"] = str(reset)
                    raise RateLimitedError(
                        f"the {name} limit of {item.amount} requests per "
                        f"{item.get_expiry()} s is reached; retry after {reset} s",
                        headers,
                        name,
                    )
                share = stats.remaining / item.amount
                if tightest is None or share < tightest[0]:
                    tightest = (share, name, item, stats.remaining, reset)
        if tightest is None:
            return Standing({})
        _, name, item, remaining, reset = tightest
        return Standing(_fields(name, item, remaining, reset))


def _fields(name: str, item: RateLimitItem, remaining: int, reset: int) -> dict[str, str]:
    return {
        "RateLimit-Policy": f'"{name}";q={item.amount};w={item.get_expiry()}',
        "RateLimit": f'"{name}";r={remaining};t={reset}',
    }
