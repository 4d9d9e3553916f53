"""Dependencies of the booking routes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Path, Request

from clinic.booking.application import Bookings
from clinic.platform.problems import Problem


class NotReadyError(Problem):
    status = 503
    slug = "service-unavailable"
    title = "The booking service is still starting"


class MissingRequestIdError(Problem):
    status = 400
    slug = "missing-idempotency-key"
    title = "Every command needs a client request id"


# Both are ``async``: they never block, and a plain ``def`` dependency would cost each request
# a hop through the thread pool and back.
async def get_bookings(request: Request) -> Bookings:
    bookings = getattr(request.app.state, "bookings", None)
    if bookings is None:
        raise NotReadyError("the event store is not connected yet; retry shortly")
    return bookings  # type: ignore[no-any-return]


async def get_request_id(
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Client request id: repeating it returns the first answer.", max_length=200
        ),
    ] = None,
) -> str:
    if not idempotency_key:
        raise MissingRequestIdError(
            "send an Idempotency-Key header; a repeated key returns the first answer"
        )
    return idempotency_key


BookingsDep = Annotated[Bookings, Depends(get_bookings)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
Org = Annotated[UUID, Path(description="The organisation (tenant) id.")]
