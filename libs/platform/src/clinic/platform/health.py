"""Liveness (``/healthz``) and readiness (``/readyz``) endpoints.

Readiness runs every registered check concurrently, each bounded by a timeout, and answers
503 with the reason of each failing check, so an operator (or ``make up``) sees which
dependency is missing instead of a bare status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from fastapi.responses import JSONResponse

Check = Callable[[], Awaitable[None]]
"""A readiness check: returns when the dependency is usable, raises with the reason if not."""


class Readiness:
    def __init__(self, timeout_seconds: float) -> None:
        self.timeout = timeout_seconds
        self.checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    async def _run(self, check: Check) -> str:
        try:
            await asyncio.wait_for(check(), self.timeout)
        except TimeoutError:
            return f"timed out after {self.timeout:g}s"
        except Exception as error:  # noqa: BLE001 - the reason is the answer here
            return f"{type(error).__name__}: {error}".strip()
        return "ok"

    async def report(self) -> tuple[bool, dict[str, str]]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(self.checks[n]) for n in names))
        outcome = dict(zip(names, results, strict=True))
        return all(r == "ok" for r in results), outcome


def install_health(app: FastAPI, readiness: Readiness, service: str) -> None:
    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "alive", "service": service}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        ready, checks = await readiness.report()
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "service": service, "checks": checks},
            status_code=200 if ready else 503,
        )
