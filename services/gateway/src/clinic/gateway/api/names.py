"""Names of an organisation's resources (providers, rooms, devices), for slots and calendars.

Read from availability's directory and kept for ``TTL`` seconds per organisation, so a search
costs no extra call most of the time; a name changed meanwhile shows within the TTL. When the
directory cannot be read the answer goes out without names rather than not at all.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING
from uuid import UUID

from fastapi import Request

from clinic.gateway.upstream import ServiceUnavailableError

if TYPE_CHECKING:
    from clinic.gateway.api.answers import Caller

TTL = 30.0
MAX_PAGES = 50


class ResourceNames:
    def __init__(self) -> None:
        self._known: dict[UUID, tuple[float, dict[str, str]]] = {}
        self._locks: dict[UUID, asyncio.Lock] = {}

    @staticmethod
    def of(request: Request) -> ResourceNames:
        names: ResourceNames = request.app.state.resource_names
        return names

    async def names(self, caller: Caller) -> dict[str, str]:
        """Resource id (as text) -> name, for the caller's organisation."""
        org = caller.org
        known = self._known.get(org)
        if known is not None and time.monotonic() - known[0] < TTL:
            return known[1]
        lock = self._locks.setdefault(org, asyncio.Lock())
        async with lock:
            known = self._known.get(org)
            if known is not None and time.monotonic() - known[0] < TTL:
                return known[1]
            try:
                found = await self._read(caller)
            except ServiceUnavailableError:
                return known[1] if known is not None else {}
            self._known[org] = (time.monotonic(), found)
            return found

    async def _read(self, caller: Caller) -> dict[str, str]:
        found: dict[str, str] = {}
        params: dict[str, str | int] = {"include_retired": "true", "page_size": 200}
        for _ in range(MAX_PAGES):
            reply = await caller.get(
                caller.services.availability, f"/organizations/{caller.org}/resources", params
            )
            if not reply.ok:
                break
            page = reply.json()
            found.update({item["id"]: item["name"] for item in page["resources"]})
            if not page.get("next_page_token"):
                break
            params = {**params, "page_token": page["next_page_token"]}
        return found
