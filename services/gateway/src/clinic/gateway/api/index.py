"""The API's front door: what it is and where its description lives (no token needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from clinic.gateway.api.answers import caller_of
from clinic.gateway.api.views import MeView

router = APIRouter(tags=["about"])


@router.get("/v1", summary="About this API")
async def about(request: Request) -> dict[str, Any]:
    """What this API is and where its OpenAPI document and the token's issuer are."""
    settings = request.app.state.settings
    return {
        "name": "Clinic scheduling API",
        "version": "v1",
        "openapi": "/openapi.json",
        "docs": "/docs",
        "token_issuer": settings.jwt_issuer,
        "audience": settings.jwt_audience,
    }


@router.get("/v1/me", response_model=MeView, summary="Who am I")
async def me(request: Request) -> dict[str, Any]:
    """The caller as the token names them: subject, role, organisation, locations (null:
    all), and for a patient which patient record they are."""
    caller = caller_of(request, "me.get")
    principal = caller.principal
    return {
        "subject": principal.subject,
        "role": str(principal.role),
        "organization_id": str(principal.organization_id),
        "location_ids": None
        if principal.location_ids is None
        else sorted(str(v) for v in principal.location_ids),
        "patient_id": str(principal.patient_id) if principal.patient_id else None,
    }
