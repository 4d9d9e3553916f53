"""Notification acts on scheduling only through the other services' HTTP APIs: booking runs
the command a patient asked for (with the patient as the actor, so the appointment's history
says who did it and by which channel), availability offers free times for a move.

Each command carries an idempotency key derived from what asked for it (one message's one
action), so a retry after a crash between booking's answer and ours gets booking's first
answer instead of a second command.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx


@dataclass(frozen=True)
class Answer:
    """Booking's answer: ``ok`` with the appointment, or its problem (status, title,
    detail); ``status`` 0 when booking could not be reached."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def definitive(self) -> bool:
        """Booking decided (done or refused); a retry would get the same answer."""
        return self.ok or 400 <= self.status < 500

    @property
    def detail(self) -> str:
        return str(self.body.get("detail") or self.body.get("title") or f"HTTP {self.status}")


@dataclass(frozen=True)
class Acting:
    patient_id: UUID | None
    """The patient who asked; None: notification itself (the waitlist's holds)."""
    channel: str
    """How the patient asked: link (a page opened from a message) or sms (a reply)."""
    key: str
    """The idempotency key."""
    correlation_id: UUID | None = None

    def headers(self) -> dict[str, str]:
        actor = ("notification", "system") if self.patient_id is None else (
            str(self.patient_id), "patient")  # fmt: skip
        headers = {
            "Idempotency-Key": self.key,
            "X-Actor-Id": actor[0],
            "X-Actor-Role": actor[1],
            "X-Actor-Channel": self.channel,
        }
        if self.correlation_id is not None:
            headers["X-Correlation-Id"] = str(self.correlation_id)
        return headers


class Booking:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def _command(
        self, org: UUID, appointment: UUID, verb: str, acting: Acting, body: dict[str, Any]
    ) -> Answer:
        return await self._post(f"/organizations/{org}/appointments/{appointment}/{verb}",
                                acting, body)  # fmt: skip

    async def _post(self, path: str, acting: Acting, body: dict[str, Any]) -> Answer:
        try:
            response = await self._http.post(path, json=body, headers=acting.headers())
        except httpx.HTTPError as error:
            return Answer(0, {"detail": f"booking did not answer: {type(error).__name__}"})
        try:
            parsed = response.json()
        except ValueError:
            parsed = {}
        return Answer(response.status_code, parsed if isinstance(parsed, dict) else {})

    async def confirm_attendance(self, org: UUID, appointment: UUID, acting: Acting) -> Answer:
        return await self._command(org, appointment, "confirm-attendance", acting, {})

    async def cancel(self, org: UUID, appointment: UUID, acting: Acting, reason: str) -> Answer:
        return await self._command(org, appointment, "cancel", acting, {"reason": reason})

    async def reschedule(
        self, org: UUID, appointment: UUID, acting: Acting, start: dt.datetime
    ) -> Answer:
        body = {"start": start.isoformat()}
        return await self._command(org, appointment, "reschedule", acting, body)

    async def confirm_hold(self, org: UUID, appointment: UUID, acting: Acting) -> Answer:
        """Turn a hold into a booking."""
        return await self._command(org, appointment, "confirm", acting, {})

    async def hold(
        self,
        org: UUID,
        acting: Acting,
        patient: UUID,
        appointment_type: UUID,
        location: UUID,
        start: dt.datetime,
        resources: dict[str, str],
        minutes: int,
    ) -> Answer:
        body = {"appointment_type_id": str(appointment_type), "location_id": str(location),
                "patient_id": str(patient), "start": start.isoformat(),
                "preferred_resources": resources, "hold_minutes": minutes}  # fmt: skip
        return await self._post(f"/organizations/{org}/holds", acting, body)

    async def leave_waitlist(self, org: UUID, entry: UUID, acting: Acting, reason: str) -> Answer:
        return await self._post(
            f"/organizations/{org}/waitlist/{entry}/leave", acting, {"reason": reason}
        )

    async def close(self) -> None:
        await self._http.aclose()


@dataclass(frozen=True)
class FreeStart:
    start: dt.datetime
    local_start: str


class Availability:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def free_starts(
        self,
        org: UUID,
        appointment_type: UUID,
        location: UUID,
        first: dt.date,
        last: dt.date,
        limit: int,
    ) -> list[FreeStart] | None:
        """Free starts a patient may book, earliest first; None when availability could not
        answer (the page says so instead of offering nothing)."""
        params: dict[str, Any] = {
            "appointment_type_id": str(appointment_type),
            "location_id": str(location),
            "from": first.isoformat(),
            "to": last.isoformat(),
            "limit": limit,
            "booked_by": "patient",
        }
        try:
            response = await self._http.get(f"/organizations/{org}/slots", params=params)
            response.raise_for_status()
            slots = response.json()["slots"]
            return [
                FreeStart(dt.datetime.fromisoformat(s["start"]), str(s["local_start"]))
                for s in slots
            ]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    async def close(self) -> None:
        await self._http.aclose()
