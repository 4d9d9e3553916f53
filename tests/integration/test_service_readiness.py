"""Every service reports readiness truthfully: 200 when its database and broker (where it
uses Kafka) answer, 503 with the reason when either is unreachable."""

import asyncio
import importlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from clinic.devstack.components import free_port
from clinic.devstack.stack import SERVICES


def service(module: str) -> tuple[Callable[..., FastAPI], type[Any]]:
    main = importlib.import_module(f"{module}.main")
    settings_module = importlib.import_module(f"{module}.settings")
    settings_cls = next(
        v
        for k, v in vars(settings_module).items()
        if k.endswith("Settings") and k != "ServiceSettings" and isinstance(v, type)
    )
    return main.create_app, settings_cls


async def readiness_of(app: FastAPI, settle: float) -> httpx.Response:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            deadline = asyncio.get_running_loop().time() + settle
            while True:
                response = await client.get("/readyz")
                if response.status_code == 200 or asyncio.get_running_loop().time() > deadline:
                    return response
                await asyncio.sleep(0.2)


@pytest.mark.parametrize("spec", SERVICES, ids=[s.name for s in SERVICES])
async def test_a_service_is_ready_when_its_database_and_broker_answer(
    spec: Any, settings_for: Callable[..., Any]
) -> None:
    create_app, settings_cls = service(spec.module)
    # Listeners besides HTTP (the bridge's MLLP) on a free port, not on the default one a
    # running `make up` holds.
    listeners = {"mllp_port": free_port()} if "mllp_port" in settings_cls.model_fields else {}
    app = create_app(settings_for(settings_cls, **listeners))
    response = await readiness_of(app, settle=20)
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    # The broker is checked where the service uses Kafka (not the gateway: HTTP only).
    uses_kafka = app.state.runtime.broker is not None
    assert uses_kafka == (spec.name != "gateway")
    assert {"database", "schema"} <= set(checks)
    assert ("broker" in checks) == uses_kafka
    assert set(checks.values()) == {"ok"}


async def test_an_unreachable_database_makes_readiness_answer_503_with_the_reason(
    settings_for: Callable[..., Any],
) -> None:
    create_app, settings_cls = service("clinic.booking")
    dead = f"postgresql://clinic@127.0.0.1:{free_port()}/clinic"
    response = await readiness_of(create_app(settings_for(settings_cls, database_url=dead)), 1)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert "Connection refused" in checks["database"]
    assert str(dead.split(":")[-1].split("/")[0]) in checks["database"]
    assert checks["broker"] != "ok"


async def test_a_wrong_broker_address_makes_readiness_answer_503_with_the_reason(
    settings_for: Callable[..., Any],
) -> None:
    create_app, settings_cls = service("clinic.availability")
    wrong = f"127.0.0.1:{free_port()}"
    response = await readiness_of(
        create_app(settings_for(settings_cls, kafka_bootstrap_servers=wrong)), settle=3
    )
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    assert wrong in checks["broker"]


async def test_a_start_up_that_fails_is_reported_by_readiness_not_swallowed(
    settings_for: Callable[..., Any],
) -> None:
    from clinic.platform.service import create_runtime, create_service_app

    _, settings_cls = service("clinic.notification")
    runtime = create_runtime(settings_for(settings_cls))

    async def broken() -> None:
        raise ValueError("the demo data could not be loaded")

    runtime.started = broken
    response = await readiness_of(create_service_app(runtime, title="t", description=""), 2)
    assert response.status_code == 503
    assert response.json()["checks"]["startup"] == (
        "RuntimeError: start-up failed: ValueError: the demo data could not be loaded"
    )
