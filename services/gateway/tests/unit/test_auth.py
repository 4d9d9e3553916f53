"""Access tokens: what the gateway accepts, what it refuses with 401, and how it keeps the
identity provider's signing keys (cache, rotation, a provider that is down)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from clinic.gateway.auth import (
    IdentityProviderUnavailable,
    TokenVerifier,
    Unauthenticated,
)
from clinic.gateway.principal import Principal, Role
from clinic.gateway.settings import GatewaySettings

ISSUER = "https://id.clinic.example"
AUDIENCE = "clinic-gateway"
JWKS_URL = "https://id.clinic.example/.well-known/jwks.json"
ORG = UUID("92937ae7-73e7-4932-9f34-09ffb41f75a9")
BERLIN = UUID("07596037-21dd-44d0-b964-e873af64daba")
PATIENT = UUID("5b0a3c57-3f55-4a41-9c1e-2f7c0f7a1d11")
NO_TOKEN = 'Bearer realm="clinic"'

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    return {**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    return {**ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"}


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class IdentityProvider:
    """Serves a JWKS over httpx's mock transport and counts how often it is asked."""

    keys: list[dict[str, Any]] = field(default_factory=lambda: [rsa_jwk(RSA_KEY, "k1")])
    down: bool = False
    fetches: int = 0
    delay: float = 0.0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        assert str(request.url) == JWKS_URL
        self.fetches += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"keys": self.keys})


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "anna.schmidt",
        "iat": now,
        "exp": now + 600,
        "jti": "token-1",
        "azp": "front-desk-app",
        "org": str(ORG),
        "role": "front_desk",
        "locations": [str(BERLIN)],
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(
    payload: dict[str, Any] | None = None,
    key: Any = RSA_KEY,
    kid: str | None = "k1",
    algorithm: str = "RS256",
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload or claims(), key, algorithm=algorithm, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(
    header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


@pytest.fixture
def idp() -> IdentityProvider:
    return IdentityProvider()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier_for(idp: IdentityProvider, clock: Clock) -> Callable[..., TokenVerifier]:
    def build(**settings: Any) -> TokenVerifier:
        config = GatewaySettings(
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            jwks_url=JWKS_URL,
            jwks_cache_seconds=300,
            jwks_min_refresh_seconds=10,
            retry_after_seconds=7,
            **settings,
        )
        http = httpx.AsyncClient(transport=httpx.MockTransport(idp.handle))
        return TokenVerifier(config, http, clock=clock)

    return build


@pytest.fixture
def verifier(verifier_for: Callable[..., TokenVerifier]) -> TokenVerifier:
    return verifier_for()


async def refused(verifier: TokenVerifier, header: str | None) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as refusal:
        await verifier.verify(header)
    problem = refusal.value
    assert problem.status == 401
    assert problem.headers is not None
    token = (header or "").partition(" ")[2].strip()
    if len(token) > 3:
        assert token not in problem.detail
        assert token not in problem.headers["WWW-Authenticate"]
    return problem


async def test_a_valid_token_names_its_principal(verifier: TokenVerifier) -> None:
    token = claims()
    principal = await verifier.verify(f"Bearer {signed(token)}")

    assert principal == Principal(
        subject="anna.schmidt",
        role=Role.FRONT_DESK,
        organization_id=ORG,
        location_ids=frozenset({BERLIN}),
        patient_id=None,
        client_id="front-desk-app",
        token_id="token-1",
        expires_at=float(token["exp"]),
    )


async def test_the_scheme_is_case_insensitive_and_client_id_stands_in_for_azp(
    verifier: TokenVerifier,
) -> None:
    token = signed(claims(azp=None, client_id="kiosk", jti=None))

    principal = await verifier.verify(f"bearer {token}")

    assert principal.client_id == "kiosk"
    assert principal.token_id is None


async def test_a_patient_token_names_the_patient_and_no_locations(
    verifier: TokenVerifier,
) -> None:
    token = signed(claims(role="patient", patient_id=str(PATIENT)))

    principal = await verifier.verify(f"Bearer {token}")

    assert principal.role is Role.PATIENT
    assert principal.patient_id == PATIENT
    assert principal.location_ids is None


async def test_an_org_admin_token_sees_every_location_whatever_it_lists(
    verifier: TokenVerifier,
) -> None:
    principal = await verifier.verify(f"Bearer {signed(claims(role='org_admin'))}")

    assert principal.location_ids is None
    assert principal.may_see_location(uuid4())


async def test_a_clinic_role_without_locations_works_at_every_location(
    verifier: TokenVerifier,
) -> None:
    principal = await verifier.verify(f"Bearer {signed(claims(locations=None))}")

    assert principal.location_ids is None


async def test_an_ec_signed_token_is_accepted_when_es256_is_configured(
    idp: IdentityProvider, verifier: TokenVerifier
) -> None:
    idp.keys = [rsa_jwk(RSA_KEY, "k1"), ec_jwk(EC_KEY, "ec1")]

    principal = await verifier.verify(f"Bearer {signed(key=EC_KEY, kid='ec1', algorithm='ES256')}")

    assert principal.subject == "anna.schmidt"


async def test_namespaced_platform_claims_are_read_under_the_configured_prefix(
    verifier_for: Callable[..., TokenVerifier],
) -> None:
    prefix = "https://clinic.example/"
    verifier = verifier_for(jwt_claim_prefix=prefix)
    plain = claims()
    payload = {
        **{k: v for k, v in plain.items() if k not in ("org", "role", "locations")},
        f"{prefix}org": str(ORG),
        f"{prefix}role": "provider",
    }

    principal = await verifier.verify(f"Bearer {signed(payload)}")

    assert principal.role is Role.PROVIDER
    with pytest.raises(Unauthenticated):
        await verifier.verify(f"Bearer {signed(plain)}")


async def test_an_expired_token_is_refused(verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = signed(claims(iat=now - 3600, exp=now - 60))

    problem = await refused(verifier, f"Bearer {token}")

    assert "expired" in problem.detail
    assert 'error="invalid_token"' in (problem.headers or {})["WWW-Authenticate"]


async def test_a_token_from_the_future_is_refused(verifier: TokenVerifier) -> None:
    now = int(time.time())

    problem = await refused(verifier, f"Bearer {signed(claims(nbf=now + 600))}")

    assert "not valid yet" in problem.detail


async def test_a_token_signed_by_another_key_under_a_known_key_id_is_refused(
    verifier: TokenVerifier,
) -> None:
    problem = await refused(verifier, f"Bearer {signed(key=OTHER_RSA_KEY, kid='k1')}")

    assert "signature" in problem.detail


async def test_a_token_for_another_audience_is_refused(verifier: TokenVerifier) -> None:
    problem = await refused(verifier, f"Bearer {signed(claims(aud='another-api'))}")

    assert "aud" in problem.detail


async def test_a_token_from_another_issuer_is_refused(verifier: TokenVerifier) -> None:
    problem = await refused(verifier, f"Bearer {signed(claims(iss='https://evil.example'))}")

    assert "iss" in problem.detail


async def test_an_unsigned_token_with_alg_none_is_refused(
    idp: IdentityProvider, verifier: TokenVerifier
) -> None:
    token = hand_made({"alg": "none", "typ": "JWT"}, claims(), lambda _: b"")

    await refused(verifier, f"Bearer {token}")

    assert token.endswith(".")
    assert idp.fetches == 0


async def test_an_hs256_token_keyed_with_the_public_key_pem_is_refused(
    verifier: TokenVerifier,
) -> None:
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = hand_made(
        {"alg": "HS256", "typ": "JWT", "kid": "k1"},
        claims(),
        lambda data: hmac.new(pem, data, hashlib.sha256).digest(),
    )

    problem = await refused(verifier, f"Bearer {token}")

    assert "algorithm" in problem.detail


async def test_a_token_whose_algorithm_is_not_its_keys_is_refused(
    idp: IdentityProvider, verifier: TokenVerifier
) -> None:
    idp.keys = [{**rsa_jwk(RSA_KEY, "k1"), "alg": "RS256"}]

    await refused(verifier, f"Bearer {signed(key=EC_KEY, kid='k1', algorithm='ES256')}")


async def test_a_token_naming_an_unknown_key_is_refused_after_one_refetch(
    idp: IdentityProvider, verifier: TokenVerifier
) -> None:
    await verifier.verify(f"Bearer {signed()}")

    problem = await refused(verifier, f"Bearer {signed(key=OTHER_RSA_KEY, kid='k-unknown')}")

    assert "key" in problem.detail
    assert idp.fetches == 2


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"exp": None}, "exp"),
        ({"iat": None}, "iat"),
        ({"sub": None}, "sub"),
        ({"iss": None}, "iss"),
        ({"aud": None}, "aud"),
        ({"org": None}, "org"),
        ({"role": None}, "role"),
        ({"org": "not-a-uuid"}, "org"),
        ({"org": 42}, "org"),
        ({"role": "surgeon"}, "role"),
        ({"role": ["front_desk"]}, "role"),
        ({"role": "patient"}, "patient_id"),
        ({"role": "patient", "patient_id": "someone"}, "patient_id"),
        ({"patient_id": str(PATIENT)}, "patient_id"),
        ({"locations": str(BERLIN)}, "locations"),
        ({"locations": ["Berlin"]}, "locations"),
        ({"sub": ""}, "sub"),
        ({"sub": "x" * 201}, "sub"),
        ({"sub": "anna\nschmidt"}, "sub"),
    ],
    ids=lambda value: json.dumps(value)[:40] if isinstance(value, dict) else value,
)
async def test_a_token_whose_required_or_platform_claims_are_missing_or_malformed_is_refused(
    verifier: TokenVerifier, changes: dict[str, Any], words: str
) -> None:
    problem = await refused(verifier, f"Bearer {signed(claims(**changes))}")

    assert words in problem.detail
    assert 'error="invalid_token"' in (problem.headers or {})["WWW-Authenticate"]


