"""Dependencies of the booking routes."""

from __future__ import annotations

import re
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


class InvalidIfMatchError(Problem):
    status = 400
    slug = "invalid-if-match"
    title = "The If-Match header is malformed"


# One entity tag, strong or weak (FHIR clients send ``W/"7"``), holding a version: a positive
# integer of at most 19 digits, as the event store's versions are (a PostgreSQL bigint).
ENTITY_TAG = re.compile(r'(?:W/)?"([1-9][0-9]{0,18})"')


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


def expected_version(if_match: str | None) -> int | None:
    """The appointment version an ``If-Match`` header names: None without one or for ``*``
    (any version). One entity tag only: a client acting on what it read knows one version."""
    if if_match is None or if_match.strip() == "*":
        return None
    found = ENTITY_TAG.fullmatch(if_match.strip())
    if found is None:
        raise InvalidIfMatchError(
            'If-Match is one entity tag holding the version last read, such as "7" or W/"7" '
            "(the ETag of the appointment), or * for any version"
        )
    return int(found.group(1))


def entity_tag(version: int) -> str:
    """A version as the strong entity tag answers carry in ``ETag`` (and ``If-Match`` reads)."""
    return f'"{version}"'


async def get_expected_version(
    request: Request,
    if_match: Annotated[
        str | None,
        Header(
            description=(
                "The appointment's version as last read, as an entity tag: its ETag, or "
                '"7" or W/"7" for version 7 (``*``: any). The command is applied only if the '
                "appointment is still at that version, else 412 ``version-mismatch`` with "
                "``current_version``, and nothing is written."
            ),
        ),
    ] = None,
) -> int | None:
    # ``if_match`` documents the header; a header field sent twice is one list (RFC 9110,
    # 5.3), which ``if_match`` (the first field) would hide.
    fields = request.headers.getlist("if-match")
    return expected_version(", ".join(fields) if len(fields) > 1 else if_match)


BookingsDep = Annotated[Bookings, Depends(get_bookings)]
RequestIdDep = Annotated[str, Depends(get_request_id)]
ExpectedVersionDep = Annotated[int | None, Depends(get_expected_version)]
Org = Annotated[UUID, Path(description="The organisation (tenant) id.")]
