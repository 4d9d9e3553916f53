"""Live updates for the web pages: ``GET /v1/live`` streams booking's appointment facts as
server-sent events, scoped to what the caller may see (see ``clinic.gateway.live``)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from clinic.gateway.api.answers import caller_of
from clinic.gateway.auth import Unauthenticated
from clinic.gateway.live import LiveHub, Stream, frame
from clinic.gateway.principal import Role
from clinic.platform.problems import Problem

router = APIRouter(prefix="/v1", tags=["live updates"])

EXAMPLE = (
    "retry: 3000\n\n"
    "event: live\ndata: {}\n\n"
    "event: appointment\nid: 0b4f6c1e-7d2a-4c1b-9e3f-5a6b7c8d9e0f\n"
    'data: {"event":"Appointment.Booked","appointment_id":"c8d7e6f5-a4b3-4c2d-9e1f-0a9b8c7d6e5f",'
    '"version":1,"occurred_at":"2026-12-03T08:15:02.481Z",'
    '"location_id":"5d1f8e0a-3b2c-5d4e-8f6a-7b8c9d0e1f2a","start":"2026-12-07T08:00:00Z",'
    '"end":"2026-12-07T08:20:00Z","status":"booked"}\n\n'
    ": keep-alive\n\n"
)


EVENT = {
    "title": "LiveEvent",
    "description": "One server-sent event of the stream (`event`, `id`, `data` lines).",
    "type": "object",
    "properties": {
        "event": {"enum": ["appointment", "live", "paused", "overflow"]},
        "id": {"type": "string", "description": "The fact's event id (appointment events)."},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "JSON: for `appointment`, event, appointment_id, version, "
            "occurred_at, location_id, start, end, status; `{}` otherwise.",
        },
        "retry": {"type": "integer"},
    },
    "required": ["event", "data"],
}


class TryLater(Problem):
    """A refusal that passes: the client may try again after ``Retry-After`` seconds."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class TooManyStreamsError(TryLater):
    status = 429
    slug = "too-many-live-streams"
    title = "Too many live streams for this user"


class LiveStream(StreamingResponse):
    """The stream's response: its place in the hub was taken when the request was let in
    (so concurrent requests cannot all pass the caps before any is counted) and is given
    back however the response ends, even one whose body never started."""

    def __init__(self, hub: LiveHub, stream: Stream, body: AsyncIterator[str]) -> None:
        super().__init__(body, media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})
        self.hub = hub
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.hub.close(self.stream)


class LiveUnavailableError(TryLater):
    status = 503
    slug = "live-updates-unavailable"
    title = "Live updates are not available"


@router.get(
    "/live",
    summary="Live updates (server-sent events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A stream of server-sent events until the client closes it.",
            "content": {"text/event-stream": {"schema": EVENT, "example": EXAMPLE}},
        },
        429: {"description": "This user holds GATEWAY_LIVE_MAX_STREAMS_PER_USER streams already."},
        503: {"description": "Live updates are off on this gateway, or too many streams are open."},
    },
)
async def live(
    request: Request,
    seconds: Annotated[
        int | None,
        Query(
            ge=1,
            le=86_400,
            description="Close the stream after this long (the client reconnects); "
            "default: open until the client closes it.",
        ),
    ] = None,
) -> Response:
    """Appointment facts as they happen, for a page that shows appointments: ``event:
    appointment`` with the appointment's id, the fact (``Appointment.Booked``, ...), its
    version, time and status; ``event: paused`` while the gateway cannot read them (refetch
    after the next ``event: live``); a comment as a heartbeat. Front desks, providers and
    clinic admins hear of their locations, organisation admins of the whole organisation,
    patients of their own appointments. The stream starts now: a page loads what it shows,
    then applies what comes; when it reconnects, it loads again. Send the bearer token as
    for any call (``fetch`` with a reader; ``EventSource`` cannot send it). A stream ends
    when its token expires (reconnect with a fresh one); a user holds at most
    ``GATEWAY_LIVE_MAX_STREAMS_PER_USER`` at once."""
    caller = caller_of(request, "live.stream")
    hub: LiveHub | None = request.app.state.live
    settings = caller.settings
    if hub is None:
        raise LiveUnavailableError(
            "live updates are off on this gateway (GATEWAY_LIVE_ENABLED)", 3600
        )
    if len(hub.streams) >= settings.live_max_streams:
        raise LiveUnavailableError(
            "too many live streams are open; try again soon", settings.retry_after_seconds
        )
    principal = caller.principal
    if hub.streams_of(principal.organization_id, principal.subject) >= (
        settings.live_max_streams_per_user
    ):
        raise TooManyStreamsError(
            f"this user has {settings.live_max_streams_per_user} live streams open "
            "(GATEWAY_LIVE_MAX_STREAMS_PER_USER); close one first",
            settings.retry_after_seconds,
        )
    patient = principal.role == Role.PATIENT
    stream = Stream(
        principal.organization_id,
        None if patient else principal.location_ids,
        principal.patient_id if patient else None,
        user=principal.subject,
    )
    heartbeat = settings.live_heartbeat_seconds
    ends = time.monotonic() + seconds if seconds is not None else math.inf
    if principal.expires_at is not None:  # no longer than the token it was opened with
        lasts = principal.expires_at - time.time()
        if lasts <= 0:  # accepted within the clock-skew leeway, but nothing left to stream
            raise Unauthenticated(
                "The access token has expired: sign in again for live updates.", reason="expired"
            )
        ends = min(ends, time.monotonic() + lasts)

    async def events() -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        while not stream.overflowed:
            left = ends - time.monotonic()
            if left <= 0:
                return
            try:
                item = await asyncio.wait_for(stream.queue.get(), min(heartbeat, left))
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            yield frame(item)
        yield frame("overflow")  # too far behind: the page reconnects and loads again

    hub.open(stream)  # counted now, before any other request's caps are checked
    return LiveStream(hub, stream, events())
