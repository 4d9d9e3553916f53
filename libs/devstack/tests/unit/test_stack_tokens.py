"""`make up` and authentication: the gateway is pointed at the local issuer, and the demo
users' tokens it writes are ones the gateway accepts (no process started here)."""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx

from clinic.devstack.components import Component, Infrastructure, Source
from clinic.devstack.issuer import create_app
from clinic.devstack.stack import SERVICES, RunningService, Stack, demo_tokens
from clinic.gateway.auth import TokenVerifier
from clinic.gateway.principal import Role
from clinic.gateway.settings import GatewaySettings

ISSUER = "http://127.0.0.1:8079"
DEMO: dict[str, Any] = {
    "organization_id": "92937ae7-73e7-4932-9f34-09ffb41f75a9",
    "locations": {
        "Berlin Mitte": "07596037-21dd-44d0-b964-e873af64daba",
        "Hamburg Altona": "0e4e808c-7498-4869-8293-55632e5a1c4a",
    },
    "providers": [],
    "appointment_types": {},
    "patients": ["5b0a3c57-3f55-4a41-9c1e-2f7c0f7a1d11", "1f2b9c8e-4d3a-4e5f-8a7b-6c5d4e3f2a1b"],
}
INFRA = Infrastructure(
    Component("postgres", Source.LOCAL, "postgresql://clinic@127.0.0.1:5/clinic"),
    Component("kafka", Source.LOCAL, "127.0.0.1:9"),
)


def gateway_environment(env: Mapping[str, str], tmp_path: Path) -> dict[str, str]:
    stack = Stack(tmp_path / "up", env)
    started: dict[str, str] = {}

    def process(name: str, args: list[str], env: Mapping[str, str]) -> tuple[int, str]:
        started.update(env)
        return 0, str(tmp_path / f"{name}.log")

    stack._process = process  # type: ignore[method-assign]
    gateway = next(s for s in SERVICES if s.name == "gateway")
    sinks = RunningService("sinks", 0, 8025, "sinks.log", smtp_port=2525)
    issuer = RunningService("issuer", 0, 8079, "issuer.log")
    stack._spawn(gateway, INFRA, {}, sinks, 8080, issuer)
    return started


def test_make_up_points_the_gateway_at_the_local_issuer(tmp_path: Path) -> None:
    env = gateway_environment({}, tmp_path)

    assert env["GATEWAY_JWT_ISSUER"] == ISSUER
    assert env["GATEWAY_JWKS_URL"] == f"{ISSUER}/.well-known/jwks.json"
    assert env["GATEWAY_JWT_AUDIENCE"] == "clinic-gateway"


def test_an_identity_provider_named_in_the_environment_is_kept(tmp_path: Path) -> None:
    real = {
        "GATEWAY_JWT_ISSUER": "https://login.example/",
        "GATEWAY_JWKS_URL": "https://login.example/keys",
        "GATEWAY_JWT_AUDIENCE": "api://clinic",
    }

    env = gateway_environment(real, tmp_path)

    assert {k: env[k] for k in real} == real


async def test_the_demo_tokens_are_private_files_the_gateway_accepts_for_each_role(
    tmp_path: Path,
) -> None:
    written = demo_tokens(tmp_path, ISSUER, DEMO)

    assert set(written) == {r.value for r in Role}
    app = create_app(tmp_path / "issuer", ISSUER)
    settings = GatewaySettings(
        jwt_issuer=ISSUER, jwt_audience="clinic-gateway", jwks_url=f"{ISSUER}/.well-known/jwks.json"
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        verifier = TokenVerifier(settings, http)
        principals = {
            role: await verifier.verify(f"Bearer {path.read_text()}")
            for role, path in written.items()
        }
    for path in written.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    berlin = UUID(DEMO["locations"]["Berlin Mitte"])
    assert principals["front_desk"].location_ids == {berlin}
    assert principals["provider"].location_ids == {berlin}
    assert principals["clinic_admin"].location_ids is None
    assert principals["patient"].patient_id == UUID(DEMO["patients"][0])
    assert principals["org_admin"].organization_id == UUID(DEMO["organization_id"])
    assert principals["ops"].subject == "demo-ops"


def test_the_demo_tokens_are_made_again_at_every_make_up(tmp_path: Path) -> None:
    first = demo_tokens(tmp_path, ISSUER, DEMO)["ops"].read_text()

    again = demo_tokens(tmp_path, ISSUER, DEMO)["ops"].read_text()

    assert again != first


def test_without_demo_patients_there_is_no_patient_token(tmp_path: Path) -> None:
    written = demo_tokens(tmp_path, ISSUER, {**DEMO, "patients": []})

    assert "patient" not in written
    assert "front_desk" in written
