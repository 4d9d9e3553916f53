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


# A browser app signing in: the authorization code flow with PKCE.

APP = "http://127.0.0.1:8080/app/callback"
VERIFIER = "a-verifier-of-the-browser-app-that-is-long-enough-0123456789"
CHALLENGE = "K35PqqhlUYcNM0P12Wl_aDDMugrSgt49HJ8Pb6c2Jus"


def asked(**changes: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "clinic-web",
        "redirect_uri": APP,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "state": "s-1",
        **changes,
    }


def redeeming(code: str, **changes: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": "clinic-web",
        "redirect_uri": APP,
        "code_verifier": VERIFIER,
        **changes,
    }


async def code_for(http: httpx.AsyncClient, **login: str) -> str:
    chosen = await http.post("/authorize", data={**asked(), **login})
    assert chosen.status_code == 303, chosen.text
    location = httpx.URL(chosen.headers["location"])
    assert str(location).startswith(APP + "?")
    assert location.params["state"] == "s-1"
    return location.params["code"]


def test_the_challenge_is_the_base64url_sha256_of_the_verifier() -> None:
    from clinic.devstack.issuer import pkce_matches

    assert pkce_matches(VERIFIER, CHALLENGE)
    assert not pkce_matches(VERIFIER + "x", CHALLENGE)
    assert not pkce_matches("short", CHALLENGE)


async def test_a_browser_app_signs_in_as_a_demo_user_with_a_code_and_its_verifier(
    state: Path, http: httpx.AsyncClient, verifier: TokenVerifier
) -> None:
    from clinic.devstack.issuer import DemoUser, write_demo_users

    write_demo_users(
        state,
        [
            DemoUser(
                "Ada Lovelace (patient)", {"role": "patient", "org": ORG, "patient_id": PATIENT}
            ),
            DemoUser(
                "Front desk, Berlin", {"role": "front_desk", "org": ORG, "locations": [BERLIN]}
            ),
        ],
    )
    page = await http.get("/authorize", params=asked())
    assert page.status_code == 200
    assert "Ada Lovelace (patient)" in page.text
    assert "Front desk, Berlin" in page.text
    assert page.headers["cache-control"] == "no-store"

    code = await code_for(http, user="0")
    answer = await http.post(
        "/token", data=redeeming(code), headers={"Origin": "http://127.0.0.1:8080"}
    )

    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == "http://127.0.0.1:8080"
    elsewhere = await http.post(
        "/token",
        json={"role": "org_admin", "org": ORG},
        headers={"Origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in elsewhere.headers  # not readable there
    principal = await verifier.verify(f"Bearer {answer.json()['access_token']}")
    assert principal.role is Role.PATIENT
    assert principal.patient_id == UUID(PATIENT)
    assert principal.client_id == "clinic-web"


async def test_a_code_is_redeemed_once_only_with_its_verifier_client_and_address(
    http: httpx.AsyncClient,
) -> None:
    login = {"user": "other", "role": "ops", "org": ORG}
    made_up = await http.post("/token", data=redeeming("made-up"))
    assert made_up.json()["error"] == "invalid_grant"
    for wrong in (
        {"code_verifier": VERIFIER.replace("a", "b")},
        {"client_id": "another-app"},
        {"redirect_uri": APP + "/elsewhere"},
    ):
        code = await code_for(http, **login)
        refused = await http.post("/token", data=redeeming(code, **wrong))
        assert refused.status_code == 400, wrong
        assert refused.json()["error"] == "invalid_grant"
        # A code tried wrongly is spent: the right verifier cannot redeem it after.
        assert (await http.post("/token", data=redeeming(code))).status_code == 400

    code = await code_for(http, **login)
    assert (await http.post("/token", data=redeeming(code))).status_code == 200
    again = await http.post("/token", data=redeeming(code))
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_an_unknown_grant_type_is_unsupported(http: httpx.AsyncClient) -> None:
    answer = await http.post("/token", data={"grant_type": "password", "username": "x"})

    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    "changes",
    [
        {"redirect_uri": "https://evil.example/app/callback"},
        {"redirect_uri": "http://127.0.0.1.evil.example/cb"},
        {"redirect_uri": "javascript:alert(1)"},
        {"redirect_uri": APP + "#fragment"},
        {"code_challenge_method": "plain"},
        {"code_challenge": "too-short"},
        {"response_type": "token"},
        {"client_id": ""},
        {"state": "x" * 501},
    ],
)
async def test_a_sign_in_request_off_this_machine_or_without_pkce_is_refused_without_redirect(
    http: httpx.AsyncClient, changes: dict[str, str]
) -> None:
    for answer in (
        await http.get("/authorize", params=asked(**changes)),
        await http.post("/authorize", data={**asked(**changes), "user": "0"}),
    ):
        assert answer.status_code == 400
        assert "location" not in answer.headers
        assert "cannot be served" in answer.text


async def test_another_user_signs_in_from_the_form_and_a_wrong_one_is_told_why(
    http: httpx.AsyncClient, verifier: TokenVerifier
) -> None:
    code = await code_for(
        http, user="other", role="front_desk", org=ORG, subject="frank", locations=BERLIN
    )
    token = (await http.post("/token", data=redeeming(code))).json()["access_token"]
    principal = await verifier.verify(f"Bearer {token}")
    assert (principal.subject, principal.location_ids) == ("frank", {UUID(BERLIN)})

    wrong = await http.post(
        "/authorize", data={**asked(), "user": "other", "role": "patient", "org": ORG}
    )
    assert wrong.status_code == 400
    assert "patient_id must be a UUID" in wrong.text
    assert "location" not in wrong.headers


async def test_the_metadata_offers_the_code_flow_with_s256_only(http: httpx.AsyncClient) -> None:
    metadata = (await http.get("/.well-known/openid-configuration")).json()

    assert metadata["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "authorization_code" in metadata["grant_types_supported"]
