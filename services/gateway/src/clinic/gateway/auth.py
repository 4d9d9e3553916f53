"""Authentication: OAuth2 bearer access tokens (JWTs) verified against the identity provider's
published signing keys (JWKS), and the :class:`Principal` they name.

PyJWT does the JOSE work. The signing keys are fetched with the gateway's async HTTP client
(never blocking I/O inside a request), kept for ``jwks_cache_seconds``, and fetched again at
once when a token names a key not yet known (a rotated key), but not more often than every
``jwks_min_refresh_seconds`` (random key ids cannot make the gateway hammer the identity
provider). Concurrent fetches are one fetch. Only the configured asymmetric algorithms are
accepted: ``alg: none`` and HMAC (the public key used as a shared secret) are refused.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

import httpx
import jwt

from clinic.gateway.principal import CLINIC_ROLES, Principal, Role
from clinic.gateway.settings import GatewaySettings
from clinic.platform.problems import Problem

log = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 8192
MAX_LOCATIONS = 500
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
REALM = 'Bearer realm="clinic"'
_B64TOKEN = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


VERIFIED_TOKENS = 10_000
"""Verified tokens remembered at most."""


class Unauthenticated(Problem):
    """401: the request carries no access token, or one that is not valid for this API.

    Its ``WWW-Authenticate`` challenge follows RFC 6750: without a token, the realm only;
    with a token that is refused, ``error="invalid_token"`` and why.
    """

    status = 401
    slug = "unauthenticated"
    title = "Authentication needed"

    def __init__(self, detail: str, *, token_given: bool = True, reason: str = "invalid") -> None:
        super().__init__(detail)
        self.reason = reason if token_given else "missing"
        """For the metrics: missing, expired or invalid."""
        challenge = REALM
        if token_given:
            # A quoted-string of RFC 6750: no quote or backslash, printable ASCII only.
            described = "".join(c for c in detail if " " <= c <= "~" and c not in '"\\')
            challenge += f', error="invalid_token", error_description="{described}"'
        self.headers = {"WWW-Authenticate": challenge}


class IdentityProviderUnavailable(Problem):
    """503: the identity provider's signing keys cannot be fetched and none are known yet."""

    status = 503
    slug = "identity-provider-unavailable"
    title = "The identity provider is unavailable"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class TokenVerifier:
    """Turns an ``Authorization`` header into the :class:`Principal` its token names, or
    raises :class:`Unauthenticated` (401) or :class:`IdentityProviderUnavailable` (503).

    ``http`` is the client the signing keys are fetched with (the gateway's own; tests pass
    one with a mock transport); ``clock`` measures the key cache's age.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock
        self.algorithms = [a.strip() for a in settings.jwt_algorithms.split(",") if a.strip()]
        self.prefix = settings.jwt_claim_prefix
        self._keys: dict[str | None, dict[str, Any]] = {}
        self._verifiers: dict[tuple[str | None, str], jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._unknown_key_fetch_at: float | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._verified: dict[str, tuple[Principal, float, float]] = {}

    async def verify(self, authorization_header: str | None) -> Principal:
        token = _bearer_token(authorization_header)
        known = self._verified.get(token)
        if known is not None:
            principal, expires, until = known
            if time.time() < expires and self.clock() < until:
                return principal
            del self._verified[token]
        algorithm, kid = self._header(token)
        key = await self._key(kid, algorithm)
        claims = self._decode(token, key)
        principal = self._principal(claims)
        self._remember(token, principal, claims)
        return principal

    def _remember(self, token: str, principal: Principal, claims: dict[str, Any]) -> None:
        """A token verified once is taken again without checking its signature until it
        expires, and no longer than the keys that verified it are kept
        (``GATEWAY_JWKS_CACHE_SECONDS``: a key the identity provider withdraws stops working
        within that time). The same bytes verify the same way; the cache is bounded, oldest
        out first."""
        expires = float(claims["exp"]) + self.settings.jwt_leeway_seconds
        until = self.clock() + self.settings.jwks_cache_seconds
        if len(self._verified) >= VERIFIED_TOKENS:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (principal, expires, until)

    def _header(self, token: str) -> tuple[str, str | None]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("The access token is not a well-formed JWT.") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise Unauthenticated(
                "The access token is not signed with an algorithm this API accepts "
                f"({', '.join(self.algorithms)})."
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated("The access token's key id (kid) is not a string.")
        return algorithm, kid

    async def _key(self, kid: str | None, algorithm: str) -> jwt.PyJWK:
        now = self.clock()
        fetched = self._stale(now) and self._may_fetch_again(now)
        if fetched:
            await self._fetch_once()
        if not self._keys:
            raise IdentityProviderUnavailable(
                "The identity provider's signing keys cannot be fetched; try again shortly.",
                self.settings.retry_after_seconds,
            )
        # A key id the keys just fetched lack is not worth a second fetch.
        if self._find(kid) is None and not fetched and self._may_fetch_for_unknown_key(now):
            self._unknown_key_fetch_at = now
            await self._fetch_once()
        jwk = self._find(kid)
        if jwk is None:
            raise Unauthenticated("The access token is signed with a key this API does not know.")
        return self._verifier(kid if kid is not None else jwk.get("kid"), jwk, algorithm)

    def _find(self, kid: str | None) -> dict[str, Any] | None:
        if kid is None:
            # Without a key id, only a set of one key says which key it is.
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _verifier(self, kid: str | None, jwk: dict[str, Any], algorithm: str) -> jwt.PyJWK:
        declared = jwk.get("alg")
        if declared is not None and declared != algorithm:
            raise Unauthenticated("The access token's algorithm is not its key's.")
        expected_kty = "EC" if algorithm.startswith("ES") else "RSA"
        if jwk.get("kty") != expected_kty or (
            expected_kty == "EC" and jwk.get("crv") != _CURVES[algorithm]
        ):
            raise Unauthenticated("The access token's algorithm does not fit its key.")
        verifier = self._verifiers.get((kid, algorithm))
        if verifier is None:
            try:
                verifier = jwt.PyJWK.from_dict(jwk, algorithm=algorithm)
            except jwt.PyJWTError:
                raise Unauthenticated(
                    "The access token's algorithm does not fit its key."
                ) from None
            self._verifiers[(kid, algorithm)] = verifier
        return verifier

    def _stale(self, now: float) -> bool:
        return (
            self._fetched_at is None or now - self._fetched_at >= self.settings.jwks_cache_seconds
        )

    def _may_fetch_again(self, now: float) -> bool:
        # After a failed fetch, wait before the next one: a down identity provider is not
        # asked once per request.
        return (
            self._fetching is not None
            or self._failed_at is None
            or now - self._failed_at >= self.settings.jwks_min_refresh_seconds
        )

    def _may_fetch_for_unknown_key(self, now: float) -> bool:
        return (
            self._fetching is not None
            or self._unknown_key_fetch_at is None
            or now - self._unknown_key_fetch_at >= self.settings.jwks_min_refresh_seconds
        )

    async def _fetch_once(self) -> None:
        """Fetch the signing keys, joining a fetch already under way."""
        if self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch())
        # Shielded: a caller that goes away does not cancel the fetch the others await.
        await asyncio.shield(self._fetching)

    async def _fetch(self) -> None:
        try:
            keys = await self._download()
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as error:
            self._failed_at = self.clock()
            log.warning(
                "signing keys not fetched from %s: %s: %s",
                self.settings.jwks_url,
                type(error).__name__,
                error,
            )
            return
        finally:
            self._fetching = None
        self._keys = keys
        self._verifiers = {}
        self._fetched_at = self.clock()
        self._failed_at = None

    async def _download(self) -> dict[str | None, dict[str, Any]]:
        response = await self.http.get(
            self.settings.jwks_url,
            headers={"Accept": "application/json"},
            timeout=httpx.Timeout(
                self.settings.upstream_timeout_seconds,
                connect=self.settings.upstream_connect_timeout_seconds,
            ),
        )
        if response.status_code != 200:
            raise ValueError(f"answered {response.status_code}")
        document = response.json()
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK set")
        usable: dict[str | None, dict[str, Any]] = {}
        for raw in document["keys"]:
            if not isinstance(raw, dict) or raw.get("kty") not in ("RSA", "EC"):
                continue
            if raw.get("use", "sig") != "sig" or "verify" not in raw.get("key_ops", ["verify"]):
                continue
            try:
                jwt.PyJWK.from_dict(raw)  # a key PyJWT cannot use is left out
            except jwt.PyJWTError:
                continue
            kid = raw.get("kid")
            if (kid is None or isinstance(kid, str)) and kid not in usable:
                usable[kid] = raw
        if not usable:
            raise ValueError("no signing key in the JWK set")
        return usable

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_seconds,
                options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The access token has expired.", reason="expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("The access token is not valid yet.") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("The access token is not meant for this API (aud).") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("The access token comes from another issuer (iss).") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("The access token's signature does not verify.") from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"The access token has no {error.claim} claim.") from None
        except jwt.PyJWTError:
            raise Unauthenticated("The access token is not valid.") from None

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims["sub"]
        if not (isinstance(subject, str) and 1 <= len(subject) <= 200 and subject.isprintable()):
            raise Unauthenticated(
                "The access token's subject (sub) is not 1 to 200 printable characters."
            )
        role_name = self._claim(claims, "role")
        try:
            role = Role(role_name if isinstance(role_name, str) else "")
        except ValueError:
            raise Unauthenticated(
                f"The access token's {self.prefix}role claim is none of "
                f"{', '.join(r.value for r in Role)}."
            ) from None
        organization = self._uuid(claims, "org")
        locations = self._locations(claims)
        patient = claims.get(self.prefix + "patient_id")
        if role is Role.PATIENT and patient is None:
            raise Unauthenticated(
                f"A patient's access token needs a {self.prefix}patient_id claim."
            )
        if role is not Role.PATIENT and patient is not None:
            raise Unauthenticated(
                f"Only a patient's access token may carry a {self.prefix}patient_id claim."
            )
        return Principal(
            subject=subject,
            role=role,
            organization_id=organization,
            location_ids=locations if role in CLINIC_ROLES else None,
            patient_id=self._uuid(claims, "patient_id") if role is Role.PATIENT else None,
            client_id=_text(claims.get("azp")) or _text(claims.get("client_id")),
            token_id=_text(claims.get("jti")),
            expires_at=float(claims["exp"]),
        )

    def _claim(self, claims: Mapping[str, Any], name: str) -> Any:
        value = claims.get(self.prefix + name)
        if value is None:
            raise Unauthenticated(f"The access token has no {self.prefix}{name} claim.")
        return value

    def _uuid(self, claims: Mapping[str, Any], name: str) -> UUID:
        value = self._claim(claims, name)
        if not (isinstance(value, str) and _UUID.match(value)):
            raise Unauthenticated(f"The access token's {self.prefix}{name} claim is not a UUID.")
        return UUID(value)

    def _locations(self, claims: Mapping[str, Any]) -> frozenset[UUID] | None:
        value = claims.get(self.prefix + "locations")
        if value is None:
            return None
        if not (
            isinstance(value, list)
            and len(value) <= MAX_LOCATIONS
            and all(isinstance(v, str) and _UUID.match(v) for v in value)
        ):
            raise Unauthenticated(
                f"The access token's {self.prefix}locations claim is not a list of at most "
                f"{MAX_LOCATIONS} UUIDs."
            )
        return frozenset(UUID(v) for v in value)


def _bearer_token(header: str | None) -> str:
    if not header or not header.strip():
        raise Unauthenticated("This API needs a bearer access token.", token_given=False)
    if len(header) > MAX_TOKEN_BYTES + 64:
        raise Unauthenticated(f"The access token is longer than {MAX_TOKEN_BYTES} bytes.")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthenticated(
            "This API needs a bearer access token (Authorization: Bearer <token>).",
            token_given=False,
        )
    token = token.strip()
    if not token:
        raise Unauthenticated("This API needs a bearer access token.", token_given=False)
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthenticated(f"The access token is longer than {MAX_TOKEN_BYTES} bytes.")
    if not _B64TOKEN.match(token):
        raise Unauthenticated("The Authorization header is not `Bearer <token>`.")
    return token


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 200 else None
