"""The bridge acts on scheduling only through the other services' HTTP APIs: booking decides
every change an EMR asks for (with the EMR client as the actor, role ``emr``, so the
appointment's history says which system did it and through which channel), availability
answers ``$find`` and free Slots. The bridge never decides availability itself.

Each command carries an idempotency key derived from what asked for it (an operation on one
proposal, a message control id), so a retry after a lost answer gets booking's first answer
instead of a second command.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx


@dataclass(frozen=True)
class Answer:
    """Another service's answer: ``status`` 0 when it could not be reached."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        return str(self.body.get("detail") or self.body.get("title") or f"HTTP {self.status}")

    @property
    def slug(self) -> str:
        return str(self.body.get("type", "")).rsplit("/", 1)[-1]


def idempotency_key(key: str) -> str:
    """``key`` as booking takes it (1 to 200 printable ASCII characters): kept when it is
    one, else its SHA-256 (a client's key may be long, or not ASCII), so distinct keys stay
    distinct."""
    if key.isascii() and key.isprintable() and len(key) <= 200:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Acting:
    """The EMR client a command comes from, and how."""

    client_id: str
    channel: str
    """fhir or hl7."""
    key: str
    """The idempotency key."""
    if_match: str | None = None
    """The appointment version booking must still have (an entity tag)."""

    def headers(self) -> dict[str, str]:
        headers = {
            "Idempotency-Key": idempotency_key(self.key),
            "X-Actor-Id": self.client_id[:200],
            "X-Actor-Role": "emr",
            "X-Actor-Channel": self.channel,
        }
        if self.if_match is not None:
            headers["If-Match"] = self.if_match
        return headers


async def _call(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    params: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    try:
        response = await http.request(method, path, json=body, params=params, headers=headers)
    except httpx.HTTPError as error:
        return Answer(0, {"detail": f"{type(error).__name__}"}, {})
    try:
        parsed = response.json()
    except ValueError:
        parsed = {}
    return Answer(
        response.status_code, parsed if isinstance(parsed, dict) else {}, dict(response.headers)
    )


class Booking:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, limits=limits
        )

    async def post(self, path: str, acting: Acting, body: dict[str, Any]) -> Answer:
        return await _call(self._http, "POST", path, body=body, headers=acting.headers())

    async def patch(self, path: str, acting: Acting, body: dict[str, Any]) -> Answer:
        return await _call(self._http, "PATCH", path, body=body, headers=acting.headers())

    async def reserve(
        self,
        org: UUID,
        acting: Acting,
        *,
        hold: bool,
        appointment_type: UUID,
        location: UUID,
        patient: UUID,
        start: dt.datetime,
        resources: dict[str, str],
        hold_minutes: int | None = None,
    ) -> Answer:
        body: dict[str, Any] = {
            "appointment_type_id": str(appointment_type),
            "location_id": str(location),
            "patient_id": str(patient),
            "start": start.isoformat(),
            "preferred_resources": resources,
        }
        if hold and hold_minutes:
            body["hold_minutes"] = hold_minutes
        path = f"/organizations/{org}/{'holds' if hold else 'appointments'}"
        return await self.post(path, acting, body)

    async def command(
        self, org: UUID, appointment: UUID, verb: str, acting: Acting, body: dict[str, Any]
    ) -> Answer:
        return await self.post(
            f"/organizations/{org}/appointments/{appointment}/{verb}", acting, body
        )

    async def patient_by_identifier(self, org: UUID, system: str, value: str) -> Answer:
        """Booking's patient with this identifier (the surviving record of a merge)."""
        return await _call(
            self._http,
            "GET",
            f"/organizations/{org}/patients",
            params={"identifier": f"{system}|{value}"},
        )

    async def appointment(self, org: UUID, appointment: UUID) -> Answer:
        return await _call(self._http, "GET", f"/organizations/{org}/appointments/{appointment}")

    async def close(self) -> None:
        await self._http.aclose()


class Availability:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        limits = httpx.Limits(max_connections=50, max_keepalive_connections=20)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, limits=limits
        )

    async def slots(
        self,
        org: UUID,
        appointment_type: UUID,
        locations: list[UUID],
        first: dt.date,
        last: dt.date,
        providers: list[UUID],
        limit: int,
    ) -> Answer:
        params: list[tuple[str, str]] = [
            ("appointment_type_id", str(appointment_type)),
            ("from", first.isoformat()),
            ("to", last.isoformat()),
            ("limit", str(limit)),
            ("booked_by", "clinic"),
            *(("location_id", str(x)) for x in locations),
            *(("provider_id", str(x)) for x in providers),
        ]
        return await _call(self._http, "GET", f"/organizations/{org}/slots", params=params)

    async def close(self) -> None:
        await self._http.aclose()
