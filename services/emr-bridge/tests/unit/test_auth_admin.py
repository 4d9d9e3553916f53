"""The admin API's gate, in process and without a database: off (403) until
EMR_BRIDGE_ADMIN_TOKEN is set, then only that token gets in (401 otherwise), every answer
problem+json; and the SMART scopes it advertises are ones it grants."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from clinic.emr_bridge.api import admin_clients
from clinic.emr_bridge.api.auth import capability_security, scopes_supported
from clinic.emr_bridge.auth import parse_scopes
from clinic.emr_bridge.capability import capability_statement
from clinic.emr_bridge.fhir import validated
from clinic.emr_bridge.settings import EmrBridgeSettings
from clinic.platform.problem_handlers import install_problem_handlers

ADMIN = "an-admin-token-of-at-least-32-characters"
PATH = "/admin/organizations/7c9e6679-7425-40de-944b-e07fc1f90ae7/emr-clients"


@asynccontextmanager
async def admin_api(settings: EmrBridgeSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.settings = settings
    app.state.auth = None  # no store: nothing here may reach one
    app.include_router(admin_clients.router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bridge.test") as client:
        yield client


async def test_without_an_admin_token_set_the_admin_api_is_off() -> None:
    async with admin_api(EmrBridgeSettings(admin_token=None)) as client:
        for headers in ({}, {"Authorization": f"Bearer {ADMIN}"}):
            response = await client.get(PATH, headers=headers)
            assert response.status_code == 403
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith("/admin-api-disabled")
            assert "EMR_BRIDGE_ADMIN_TOKEN" in response.json()["detail"]


async def test_only_the_admin_token_opens_the_admin_api() -> None:
    async with admin_api(EmrBridgeSettings(admin_token=ADMIN)) as client:
        wrong = (None, "Bearer", f"Bearer {ADMIN}x", f"Bearer {ADMIN[:-1]}", f"Token {ADMIN}")
        for header in wrong:
            response = await client.delete(
                f"{PATH}/epic", headers={"Authorization": header} if header else {}
            )
            assert response.status_code == 401, header
            assert response.json()["type"].endswith("/admin-unauthorized")
        refused = await client.put(
            f"{PATH}/epic", json={"name": "X"}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert refused.status_code == 422  # past the gate, the body is checked


def test_every_scope_the_smart_configuration_lists_is_one_the_bridge_grants() -> None:
    assert len(parse_scopes(scopes_supported())) == len(scopes_supported())


def test_the_capability_statement_can_say_the_token_endpoint_as_smart_on_fhir_does() -> None:
    statement = capability_statement("https://emr.example/fhir/o", "2026-12-02")
    statement["rest"][0]["security"] = capability_security("https://emr.example/fhir/o/auth/token")
    assert validated(statement)["rest"][0]["security"]["service"][0]["coding"][0]["code"] == (
        "SMART-on-FHIR"
    )
