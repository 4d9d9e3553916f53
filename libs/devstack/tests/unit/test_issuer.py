"""The local development issuer: its metadata and keys, and tokens from it that the gateway's
own verifier accepts (the issuer served in-process, the verifier fetching its JWKS)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from clinic.devstack.issuer import KeyStore, create_app, main, mint
from clinic.gateway.auth import TokenVerifier
from clinic.gateway.principal import Role
from clinic.gateway.settings import GatewaySettings

ISSUER = "http://127.0.0.1:8079"
AUDIENCE = "clinic-gateway"
ORG = "92937ae7-73e7-4932-9f34-09ffb41f75a9"
BERLIN = "07596037-21dd-44d0-b964-e873af64daba"
HAMBURG = "0e4e808c-7498-4869-8293-55632e5a1c4a"
PATIENT = "5b0a3c57-3f55-4a41-9c1e-2f7c0f7a1d11"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "issuer"


@pytest.fixture
def app(state: Path) -> Starlette:
    return create_app(state, ISSUER, AUDIENCE)


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as c:
        yield c


@pytest.fixture
def verifier(http: httpx.AsyncClient) -> TokenVerifier:
    settings = GatewaySettings(
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwks_url=f"{ISSUER}/.well-known/jwks.json",
        jwt_algorithms="RS256",
    )
    return TokenVerifier(settings, http)


async def test_the_metadata_names_the_issuer_its_keys_and_its_token_endpoint(
    http: httpx.AsyncClient,
) -> None:
    metadata = (await http.get("/.well-known/openid-configuration")).json()

    assert metadata["issuer"] == ISSUER
    assert metadata["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
    assert metadata["token_endpoint"] == f"{ISSUER}/token"
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert (await http.get("/readyz")).status_code == 200


async def test_the_jwks_publishes_one_rsa_signing_key_and_no_private_part_of_it(
    http: httpx.AsyncClient,
) -> None:
    jwks = (await http.get("/.well-known/jwks.json")).json()

    [key] = jwks["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert {"kid", "n", "e"} <= set(key)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    assert jwt.PyJWK.from_dict(key).algorithm_name == "RS256"


def test_the_key_pair_is_made_once_readable_by_its_owner_only_and_kept(state: Path) -> None:
    first = KeyStore(state).current()
    again = KeyStore(state).current()

    assert first.kid == again.kid
    [pem] = list((state / "keys").iterdir())
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "keys").stat().st_mode) == 0o700


async def test_a_minted_token_verifies_with_the_gateways_verifier(
    state: Path, verifier: TokenVerifier
) -> None:
    claims = {"sub": "anna", "org": ORG, "role": "clinic_admin", "locations": [BERLIN]}
    token = mint(state, ISSUER, AUDIENCE, claims, expires_in=600)

    principal = await verifier.verify(f"Bearer {token}")

    assert principal.subject == "anna"
    assert principal.role is Role.CLINIC_ADMIN
    assert principal.organization_id == UUID(ORG)
    assert principal.location_ids == {UUID(BERLIN)}
    assert principal.token_id


async def test_a_dev_login_by_form_gives_a_bearer_token_the_gateway_accepts(
    http: httpx.AsyncClient, verifier: TokenVerifier
) -> None:
    answer = await http.post(
        "/token",
        data={
            "role": "front_desk",
            "org": ORG,
            "subject": "frank",
            "locations": f"{BERLIN},{HAMBURG}",
        },
    )

    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    principal = await verifier.verify(f"Bearer {body['access_token']}")
    assert principal.role is Role.FRONT_DESK
    assert principal.subject == "frank"
    assert principal.location_ids == {UUID(BERLIN), UUID(HAMBURG)}
    assert principal.client_id == "dev-login"


async def test_a_dev_login_by_json_gives_a_patient_token_naming_the_patient(
    http: httpx.AsyncClient, verifier: TokenVerifier
) -> None:
    answer = await http.post(
        "/token",
        json={"role": "patient", "org": ORG, "patient_id": PATIENT, "expires_in": 86400},
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["expires_in"] == 86400
    principal = await verifier.verify(f"Bearer {answer.json()['access_token']}")
    assert principal.patient_id == UUID(PATIENT)
    assert principal.subject == "dev-patient"


@pytest.mark.parametrize(
    "fields",
    [
        {"role": "surgeon", "org": ORG},
        {"role": "ops", "org": "acme"},
        {"role": "patient", "org": ORG},
        {"role": "front_desk", "org": ORG, "patient_id": PATIENT},
        {"role": "org_admin", "org": ORG, "locations": [BERLIN]},
        {"role": "ops", "org": ORG, "expires_in": 86401},
        {"role": "ops", "org": ORG, "expires_in": "soon"},
        {"role": "ops", "org": ORG, "subject": "x" * 201},
    ],
)
async def test_a_dev_login_the_gateway_would_refuse_is_answered_with_invalid_request(
    http: httpx.AsyncClient, fields: dict[str, Any]
) -> None:
    answer = await http.post("/token", json=fields)

    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_request"


async def test_after_a_rotation_new_tokens_use_the_new_key_and_earlier_ones_still_verify(
    state: Path, http: httpx.AsyncClient, verifier: TokenVerifier
) -> None:
    claims = {"sub": "olga", "org": ORG, "role": "org_admin"}
    before = mint(state, ISSUER, AUDIENCE, claims)
    await verifier.verify(f"Bearer {before}")

    rotated = (await http.post("/rotate")).json()
    after = mint(state, ISSUER, AUDIENCE, claims)

    assert jwt.get_unverified_header(after)["kid"] == rotated["kid"]
    assert jwt.get_unverified_header(before)["kid"] in rotated["published"]
    assert (await verifier.verify(f"Bearer {after}")).subject == "olga"
    assert (await verifier.verify(f"Bearer {before}")).subject == "olga"

    # A second rotation (from the command line) retires the first key.
    main(["--state-dir", str(state), "--rotate"])
    published = [k["kid"] for k in (await http.get("/.well-known/jwks.json")).json()["keys"]]
    assert published[1] == rotated["kid"]
    assert jwt.get_unverified_header(before)["kid"] not in published
    assert len(list((state / "keys").iterdir())) == 2


def test_minting_refuses_a_lifetime_over_a_day(state: Path) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        mint(state, ISSUER, AUDIENCE, {"sub": "x"}, expires_in=86401)
