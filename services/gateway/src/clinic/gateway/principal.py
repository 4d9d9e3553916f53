"""Who is calling: the principal an access token names, and the six roles of the public API.

A token names one organisation and one role. Clinic roles (front desk, provider, clinic
admin) may be limited to some of the organisation's locations; a patient is one patient
record of the organisation. Every request is scoped by it, and its subject becomes the
actor of every booking command it causes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Role(StrEnum):
    PATIENT = "patient"
    FRONT_DESK = "front_desk"
    PROVIDER = "provider"
    CLINIC_ADMIN = "clinic_admin"
    ORG_ADMIN = "org_admin"
    OPS = "ops"


CLINIC_ROLES = frozenset({Role.FRONT_DESK, Role.PROVIDER, Role.CLINIC_ADMIN})
"""Roles that may be limited to some locations (the token's ``locations`` claim)."""


@dataclass(frozen=True)
class Principal:
    """The caller, from a verified access token."""

    subject: str
    """The token's ``sub``: the user (1 to 200 printable characters)."""
    role: Role
    organization_id: UUID
    location_ids: frozenset[UUID] | None = None
    """Clinic roles: the locations they work at; None means every location of the
    organisation (org admins, ops, and clinic roles whose token names none)."""
    patient_id: UUID | None = None
    """The patient role: which patient record of the organisation the user is."""
    client_id: str | None = None
    """The app the token was issued to (``azp`` or ``client_id``), when the token says."""
    token_id: str | None = None
    """The token's ``jti``, when it has one."""
    expires_at: float | None = None
    """The token's ``exp`` (seconds since the epoch): what lasts, a live stream, ends then."""

    def may_see_location(self, location_id: UUID) -> bool:
        return self.location_ids is None or location_id in self.location_ids
