"""Tenancy: an aggregate is only ever visible to the organisation that owns it."""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from clinic.booking.domain.errors import NotFoundError
from clinic.booking.domain.reference import Organization

A = TypeVar("A", bound=Aggregate)


def owned(aggregate: Any, cls: type[A], organization_id: UUID, kind: str, aggregate_id: UUID) -> A:
    """``aggregate`` as a ``cls`` of this organisation; anything else is simply not found, so
    another tenant's ids reveal nothing."""
    if not isinstance(aggregate, cls):
        raise NotFoundError(kind, aggregate_id)
    owner = (
        aggregate.id
        if isinstance(aggregate, Organization)
        else getattr(aggregate, "organization_id", None)
    )
    if owner != organization_id:
        raise NotFoundError(kind, aggregate_id)
    return aggregate
