"""``HandledRequest``: the first answer to a client request id, saved in the same transaction
as what the request changed. A repeated request finds it and gets the same answer, writing
nothing; a concurrent repeat loses the race on this aggregate's version and does the same."""

from __future__ import annotations

import functools
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from clinic.booking.domain.acting import BookingAggregate

REQUEST_NAMESPACE = uuid5(NAMESPACE_URL, "https://clinic.example/booking/request")


@functools.lru_cache(maxsize=4096)  # a command asks twice: to look up, and to create
def handled_request_id(organization_id: UUID, request_id: str) -> UUID:
    return uuid5(REQUEST_NAMESPACE, f"{organization_id}/{request_id}")


class HandledRequest(BookingAggregate):
    @staticmethod
    def create_id(organization_id: UUID, request_id: str) -> UUID:
        return handled_request_id(organization_id, request_id)

    @event("Handled")
    def __init__(
        self,
        organization_id: UUID,
        request_id: str,
        fingerprint: str,
        status: int,
        answer: dict[str, Any],
    ) -> None:
        self.organization_id = organization_id
        self.request_id = request_id
        self.fingerprint = fingerprint
        self.status = status
        self.answer = answer
