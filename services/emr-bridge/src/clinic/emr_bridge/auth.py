"""Who an EMR client is and what it may do (pure rules, and the FHIR routes' dependency).

- Scopes as SMART App Launch v2 spells them for backend services (``system/Appointment.rs``,
  ``system/*.rs``: a resource type or ``*``, then the interactions allowed, ``c r u d s`` in
  that order), and the v1 spellings (``.read`` = ``rs``, ``.write`` = ``cud``, ``.*`` =
  all). Only the ``system/`` context exists here: a backend service acts for nobody.
- Client secrets are kept as scrypt hashes with a salt of their own, compared in constant
  time.
- Client assertions (``private_key_jwt``, SMART Backend Services): a JWT signed with RS384
  or ES384 by a key of the client's JWKS (found by ``kid``), with ``iss`` = ``sub`` = the
  client id, ``aud`` = the token endpoint, ``exp`` in the future and at most five minutes
  ahead, and a ``jti`` (whose single use ``credentials`` enforces in PostgreSQL).
- ``caller``: the dependency every FHIR route takes. It reads ``Authorization: Bearer``,
  answers 401 (``login``) for no token or an unknown or expired one and 403 (``forbidden``)
  for a token of another organisation; ``Caller.require`` answers 403 when the token's
  scopes do not allow an interaction.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import jwt
from fastapi import Depends, Request

from clinic.emr_bridge.api.outcomes import FhirError, NotFound
from clinic.emr_bridge.search import PARAMETERS

if TYPE_CHECKING:
    from clinic.emr_bridge.credentials import Authentication

# -- scopes -------------------------------------------------------------------------------------

INTERACTIONS = "cruds"
"""SMART v2's letters, in the order a scope must list them: create, read, update, delete,
search."""
V1_INTERACTIONS = {"read": "rs", "write": "cud", "*": "cruds"}
SCOPED_TYPES = frozenset({*PARAMETERS, "AuditEvent"})
"""The resource types a scope may name (besides ``*``): those this server serves."""
MAX_SCOPES = 50
_SCOPE = re.compile(r"^system/(\*|[A-Z][A-Za-z]{0,63})\.([a-z*]{1,5})$")


class ScopeError(ValueError):
    """A scope this server does not grant (misspelt, another context, an unknown type)."""


@dataclass(frozen=True)
class Scope:
    text: str
    resource_type: str
    """A resource type, or ``*`` for every one."""
    interactions: frozenset[str]

    def allows(self, resource_type: str, interaction: str) -> bool:
        return self.resource_type in ("*", resource_type) and interaction in self.interactions


def parse_scope(text: str) -> Scope:
    """One scope, as SMART v1 or v2 spell it; a ``ScopeError`` says why it is not one."""
    if "?" in text:
        raise ScopeError(f"{text!r}: scopes with query parameters are not supported")
    match = _SCOPE.match(text)
    if match is None:
        raise ScopeError(
            f"{text!r} is not a system scope (system/<ResourceType or *>.<cruds or "
            "read, write, *>, e.g. system/Appointment.rs)"
        )
    resource_type, letters = match.groups()
    if resource_type != "*" and resource_type not in SCOPED_TYPES:
        raise ScopeError(
            f"{text!r}: {resource_type} is not served here "
            f"(served: {', '.join(sorted(SCOPED_TYPES))})"
        )
    letters = V1_INTERACTIONS.get(letters, letters)
    if not _in_order(letters):
        raise ScopeError(
            f"{text!r}: interactions are letters of 'cruds', each at most once and in that order"
        )
    return Scope(text, resource_type, frozenset(letters))


def _in_order(letters: str) -> bool:
    positions = [INTERACTIONS.find(letter) for letter in letters]
    return bool(positions) and -1 not in positions and positions == sorted(set(positions))


def parse_scopes(texts: Iterable[str]) -> tuple[Scope, ...]:
    """Scopes in the order given, each once."""
    found: dict[str, Scope] = {}
    for text in texts:
        if text not in found:
            found[text] = parse_scope(text)
    if len(found) > MAX_SCOPES:
        raise ScopeError(f"at most {MAX_SCOPES} scopes")
    return tuple(found.values())


def covered(requested: Scope, allowed: Iterable[Scope]) -> bool:
    """Whether every interaction ``requested`` grants is granted by one of ``allowed``."""
    allowed = tuple(allowed)
    return all(
        any(
            a.resource_type in ("*", requested.resource_type) and letter in a.interactions
            for a in allowed
        )
        for letter in requested.interactions
    )


ALL_SCOPES = (parse_scope("system/*.cruds"),)
"""What the ``local-dev`` caller may do when authentication is off."""

# -- client secrets -----------------------------------------------------------------------------

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
"""scrypt's cost (16 MiB and tens of milliseconds per check): slow enough that a stolen table
of hashes does not give the secrets back, fast enough for a token request."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=32, maxmem=2**26)


