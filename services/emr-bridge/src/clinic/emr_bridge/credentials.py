"""EMR clients' credentials in PostgreSQL, shared by every replica: the clients registered
per organisation, the access tokens issued (by their SHA-256 only), and the ``jti`` of every
client assertion until it expires (so an assertion is used once, whichever replica sees it).

``Authentication`` is the use-case API the routes call: issue a token (OAuth2 client
credentials: ``private_key_jwt`` as SMART Backend Services define it, or a client secret),
find the caller of a FHIR request by its token, and register, list and remove clients.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import unquote_plus
from uuid import UUID

import httpx
import psycopg
from psycopg.types.json import Jsonb

from clinic.emr_bridge.auth import (
    ASSERTION_TYPE,
    UNKNOWN_CLIENT_HASH,
    Caller,
    Forbidden,
    ScopeError,
    TokenError,
    Unauthorized,
    UnknownKeyError,
    assertion_client,
    bearer_token,
    covered,
    hash_secret,
    invalid_client,
    invalid_request,
    invalid_scope,
    local_caller,
    organization_id,
    parse_scopes,
    secret_matches,
    token_digest,
    usable_keys,
    verify_assertion,
)
from clinic.emr_bridge.settings import EmrBridgeSettings
from clinic.platform.database import Database

log = logging.getLogger(__name__)

CREDENTIALS_DDL = [
    """CREATE TABLE IF NOT EXISTS emr_clients (
        organization_id uuid NOT NULL, client_id text NOT NULL, name text NOT NULL,
        scopes text[] NOT NULL, jwks jsonb, jwks_url text, secret_hash text,
        created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
        PRIMARY KEY (organization_id, client_id),
        CONSTRAINT emr_clients_one_credential
            CHECK (num_nonnulls(jwks, jwks_url, secret_hash) = 1))""",
    """CREATE TABLE IF NOT EXISTS emr_access_tokens (
        token_hash bytea PRIMARY KEY, organization_id uuid NOT NULL, client_id text NOT NULL,
        scopes text[] NOT NULL, issued_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS emr_access_tokens_by_client
        ON emr_access_tokens (organization_id, client_id)""",
    "CREATE INDEX IF NOT EXISTS emr_access_tokens_by_expiry ON emr_access_tokens (expires_at)",
    """CREATE TABLE IF NOT EXISTS emr_assertion_ids (
        organization_id uuid NOT NULL, client_id text NOT NULL, jti text NOT NULL,
        expires_at timestamptz NOT NULL, PRIMARY KEY (organization_id, client_id, jti))""",
    "CREATE INDEX IF NOT EXISTS emr_assertion_ids_by_expiry ON emr_assertion_ids (expires_at)",
]

MAX_CLIENTS = 100
"""Clients one organisation may register (so their list needs no paging)."""
REFETCH_SECONDS = 10.0
"""Least time between two fetches of one jwks_url when assertions name unknown keys."""
MAX_JWKS_BYTES = 65536
JWKS_TIMEOUT_SECONDS = 5.0


class TooManyClientsError(ValueError):
    pass


@dataclass(frozen=True)
class Registration:
    """What the admin API registers: a name, the scopes the client may ask for, and one
    credential (an inline key set, the URL of one, or a secret)."""

    name: str
    scopes: tuple[str, ...]
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None
    secret: str | None = None


@dataclass(frozen=True)
class RegisteredClient:
    organization: UUID
    client_id: str
    name: str
    scopes: tuple[str, ...]
    jwks: dict[str, Any] | None
    jwks_url: str | None
    secret_hash: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def authentication(self) -> str:
        return "client_secret" if self.secret_hash else "private_key_jwt"

    def same_as(self, registration: Registration) -> bool:
        """Whether ``registration`` says what this client already is (nothing to revoke)."""
        if (self.name, self.scopes, self.jwks, self.jwks_url) != (
            registration.name,
            registration.scopes,
            registration.jwks,
            registration.jwks_url,
        ):
            return False
        if registration.secret is None or self.secret_hash is None:
            return registration.secret is None and self.secret_hash is None
        return secret_matches(registration.secret, self.secret_hash)


_CLIENT_COLUMNS = (
    "organization_id, client_id, name, scopes, jwks, jwks_url, secret_hash, created_at, updated_at"
)


def _client(row: tuple[Any, ...]) -> RegisteredClient:
    org, cid, name, scopes, jwks, url, secret_hash, created, updated = row
    return RegisteredClient(org, cid, name, tuple(scopes), jwks, url, secret_hash, created, updated)


@dataclass(frozen=True)
class Granted:
    """An access token as the token endpoint answers it (RFC 6749 section 5.1)."""

    access_token: str
    expires_in: int
    scope: str
    client_id: str

    def body(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }


Fetch = Callable[[str], Awaitable[Any]]


async def fetch_jwks(url: str) -> Any:
    """A client's key set from its ``jwks_url`` (no redirects, at most 64 KiB)."""
    async with (
        httpx.AsyncClient(timeout=JWKS_TIMEOUT_SECONDS, follow_redirects=False) as http,
        http.stream("GET", url, headers={"Accept": "application/json"}) as response,
    ):
        if response.status_code != 200:
            raise ValueError(f"{url} answered {response.status_code}")
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError(f"{url} sent more than {MAX_JWKS_BYTES} bytes")
    return json.loads(body)


class KeySets:
    """Keys fetched from clients' ``jwks_url``s, kept ``cache_seconds`` per URL; fetched
    again sooner when an assertion names a ``kid`` they lack (at most every 10 seconds)."""

    def __init__(
        self, cache_seconds: float, clock: Callable[[], float], fetch: Fetch = fetch_jwks
    ) -> None:
        self.cache_seconds = cache_seconds
        self.clock = clock
        self.fetch = fetch
        self._cached: dict[str, tuple[float, dict[str, dict[str, Any]]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def keys(self, url: str, *, unknown_kid: bool = False) -> dict[str, dict[str, Any]]:
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = self._cached.get(url)
            now = self.clock()
            if cached is not None:
                fetched_at, keys = cached
                fresh = now - fetched_at < self.cache_seconds
                if fresh and not (unknown_kid and now - fetched_at >= REFETCH_SECONDS):
                    return keys
            try:
                keys = usable_keys(await self.fetch(url))
            except (httpx.HTTPError, ValueError) as error:
                log.warning("jwks_url not readable", extra={"url": url, "error": str(error)})
                if cached is not None:
                    return cached[1]
                raise
            self._cached[url] = (now, keys)
            return keys


class CredentialStore(Protocol):
    """Where clients, tokens and assertion ids are kept (``PostgresCredentials``; the unit
    tests keep them in memory)."""

    async def client(self, org: UUID, client_id: str) -> RegisteredClient | None: ...

    async def clients(self, org: UUID) -> list[RegisteredClient]: ...

    async def save_client(
        self, client: RegisteredClient, registration: Registration
    ) -> tuple[RegisteredClient, bool]:
        """Creates or replaces (revoking the tokens of a client that changed); True when
        new."""
        ...

    async def remove_client(self, org: UUID, client_id: str) -> bool: ...

    async def first_use(
        self, org: UUID, client_id: str, jti: str, expires_at: dt.datetime, now: dt.datetime
    ) -> bool:
        """Records an assertion's ``jti``; False when it was seen before and has not
        expired."""
        ...

    async def save_token(self, digest: bytes, token: IssuedToken) -> None: ...

    async def token(self, digest: bytes, now: dt.datetime) -> IssuedToken | None:
        """The live token of that digest."""
        ...


@dataclass(frozen=True)
class IssuedToken:
    organization: UUID
    client_id: str
    scopes: tuple[str, ...]
    issued_at: dt.datetime
    expires_at: dt.datetime


class PostgresCredentials:
    """``CredentialStore`` on the service's database: every replica sees the same clients,
    tokens and used assertions."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def client(self, org: UUID, client_id: str) -> RegisteredClient | None:
        async with self.database.pool.connection() as conn:
            return await _load_client(conn, org, client_id)

    async def clients(self, org: UUID) -> list[RegisteredClient]:
        async with self.database.pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT {_CLIENT_COLUMNS} FROM emr_clients WHERE organization_id = %s"
                " ORDER BY client_id",
                [org],
            )
            return [_client(row) for row in await cursor.fetchall()]

    async def save_client(
        self, client: RegisteredClient, registration: Registration
    ) -> tuple[RegisteredClient, bool]:
        org, client_id = client.organization, client.client_id
        async with self.database.transaction() as conn:
            # One registration per organisation at a time: the count below stays true.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('emr_clients'), hashtext(%s))", [str(org)]
            )
            existing = await _load_client(conn, org, client_id)
            if existing is not None and await asyncio.to_thread(existing.same_as, registration):
                return existing, False
            if existing is None:
                cursor = await conn.execute(
                    "SELECT count(*) FROM emr_clients WHERE organization_id = %s", [org]
                )
                counted = await cursor.fetchone()
                if counted is not None and counted[0] >= MAX_CLIENTS:
                    raise TooManyClientsError(f"an organisation has at most {MAX_CLIENTS} clients")
            else:
                client = replace(client, created_at=existing.created_at)
            await conn.execute(
                f"""INSERT INTO emr_clients ({_CLIENT_COLUMNS})
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (organization_id, client_id) DO UPDATE SET name = EXCLUDED.name,
                    scopes = EXCLUDED.scopes, jwks = EXCLUDED.jwks, jwks_url = EXCLUDED.jwks_url,
                    secret_hash = EXCLUDED.secret_hash, updated_at = EXCLUDED.updated_at""",
                [
                    org,
                    client_id,
                    client.name,
                    list(client.scopes),
                    Jsonb(client.jwks) if client.jwks is not None else None,
                    client.jwks_url,
                    client.secret_hash,
                    client.created_at,
                    client.updated_at,
                ],
            )
            if existing is not None:
                await _revoke(conn, org, client_id)
        return client, existing is None

    async def remove_client(self, org: UUID, client_id: str) -> bool:
        async with self.database.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM emr_clients WHERE organization_id = %s AND client_id = %s RETURNING 1",
                [org, client_id],
            )
            removed = await cursor.fetchone() is not None
            await _revoke(conn, org, client_id)
        return removed

    async def first_use(
        self, org: UUID, client_id: str, jti: str, expires_at: dt.datetime, now: dt.datetime
    ) -> bool:
        async with self.database.pool.connection() as conn:
            await conn.execute("DELETE FROM emr_assertion_ids WHERE expires_at < %s", [now])
            cursor = await conn.execute(
                """INSERT INTO emr_assertion_ids (organization_id, client_id, jti, expires_at)
                VALUES (%s, %s, %s, %s)
                ON CONFLICT (organization_id, client_id, jti) DO UPDATE
                    SET expires_at = EXCLUDED.expires_at
                    WHERE emr_assertion_ids.expires_at < %s
                RETURNING 1""",
                [org, client_id, jti, expires_at, now],
            )
            return await cursor.fetchone() is not None

    async def save_token(self, digest: bytes, token: IssuedToken) -> None:
        async with self.database.pool.connection() as conn:
            await conn.execute(
                "DELETE FROM emr_access_tokens WHERE expires_at < %s", [token.issued_at]
            )
            await conn.execute(
                """INSERT INTO emr_access_tokens (token_hash, organization_id, client_id, scopes,
                    issued_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s)""",
                [
                    digest,
                    token.organization,
                    token.client_id,
                    list(token.scopes),
                    token.issued_at,
                    token.expires_at,
                ],
            )

    async def token(self, digest: bytes, now: dt.datetime) -> IssuedToken | None:
        async with self.database.pool.connection() as conn:
            cursor = await conn.execute(
                """SELECT organization_id, client_id, scopes, issued_at, expires_at
                FROM emr_access_tokens WHERE token_hash = %s AND expires_at > %s""",
                [digest, now],
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        org, client_id, scopes, issued_at, expires_at = row
        return IssuedToken(org, client_id, tuple(scopes), issued_at, expires_at)


async def _load_client(
    conn: psycopg.AsyncConnection, org: UUID, client_id: str
) -> RegisteredClient | None:
    cursor = await conn.execute(
        f"SELECT {_CLIENT_COLUMNS} FROM emr_clients WHERE organization_id = %s AND client_id = %s",
        [org, client_id],
    )
    row = await cursor.fetchone()
    return _client(row) if row else None


class Authentication:
    """Token issuance, token lookup and the client registry: what the routes call."""

    def __init__(
        self,
        store: CredentialStore,
        settings: EmrBridgeSettings,
        *,
        clock: Callable[[], float] = time.time,
        fetch: Fetch = fetch_jwks,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.key_sets = KeySets(settings.jwks_cache_seconds, clock, fetch)

    @classmethod
    def on(cls, database: Database, settings: EmrBridgeSettings) -> Authentication:
        """The service's: credentials in its PostgreSQL database."""
        return cls(PostgresCredentials(database), settings)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    # -- the token endpoint ----------------------------------------------------------------

    async def token(
        self, org: str, form: Mapping[str, str], authorization: str | None, token_url: str
    ) -> Granted:
        """An access token for the client ``form`` authenticates (RFC 6749 section 4.4), or
        a ``TokenError``."""
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise invalid_request("grant_type is required (client_credentials)")
        if grant_type != "client_credentials":
            raise TokenError(
                "unsupported_grant_type",
                f"grant_type {grant_type!r} is not supported (client_credentials only)",
            )
        try:
            org_id = UUID(org)
        except ValueError:
            raise invalid_client(f"no organisation {org!r}") from None
        client = await self._authenticated(org_id, form, authorization, token_url)
        wanted = form.get("scope", "").split()
        if not wanted:
            raise invalid_scope(
                "scope is required, e.g. system/Appointment.rs (allowed for this client: "
                f"{' '.join(client.scopes)})",
                client.client_id,
            )
        try:
            requested = parse_scopes(wanted)
            allowed = parse_scopes(client.scopes)
        except ScopeError as error:
            raise invalid_scope(str(error), client.client_id) from None
        refused = [s.text for s in requested if not covered(s, allowed)]
        if refused:
            raise invalid_scope(
                f"{' '.join(refused)} not allowed for {client.client_id} "
                f"(allowed: {' '.join(client.scopes)})",
                client.client_id,
            )
        access_token = secrets.token_urlsafe(32)
        now = self.now()
        lifetime = self.settings.token_seconds
        scopes = tuple(s.text for s in requested)
        issued = IssuedToken(
            org_id, client.client_id, scopes, now, now + dt.timedelta(seconds=lifetime)
        )
        await self.store.save_token(token_digest(access_token), issued)
        return Granted(access_token, lifetime, " ".join(scopes), client.client_id)

    async def _authenticated(
        self, org: UUID, form: Mapping[str, str], authorization: str | None, token_url: str
    ) -> RegisteredClient:
        basic = authorization is not None and authorization.lower().startswith("basic ")
        has_assertion = "client_assertion" in form or "client_assertion_type" in form
        used = [has_assertion, basic, "client_secret" in form]
        if sum(used) > 1:
            raise invalid_request("authenticate the client one way only (RFC 6749 2.3)")
        if has_assertion:
            return await self._by_assertion(org, form, token_url)
        if authorization is not None and basic:
            client_id, secret = _basic_credentials(authorization)
            if form.get("client_id", client_id) != client_id:
                raise invalid_request("client_id differs from the one of the Basic credentials")
            return await self._by_secret(org, client_id, secret)
        if "client_secret" in form:
            posted = form.get("client_id")
            if not posted:
                raise invalid_request("client_secret needs its client_id")
            return await self._by_secret(org, posted, form["client_secret"])
        raise invalid_client(
            "authenticate the client: private_key_jwt (client_assertion), "
            "client_secret_basic or client_secret_post"
        )

    async def _by_assertion(
        self, org: UUID, form: Mapping[str, str], token_url: str
    ) -> RegisteredClient:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise invalid_client(f"client_assertion_type must be {ASSERTION_TYPE}")
        assertion = form.get("client_assertion", "")
        client_id = assertion_client(assertion)
        if form.get("client_id", client_id) != client_id:
            raise invalid_client("client_id differs from the client assertion's iss")
        client = await self.store.client(org, client_id)
        if client is None:
            raise invalid_client(f"no client {client_id!r} in this organisation")
        if client.secret_hash is not None:
            raise invalid_client(f"{client_id} is registered with a secret, not keys", client_id)
        now = self.clock()
        try:
            verified = verify_assertion(
                assertion,
                await self._keys(client),
                client_id=client_id,
                audience=token_url,
                now=now,
                jwks_url=client.jwks_url,
            )
        except UnknownKeyError:
            if client.jwks_url is None:
                raise
            verified = verify_assertion(
                assertion,
                await self._keys(client, unknown_kid=True),
                client_id=client_id,
                audience=token_url,
                now=now,
                jwks_url=client.jwks_url,
            )
        if not await self.store.first_use(
            org, client_id, verified.jti, verified.expires_at, self.now()
        ):
            raise invalid_client(
                f"the client assertion's jti {verified.jti!r} was used already", client_id
            )
        return client

    async def _keys(
        self, client: RegisteredClient, unknown_kid: bool = False
    ) -> dict[str, dict[str, Any]]:
        if client.jwks is not None:
            return usable_keys(client.jwks)
        assert client.jwks_url is not None
        try:
            return await self.key_sets.keys(client.jwks_url, unknown_kid=unknown_kid)
        except (httpx.HTTPError, ValueError):
            raise invalid_client(
                f"the key set at {client.jwks_url} could not be read", client.client_id
            ) from None

    async def _by_secret(self, org: UUID, client_id: str, secret: str) -> RegisteredClient:
        if not 1 <= len(client_id) <= 128 or len(secret) > 512:
            raise invalid_client("wrong client id or secret")
        client = await self.store.client(org, client_id)
        stored = client.secret_hash if client is not None else None
        matches = await asyncio.to_thread(secret_matches, secret, stored or UNKNOWN_CLIENT_HASH)
        if client is None or stored is None or not matches:
            known = client.client_id if client is not None else None
            raise invalid_client("wrong client id or secret", known)
        return client

    # -- FHIR requests ---------------------------------------------------------------------

    async def caller(self, org: str, authorization: str | None) -> Caller:
        """The client a FHIR request for ``org`` comes from: 401 without a live token, 403
        with another organisation's."""
        if not self.settings.auth_required:
            return local_caller(organization_id(org))
        found = await self.store.token(token_digest(bearer_token(authorization)), self.now())
        if found is None:
            raise Unauthorized("the access token is unknown or has expired: get a new one")
        try:
            same = UUID(org) == found.organization
        except ValueError:
            same = False
        if not same:
            raise Forbidden(f"the access token of {found.client_id} is for another organisation")
        try:
            granted = parse_scopes(found.scopes)
        except ScopeError:  # a scope this version no longer knows grants nothing
            granted = ()
        return Caller(found.client_id, found.organization, granted, found.expires_at)

    # -- the registry ----------------------------------------------------------------------

    async def client(self, org: UUID, client_id: str) -> RegisteredClient | None:
        return await self.store.client(org, client_id)

    async def clients(self, org: UUID) -> list[RegisteredClient]:
        return await self.store.clients(org)

    async def register(
        self, org: UUID, client_id: str, registration: Registration
    ) -> tuple[RegisteredClient, bool]:
        """Creates or replaces a client; True when it is new. A replaced client's tokens are
        revoked unless nothing changed."""
        secret_hash = (
            await asyncio.to_thread(hash_secret, registration.secret)
            if registration.secret is not None
            else None
        )
        now = self.now()
        client = RegisteredClient(
            org,
            client_id,
            registration.name,
            registration.scopes,
            registration.jwks,
            registration.jwks_url,
            secret_hash,
            now,
            now,
        )
        return await self.store.save_client(client, registration)

    async def remove(self, org: UUID, client_id: str) -> bool:
        """Removes a client and revokes its tokens; False when there was none."""
        return await self.store.remove_client(org, client_id)


async def _revoke(conn: psycopg.AsyncConnection, org: UUID, client_id: str) -> None:
    await conn.execute(
        "DELETE FROM emr_access_tokens WHERE organization_id = %s AND client_id = %s",
        [org, client_id],
    )


def _basic_credentials(authorization: str) -> tuple[str, str]:
    """client_secret_basic: ``Basic base64(urlencoded id ":" urlencoded secret)``."""
    encoded = authorization.split(" ", 1)[1].strip()
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client("the Basic credentials are not base64 of id:secret") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise invalid_client("the Basic credentials are not base64 of id:secret")
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    if not (client_id + secret).isprintable():
        raise invalid_client("the Basic credentials hold a control character")
    return client_id, secret
