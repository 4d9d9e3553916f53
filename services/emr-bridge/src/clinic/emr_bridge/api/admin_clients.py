"""The registry of EMR clients, per organisation: ``/admin/organizations/{org}/emr-clients``.

For the hospital group's operators, not for EMRs: every request carries
``Authorization: Bearer <EMR_BRIDGE_ADMIN_TOKEN>``. With that setting unset the admin API is
off and answers 403 ``admin-api-disabled``; a missing or wrong token is 401. Errors are
problem+json. A client's secret is never answered, only stored as a scrypt hash.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import AfterValidator, BaseModel, Field, SecretStr, model_validator

from clinic.emr_bridge.auth import (
    MAX_KEYS,
    JwksError,
    ScopeError,
    check_jwks,
    parse_scopes,
)
from clinic.emr_bridge.credentials import (
    MAX_CLIENTS,
    Authentication,
    RegisteredClient,
    Registration,
    TooManyClientsError,
)
from clinic.platform.problem_handlers import problems
from clinic.platform.problems import Problem
from clinic.platform.strict import Line, Name, Short, StrictModel

log = logging.getLogger(__name__)


class AdminApiDisabled(Problem):
    status, slug, title = 403, "admin-api-disabled", "The admin API is off"


class AdminUnauthorized(Problem):
    status, slug, title = 401, "admin-unauthorized", "The admin token is missing or wrong"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": 'Bearer realm="clinic emr-bridge admin"'}


class EmrClientNotFound(Problem):
    status, slug, title = 404, "emr-client-not-found", "No such EMR client"


class TooManyEmrClients(Problem):
    status, slug, title = 409, "too-many-emr-clients", "The organisation has all its clients"


async def admin(request: Request) -> None:
    """Lets the request in only with the admin token (compared in constant time)."""
    expected = request.app.state.settings.admin_token
    if expected is None:
        raise AdminApiDisabled("set EMR_BRIDGE_ADMIN_TOKEN to register EMR clients")
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    # Digests of equal length: the comparison's time says nothing of the token's length.
    matches = hmac.compare_digest(
        hashlib.sha256(given.strip().encode("utf-8", "replace")).digest(),
        hashlib.sha256(expected.get_secret_value().encode()).digest(),
    )
    if scheme.lower() != "bearer" or not matches:
        raise AdminUnauthorized("send Authorization: Bearer <EMR_BRIDGE_ADMIN_TOKEN>")


router = APIRouter(
    prefix="/admin/organizations/{org}/emr-clients",
    tags=["admin: EMR clients"],
    dependencies=[Depends(admin)],
    responses=problems(401, 403),
)

ClientId = Annotated[
    str,
    Path(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$",
        description="The client's id (1 to 128 of A-Z a-z 0-9 . _ ~ -): the iss and sub of "
        "its assertions, or the user of its Basic credentials.",
    ),
]


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("control characters are not allowed")
    return value


KeyText = Annotated[str, Field(max_length=16384), AfterValidator(_printable)]
JwkValue = KeyText | Annotated[list[KeyText], Field(max_length=10)]
Jwk = Annotated[dict[Annotated[str, Field(max_length=20)], JwkValue], Field(max_length=20)]


class JsonWebKeySet(StrictModel):
    """The client's public keys (RFC 7517): RSA (RS384, at least 2048 bits) or EC P-384
    (ES384), each with its ``kid``."""

    keys: list[Jwk] = Field(min_length=1, max_length=MAX_KEYS)


def _jwks_url(value: str) -> str:
    parts = urlsplit(value)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return value
    if parts.scheme == "http" and _loopback(host):
        return value
    raise ValueError("an https URL (http only for localhost, in development)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().isprintable():
        raise ValueError("control characters are not allowed")
    return value


Secret = Annotated[SecretStr, Field(min_length=32, max_length=200), AfterValidator(_secret)]
JwksUrl = Annotated[Line, Field(max_length=2000), AfterValidator(_jwks_url)]


class EmrClientRegistration(StrictModel):
    """An EMR client: its name, the scopes it may ask for, and exactly one credential:
    ``jwks`` or ``jwks_url`` (``private_key_jwt``, SMART Backend Services), or ``secret``
    (``client_secret_basic`` / ``client_secret_post``)."""

    name: Name
    scopes: list[Short] = Field(
        min_length=1,
        max_length=50,
        description="SMART system scopes, e.g. system/Appointment.rs, system/*.rs, "
        "system/Appointment.cud, system/AuditEvent.rs (v1 .read, .write, .* too).",
    )
    jwks: JsonWebKeySet | None = None
    jwks_url: JwksUrl | None = None
    secret: Secret | None = Field(
        None, description="At least 32 characters; kept only as a scrypt hash."
    )

    @model_validator(mode="after")
    def _one_credential(self) -> EmrClientRegistration:
        given = [n for n in ("jwks", "jwks_url", "secret") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of jwks, jwks_url or secret"
                + (f" (given: {', '.join(given)})" if given else "")
            )
        try:
            parse_scopes(self.scopes)
            if self.jwks is not None:
                check_jwks(self.jwks.model_dump())
        except (ScopeError, JwksError) as error:
            raise ValueError(str(error)) from None
        return self

    def registration(self) -> Registration:
        return Registration(
            self.name,
            tuple(dict.fromkeys(self.scopes)),
            self.jwks.model_dump() if self.jwks is not None else None,
            self.jwks_url,
            self.secret.get_secret_value() if self.secret is not None else None,
        )


class EmrClientView(BaseModel):
    """A registered client (never its secret)."""

    organization: UUID
    client_id: str
    name: str
    scopes: list[str]
    authentication: Literal["private_key_jwt", "client_secret"]
    jwks: dict[str, Any] | None
    jwks_url: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, client: RegisteredClient) -> EmrClientView:
        return cls(
            organization=client.organization,
            client_id=client.client_id,
            name=client.name,
            scopes=list(client.scopes),
            authentication="client_secret" if client.secret_hash else "private_key_jwt",
            jwks=client.jwks,
            jwks_url=client.jwks_url,
            created_at=client.created_at,
            updated_at=client.updated_at,
        )


class EmrClientList(BaseModel):
    items: list[EmrClientView] = Field(description=f"Every client, by id (at most {MAX_CLIENTS}).")


def authentication(request: Request) -> Authentication:
    found: Authentication = request.app.state.auth
    return found


AuthenticationDep = Annotated[Authentication, Depends(authentication)]


@router.put(
    "/{client_id}",
    response_model=EmrClientView,
    responses={201: {"model": EmrClientView, "description": "Registered."}, **problems(409)},
)
async def register_emr_client(
    org: UUID,
    client_id: ClientId,
    body: EmrClientRegistration,
    request: Request,
    response: Response,
    auth: AuthenticationDep,
) -> EmrClientView:
    """Registers the client, or replaces it (then its access tokens are revoked, unless
    nothing changed). 201 when new, 200 when replaced."""
    try:
        client, created = await auth.register(org, client_id, body.registration())
    except TooManyClientsError as error:
        raise TooManyEmrClients(str(error)) from None
    log.info(
        "EMR client registered" if created else "EMR client replaced",
        extra={"organization": str(org), "client_id": client_id, "auth": client.authentication},
    )
    if created:
        response.status_code = 201
        response.headers["Location"] = str(request.url.path)
    return EmrClientView.of(client)


@router.get("", response_model=EmrClientList)
async def list_emr_clients(org: UUID, auth: AuthenticationDep) -> EmrClientList:
    """The organisation's clients, by id."""
    return EmrClientList(items=[EmrClientView.of(c) for c in await auth.clients(org)])


@router.get("/{client_id}", response_model=EmrClientView, responses=problems(404))
async def get_emr_client(org: UUID, client_id: ClientId, auth: AuthenticationDep) -> EmrClientView:
    """One client."""
    client = await auth.client(org, client_id)
    if client is None:
        raise EmrClientNotFound(f"no EMR client {client_id!r} in organisation {org}")
    return EmrClientView.of(client)


@router.delete("/{client_id}", status_code=204, responses=problems(404))
async def delete_emr_client(org: UUID, client_id: ClientId, auth: AuthenticationDep) -> Response:
    """Removes the client and revokes its access tokens at once."""
    if not await auth.remove(org, client_id):
        raise EmrClientNotFound(f"no EMR client {client_id!r} in organisation {org}")
    log.info("EMR client removed", extra={"organization": str(org), "client_id": client_id})
    return Response(status_code=204)