async def test_a_token_listing_more_than_500_locations_is_refused(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 501 UUIDs do not fit in 8 KB; the list's own bound is checked with a larger limit.
    monkeypatch.setattr("clinic.gateway.auth.MAX_TOKEN_BYTES", 32768)
    many = [str(uuid4()) for _ in range(501)]

    problem = await refused(verifier, f"Bearer {signed(claims(locations=many))}")

    assert "at most 500" in problem.detail


@pytest.mark.parametrize(
    "header", [None, "", "   ", "Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer  "]
)
async def test_a_request_without_a_bearer_token_is_challenged_with_the_realm_only(
    idp: IdentityProvider, verifier: TokenVerifier, header: str | None
) -> None:
    problem = await refused(verifier, header)

    assert problem.headers == {"WWW-Authenticate": NO_TOKEN}
    assert problem.body()["type"].endswith("/unauthenticated")
    assert idp.fetches == 0


@pytest.mark.parametrize(
    "header",
    ["Bearer not a token", "Bearer abc.def.ghi", "Bearer ###", "Bearer a.b", "Token abc.def"],
)
async def test_a_garbage_authorization_header_is_refused(
    verifier: TokenVerifier, header: str
) -> None:
    problem = await refused(verifier, header)

    assert (problem.headers or {})["WWW-Authenticate"].startswith(NO_TOKEN)


async def test_an_oversized_token_is_refused_before_it_is_parsed(
    idp: IdentityProvider, verifier: TokenVerifier
) -> None:
    token = signed(claims(padding="x" * 9000))

    problem = await refused(verifier, f"Bearer {token}")

    assert "8192" in problem.detail
    assert idp.fetches == 0


async def test_a_rotated_key_is_found_at_once_with_one_refetch(
    idp: IdentityProvider, verifier: TokenVerifier, clock: Clock
) -> None:
    # 1. The gateway knows the provider's first key.
    await verifier.verify(f"Bearer {signed()}")
    assert idp.fetches == 1

    # 2. The provider publishes a new key and signs with it a moment later.
    idp.keys = [rsa_jwk(RSA_KEY, "k1"), rsa_jwk(OTHER_RSA_KEY, "k2")]
    clock.now += 1
    principal = await verifier.verify(f"Bearer {signed(key=OTHER_RSA_KEY, kid='k2')}")

    # 3. Accepted after one refetch; both keys now verify without another.
    assert principal.subject == "anna.schmidt"
    assert idp.fetches == 2
    await verifier.verify(f"Bearer {signed(key=OTHER_RSA_KEY, kid='k2')}")
    await verifier.verify(f"Bearer {signed()}")
    assert idp.fetches == 2


async def test_random_key_ids_within_the_refresh_interval_cause_no_further_fetch(
    idp: IdentityProvider, verifier: TokenVerifier, clock: Clock
) -> None:
    await verifier.verify(f"Bearer {signed()}")
    await refused(verifier, f"Bearer {signed(kid='random-0')}")
    assert idp.fetches == 2

    for n in range(1, 20):
        clock.now += 0.4
        await refused(verifier, f"Bearer {signed(kid=f'random-{n}')}")

    assert idp.fetches == 2
    clock.now += 10
    await refused(verifier, f"Bearer {signed(kid='random-late')}")
    assert idp.fetches == 3


async def test_a_first_token_with_an_unknown_key_costs_one_fetch_not_two(
    idp: IdentityProvider, verifier: TokenVerifier
) -> None:
    await refused(verifier, f"Bearer {signed(kid='random')}")

    assert idp.fetches == 1


async def test_concurrent_requests_share_one_fetch_of_the_keys(
    idp: IdentityProvider, verifier: TokenVerifier
) -> None:
    idp.delay = 0.05

    principals = await asyncio.gather(*(verifier.verify(f"Bearer {signed()}") for _ in range(20)))

    assert len(principals) == 20
    assert idp.fetches == 1


async def test_the_keys_are_fetched_again_when_the_cache_expires(
    idp: IdentityProvider, verifier: TokenVerifier, clock: Clock
) -> None:
    await verifier.verify(f"Bearer {signed()}")
    clock.now += 299
    await verifier.verify(f"Bearer {signed()}")
    assert idp.fetches == 1

    # The provider dropped k1: once the cache expires, k1's tokens are refused.
    idp.keys = [rsa_jwk(OTHER_RSA_KEY, "k2")]
    clock.now += 2
    await refused(verifier, f"Bearer {signed()}")
    assert idp.fetches == 2


async def test_an_unreachable_identity_provider_with_no_known_keys_gives_503_with_retry_after(
    idp: IdentityProvider, verifier: TokenVerifier, clock: Clock
) -> None:
    idp.down = True

    with pytest.raises(IdentityProviderUnavailable) as unavailable:
        await verifier.verify(f"Bearer {signed()}")

    assert unavailable.value.status == 503
    assert unavailable.value.headers == {"Retry-After": "7"}
    assert unavailable.value.body()["type"].endswith("/identity-provider-unavailable")

    # Requests right after are answered at once, without asking the provider again.
    with pytest.raises(IdentityProviderUnavailable):
        await verifier.verify(f"Bearer {signed()}")
    assert idp.fetches == 1

    # Once it is back, tokens verify again.
    idp.down = False
    clock.now += 10
    await verifier.verify(f"Bearer {signed()}")


async def test_an_identity_provider_answering_an_error_counts_as_unreachable(
    verifier_for: Callable[..., TokenVerifier], clock: Clock
) -> None:
    settings = GatewaySettings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwks_url=JWKS_URL)
    for answer in (
        httpx.Response(500, text="oops"),
        httpx.Response(200, text="<html>"),
        httpx.Response(200, json={"keys": []}),
        httpx.Response(200, json={"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k1"}]}),
    ):
        http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _, a=answer: a))
        verifier = TokenVerifier(settings, http, clock=clock)

        with pytest.raises(IdentityProviderUnavailable):
            await verifier.verify(f"Bearer {signed()}")


async def test_a_warm_cache_keeps_verifying_while_the_identity_provider_is_down(
    idp: IdentityProvider, verifier: TokenVerifier, clock: Clock
) -> None:
    await verifier.verify(f"Bearer {signed()}")
    idp.down = True
    clock.now += 301

    principal = await verifier.verify(f"Bearer {signed()}")

    assert principal.subject == "anna.schmidt"
    assert idp.fetches == 2  # it tried once, failed, kept the keys it had
    await verifier.verify(f"Bearer {signed()}")
    assert idp.fetches == 2


async def test_a_token_verified_once_is_taken_again_without_its_signature_until_it_expires(
    idp: IdentityProvider, verifier: TokenVerifier, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    decode = verifier._decode
    monkeypatch.setattr(verifier, "_decode", lambda t, k: checked.append(t) or decode(t, k))
    # Expired 28 s ago: still valid within the 30 s leeway, for two seconds more.
    token = signed({**claims(), "exp": int(time.time()) - 28})
    for _ in range(3):
        assert (await verifier.verify(f"Bearer {token}")).subject == "anna.schmidt"
    assert len(checked) == 1
    await asyncio.sleep(3.1)
    await refused(verifier, f"Bearer {token}")