def hash_secret(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash``: the only form a client secret is kept in."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    """Whether ``secret`` is the one ``stored`` was hashed from (constant-time compare)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        found = _scrypt(secret, _unb64(salt), int(n), int(r), int(p))
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(found, expected)


UNKNOWN_CLIENT_HASH = hash_secret(secrets.token_urlsafe(32))
"""Checked against when the client does not exist, so an unknown client id takes as long to
refuse as a wrong secret."""

# -- token endpoint errors (RFC 6749 section 5.2) -----------------------------------------------


class TokenError(Exception):
    """An answer of the token endpoint other than a token: RFC 6749 JSON, never FHIR."""

    def __init__(
        self, error: str, description: str, status: int = 400, client_id: str | None = None
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.client_id = client_id
        """The registered client the request was for, when known (for the audit)."""

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str) -> TokenError:
    return TokenError("invalid_request", description)


def invalid_client(description: str, client_id: str | None = None) -> TokenError:
    return TokenError("invalid_client", description, 401, client_id)


def invalid_scope(description: str, client_id: str | None = None) -> TokenError:
    return TokenError("invalid_scope", description, 400, client_id)


# -- client assertions (private_key_jwt) --------------------------------------------------------

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_SECONDS = 300
CLOCK_SKEW_SECONDS = 10
"""How far apart the client's clock and ours may be (on ``exp``, ``iat`` and ``nbf``)."""
MAX_KEYS = 10
MAX_ASSERTION_CHARS = 8192
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CURVES = {"ES384": "P-384"}
_KEY_TYPES = {"RS384": "RSA", "ES384": "EC"}


class JwksError(ValueError):
    """A key set that cannot be registered (a private key, an unsupported or malformed key)."""


class UnknownKeyError(TokenError):
    """The assertion names a ``kid`` the client's key set lacks (fetch it again, maybe)."""


@dataclass(frozen=True)
class Assertion:
    client_id: str
    jti: str
    expires_at: dt.datetime


def _check_key(key: Mapping[str, Any]) -> str:
    """The algorithm ``key`` verifies with, or a ``JwksError`` saying why it cannot be used."""
    kid = key.get("kid")
    if not isinstance(kid, str) or not 1 <= len(kid) <= 200:
        raise JwksError("every key needs a kid (1 to 200 characters)")
    private = sorted(_PRIVATE_MEMBERS & set(key))
    if private:
        raise JwksError(f"key {kid!r} is private ({', '.join(private)}): register the public key")
    if key.get("use", "sig") != "sig":
        raise JwksError(f"key {kid!r} is not for signatures (use {key.get('use')!r})")
    ops = key.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise JwksError(f"key {kid!r} is not for verifying (key_ops {ops!r})")
    kty = key.get("kty")
    algorithm = key.get("alg") or {"RSA": "RS384", "EC": "ES384"}.get(str(kty))
    if algorithm not in SIGNING_ALGORITHMS:
        raise JwksError(
            f"key {kid!r}: {algorithm or kty!r} is not accepted "
            f"(accepted: {', '.join(SIGNING_ALGORITHMS)})"
        )
    if kty != _KEY_TYPES[algorithm]:
        raise JwksError(f"key {kid!r}: {algorithm} needs a {_KEY_TYPES[algorithm]} key")
    if algorithm in _CURVES and key.get("crv") != _CURVES[algorithm]:
        raise JwksError(f"key {kid!r}: {algorithm} needs the curve {_CURVES[algorithm]}")
    try:
        verifier = jwt.PyJWK(dict(key), algorithm=algorithm)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as error:
        raise JwksError(f"key {kid!r} is not a valid {kty} key: {error}") from None
    size = getattr(verifier.key, "key_size", 0)
    if kty == "RSA" and size < 2048:
        raise JwksError(f"key {kid!r}: RSA keys need at least 2048 bits (this has {size})")
    return algorithm


def check_jwks(jwks: Mapping[str, Any]) -> dict[str, Any]:
    """A key set fit to register: public signing keys, each with its own ``kid``."""
    keys = jwks.get("keys")
    if set(jwks) != {"keys"} or not isinstance(keys, list) or not keys:
        raise JwksError('a JWKS is {"keys": [...]} with at least one key')
    if len(keys) > MAX_KEYS:
        raise JwksError(f"at most {MAX_KEYS} keys")
    kids: set[str] = set()
    for key in keys:
        if not isinstance(key, dict):
            raise JwksError("every key is a JSON object")
        _check_key(key)
        if key["kid"] in kids:
            raise JwksError(f"kid {key['kid']!r} is used twice")
        kids.add(key["kid"])
    return {"keys": [dict(key) for key in keys]}


def usable_keys(jwks: Any) -> dict[str, dict[str, Any]]:
    """The keys of a fetched key set that could verify an assertion, by ``kid`` (keys that
    are not, such as encryption keys, are left out rather than refused)."""
    found: dict[str, dict[str, Any]] = {}
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    for key in keys if isinstance(keys, list) else ():
        if not isinstance(key, dict):
            continue
        try:
            _check_key(key)
        except JwksError:
            continue
        found.setdefault(key["kid"], key)
    return found


def assertion_client(assertion: str) -> str:
    """The client id an assertion claims to come from (not verified yet: only to find the
    client's keys)."""
    if len(assertion) > MAX_ASSERTION_CHARS:
        raise invalid_client("the client assertion is too long")
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise invalid_client("the client assertion is not a JWT") from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not 1 <= len(issuer) <= 128 or not issuer.isprintable():
        raise invalid_client("the client assertion has no iss (the client id)")
    return issuer


def verify_assertion(
    assertion: str,
    keys: Mapping[str, Mapping[str, Any]],
    *,
    client_id: str,
    audience: str,
    now: float,
    jwks_url: str | None = None,
) -> Assertion:
    """The assertion's claims once its signature, issuer, subject, audience and lifetime
    hold; an ``invalid_client`` ``TokenError`` saying which did not. ``keys`` is the client's
    key set by ``kid`` (``usable_keys``). Whether its ``jti`` was seen before is for the
    caller to check (it needs the shared store). A ``jku`` header must name the client's
    registered ``jwks_url``."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        raise invalid_client("the client assertion is not a JWT", client_id) from None
    algorithm = header.get("alg")
    if algorithm not in SIGNING_ALGORITHMS:
        raise invalid_client(
            f"the client assertion is signed with {algorithm!r}; accepted: "
            f"{', '.join(SIGNING_ALGORITHMS)}",
            client_id,
        )
    if "jku" in header and header["jku"] != jwks_url:
        raise invalid_client(
            "the client assertion's jku is not the jwks_url the client registered", client_id
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise invalid_client("the client assertion's header has no kid", client_id)
    key = keys.get(kid)
    if key is None:
        raise UnknownKeyError(
            "invalid_client",
            f"the client's key set has no key {kid!r}",
            401,
            client_id,
        )
    if (key.get("alg") or algorithm) != algorithm or key.get("kty") != _KEY_TYPES[algorithm]:
        raise invalid_client(f"key {kid!r} does not sign with {algorithm}", client_id)
    try:
        claims = jwt.decode(
            assertion,
            jwt.PyJWK(dict(key), algorithm=algorithm),
            algorithms=[algorithm],
            audience=audience,
            issuer=client_id,
            subject=client_id,
            # The times are checked against ``now`` below (PyJWT would read the clock).
            options={
                "require": ["iss", "sub", "aud", "exp", "jti"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidAudienceError:
        raise invalid_client(f"the client assertion's aud is not {audience}", client_id) from None
    except jwt.InvalidIssuerError:
        raise invalid_client(f"the client assertion's iss is not {client_id}", client_id) from None
    except jwt.exceptions.InvalidSubjectError:
        raise invalid_client(
            "the client assertion's sub is not its iss (the client id)", client_id
        ) from None
    except jwt.MissingRequiredClaimError as error:
        raise invalid_client(
            f"the client assertion lacks the {error.claim} claim", client_id
        ) from None
    except jwt.InvalidSignatureError:
        raise invalid_client(
            f"the client assertion's signature does not verify with key {kid!r}", client_id
        ) from None
    except jwt.PyJWTError as error:
        raise invalid_client(f"the client assertion is not valid: {error}", client_id) from None
    return Assertion(client_id, _jti(claims, client_id), _expiry(claims, now, client_id))


def _expiry(claims: Mapping[str, Any], now: float, client_id: str) -> dt.datetime:
    exp = claims["exp"]
    if not isinstance(exp, int | float) or isinstance(exp, bool) or not math.isfinite(exp):
        raise invalid_client("the client assertion's exp is not a number", client_id)
    if exp <= now - CLOCK_SKEW_SECONDS:
        raise invalid_client("the client assertion has expired", client_id)
    if exp > now + MAX_ASSERTION_SECONDS + CLOCK_SKEW_SECONDS:
        raise invalid_client(
            f"the client assertion's exp is more than {MAX_ASSERTION_SECONDS} seconds ahead",
            client_id,
        )
    for claim in ("nbf", "iat"):
        value = claims.get(claim)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise invalid_client(f"the client assertion's {claim} is not a number", client_id)
        if not math.isfinite(value):
            raise invalid_client(f"the client assertion's {claim} is not a number", client_id)
        if value > now + CLOCK_SKEW_SECONDS:
            raise invalid_client(f"the client assertion's {claim} is in the future", client_id)
    return dt.datetime.fromtimestamp(exp + CLOCK_SKEW_SECONDS, dt.UTC)


def _jti(claims: Mapping[str, Any], client_id: str) -> str:
    jti = claims["jti"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= 255 or not jti.isprintable():
        raise invalid_client("the client assertion's jti is not a string of 1 to 255", client_id)
    return jti


# -- who is calling -----------------------------------------------------------------------------

REALM = "clinic emr-bridge"


class Unauthorized(FhirError):
    """No valid access token: 401 with ``WWW-Authenticate: Bearer`` (RFC 6750)."""

    status, slug, title, code = 401, "unauthorized", "Authentication required", "login"

    def __init__(self, detail: str, error: str | None = "invalid_token") -> None:
        super().__init__(detail)
        challenge = f'Bearer realm="{REALM}"'
        if error:
            challenge += f', error="{error}", error_description="{_quoted(detail)}"'
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(FhirError):
    """A valid token that does not allow this: another organisation's, or too few scopes."""

    status, slug, title, code = 403, "forbidden", "Not allowed for this client", "forbidden"

    def __init__(self, detail: str, scope: str | None = None) -> None:
        super().__init__(detail)
        challenge = f'Bearer realm="{REALM}", error="insufficient_scope"'
        if scope:
            challenge += f', scope="{scope}"'
        self.headers = {"WWW-Authenticate": challenge}


def _quoted(text: str) -> str:
    # RFC 6750: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')


@dataclass(frozen=True)
class Caller:
    """The EMR client a FHIR request comes from, as its access token says."""

    client_id: str
    organization: UUID
    scopes: tuple[Scope, ...]
    expires_at: dt.datetime | None = field(default=None, compare=False)

    def allows(self, resource_type: str, interaction: str) -> bool:
        return any(scope.allows(resource_type, interaction) for scope in self.scopes)

    def require(self, resource_type: str, interaction: str) -> None:
        """Go on only if a scope allows ``interaction`` (one of ``c r u d s``) on
        ``resource_type``; else 403 ``forbidden``."""
        if interaction not in INTERACTIONS or len(interaction) != 1:
            raise ValueError(f"interaction is one of c r u d s, not {interaction!r}")
        if not self.allows(resource_type, interaction):
            granted = " ".join(s.text for s in self.scopes) or "none"
            needed = f"system/{resource_type}.{interaction}"
            raise Forbidden(
                f"the token of {self.client_id} does not allow {needed} (granted: {granted})",
                needed,
            )


LOCAL_DEVELOPMENT = "local-dev"


def local_caller(organization: UUID) -> Caller:
    """Every request's caller when authentication is off (``EMR_BRIDGE_AUTH_REQUIRED=false``)."""
    return Caller(LOCAL_DEVELOPMENT, organization, ALL_SCOPES)


def organization_id(org: str) -> UUID:
    try:
        return UUID(org)
    except ValueError:
        raise NotFound(f"no organisation {org!r}") from None


MAX_TOKEN_CHARS = 512


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer`` header; 401 without one."""
    if not authorization:
        raise Unauthorized(
            "this endpoint needs an access token: Authorization: Bearer <token> (get one at "
            "the token_endpoint of .well-known/smart-configuration)",
            error=None,
        )
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("the Authorization header is not Bearer <token>", "invalid_request")
    if len(token) > MAX_TOKEN_CHARS or not token.isascii() or not token.isprintable():
        raise Unauthorized("the access token is not one this server gave")
    return token


def token_digest(token: str) -> bytes:
    """How an access token is kept and looked up: its SHA-256 (a random 256-bit token
    needs no slow hash)."""
    return hashlib.sha256(token.encode()).digest()


async def caller(request: Request, org: str) -> Caller:
    """The dependency of every FHIR route: the EMR client the request's access token belongs
    to, for the organisation in the URL. Sets ``request.state.client_id`` (the actor of what
    it asks for) and ``request.state.caller``."""
    authentication: Authentication = request.app.state.auth
    found = await authentication.caller(org, request.headers.get("authorization"))
    request.state.client_id = found.client_id
    request.state.caller = found
    return found


CallerDep = Annotated[Caller, Depends(caller)]
