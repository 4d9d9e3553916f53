"""SMART Backend Services for EMR clients, under ``/fhir/{org}``: discovery
(``.well-known/smart-configuration``) and the OAuth2 token endpoint (``auth/token``).

The token endpoint speaks RFC 6749, not FHIR: a token, or ``{"error": ...,
"error_description": ...}`` as ``application/json`` with ``Cache-Control: no-store`` (the
OperationOutcome rewriting leaves plain JSON alone).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from clinic.emr_bridge import audit
from clinic.emr_bridge.auth import (
    REALM,
    SCOPED_TYPES,
    SIGNING_ALGORITHMS,
    TokenError,
    invalid_request,
    organization_id,
)
from clinic.emr_bridge.credentials import Authentication

router = APIRouter(prefix="/fhir/{org}", tags=["authentication"])
log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 20
AUTH_METHODS = ["private_key_jwt", "client_secret_basic", "client_secret_post"]


def fhir_base(request: Request, org: UUID | str) -> str:
    """The FHIR base URL of ``org`` as clients reach it (``EMR_BRIDGE_PUBLIC_URL``, else the
    request's own)."""
    public = request.app.state.settings.public_url.rstrip("/")
    return f"{public or str(request.base_url).rstrip('/')}/fhir/{org}"


def token_endpoint(request: Request, org: UUID | str) -> str:
    return f"{fhir_base(request, org)}/auth/token"


def scopes_supported() -> list[str]:
    per_type = [f"system/{t}.rs" for t in sorted(SCOPED_TYPES)]
    return ["system/*.rs", "system/*.cruds", *per_type, "system/Appointment.cud"]


def capability_security(token_url: str) -> dict[str, Any]:
    """``CapabilityStatement.rest.security``: SMART on FHIR, with the token endpoint."""
    return {
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [{"url": "token", "valueUri": token_url}],
            }
        ],
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 client credentials (SMART Backend Services)",
            }
        ],
        "description": "Bearer tokens from the token endpoint: private_key_jwt (RS384, ES384) "
        "or a client secret; SMART v2 system scopes (v1 spellings accepted).",
    }


@router.get(
    "/.well-known/smart-configuration",
    summary="SMART configuration",
    responses={200: {"content": {"application/json": {}}}},
)
async def smart_configuration(org: str, request: Request) -> JSONResponse:
    """How an EMR gets an access token for this organisation (SMART App Launch 2.x,
    Backend Services): the token endpoint, client authentication methods and signing
    algorithms, and the scopes there are."""
    org_id = organization_id(org)
    return JSONResponse(
        {
            "token_endpoint": token_endpoint(request, org_id),
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
            "scopes_supported": scopes_supported(),
            "capabilities": [
                "client-confidential-asymmetric",
                "client-confidential-symmetric",
                "permission-v1",
                "permission-v2",
            ],
        },
        headers={"Cache-Control": "max-age=3600"},
    )


TOKEN_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["grant_type", "scope"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "scope": {"type": "string", "example": "system/Appointment.rs system/Patient.rs"},
        "client_assertion_type": {
            "type": "string",
            "enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
        },
        "client_assertion": {
            "type": "string",
            "description": "A JWT signed (RS384 or ES384) with a key of the client's JWKS: "
            "iss = sub = client id, aud = this endpoint, exp at most 5 minutes ahead, a jti "
            "never used before.",
        },
        "client_id": {"type": "string"},
        "client_secret": {"type": "string", "description": "client_secret_post only."},
    },
}
TOKEN_ANSWER = {
    "type": "object",
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["bearer"]},
        "expires_in": {"type": "integer"},
        "scope": {"type": "string"},
    },
}
OAUTH_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "string",
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_scope",
                "unsupported_grant_type",
            ],
        },
        "error_description": {"type": "string"},
    },
}


@router.post(
    "/auth/token",
    summary="Get an access token (OAuth2 client credentials)",
    openapi_extra={
        "requestBody": {"required": True, "content": {FORM: {"schema": TOKEN_FORM}}},
    },
    responses={
        200: {"content": {"application/json": {"schema": TOKEN_ANSWER}}},
        400: {
            "description": "RFC 6749 error: invalid_request, invalid_scope, "
            "unsupported_grant_type.",
            "content": {"application/json": {"schema": OAUTH_ERROR}},
        },
        401: {
            "description": "RFC 6749 invalid_client: the client could not be authenticated.",
            "content": {"application/json": {"schema": OAUTH_ERROR}},
        },
    },
)
async def token(org: str, request: Request) -> JSONResponse:
    """An access token for an EMR client of this organisation, for the scopes it asks for
    (each one allowed to it): the client authenticates with a signed JWT
    (``private_key_jwt``, SMART Backend Services) or with its secret
    (``client_secret_basic`` or ``client_secret_post``)."""
    authentication: Authentication = request.app.state.auth
    try:
        form = await token_form(request)
        granted = await authentication.token(
            org, form, request.headers.get("authorization"), token_endpoint(request, org)
        )
    except TokenError as error:
        log.info(
            "token refused",
            extra={"organization": org, "error": error.error, "reason": error.description},
        )
        if error.client_id is not None:
            await _audit(request, UUID(org), error.client_id, 4, error.description)
        return token_error(error)
    await _audit(request, UUID(org), granted.client_id, 0, f"granted {granted.scope}")
    return JSONResponse(granted.body(), headers=NO_STORE)


def token_error(error: TokenError) -> JSONResponse:
    headers = dict(NO_STORE)
    if error.status == 401:
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def token_form(request: Request) -> dict[str, str]:
    """The form of a token request: each parameter once; an empty one counts as absent
    (RFC 6749 section 3.2)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != FORM:
        raise invalid_request(f"send the token request as {FORM}")
    raw = await request.body()
    try:
        text = raw.decode("ascii")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=bool(text),
            max_num_fields=MAX_FIELDS,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise invalid_request(
            "the body is not a form (application/x-www-form-urlencoded)"
        ) from None
    if any(not (name + value).isprintable() for name, value in pairs):
        raise invalid_request("a form field holds a control character")
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            raise invalid_request(f"{name} is given more than once")
        seen.add(name)
        if not (name + value).isprintable():
            raise invalid_request(f"{name} has control characters")
        if value:
            form[name] = value
    return form


async def _audit(request: Request, org: UUID, client_id: str, outcome: int, detail: str) -> None:
    entry = audit.AuditEntry(
        org,
        client_id,
        "E",
        audit.LOGIN,
        outcome=outcome,
        detail=detail,
        client_address=request.client.host if request.client else None,
        trace_id=audit.trace_id(),
    )
    await audit.record_request(request, entry)
