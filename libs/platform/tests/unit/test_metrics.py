"""HTTP metrics: every request counted and timed by its route template, never by its raw
path (ids would explode the label space), and the probes left out."""

import httpx
from fastapi import FastAPI, HTTPException

from clinic.platform.metrics import create_registry, install_metrics


def app_with_metrics() -> tuple[FastAPI, object]:
    app = FastAPI()
    registry = create_registry()
    install_metrics(app, registry, "test")

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        if thing_id == 0:
            raise HTTPException(404)
        if thing_id < 0:
            raise RuntimeError("boom")
        return {"id": thing_id}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app, registry


def sample(registry: object, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"service": "test", **labels})  # type: ignore[attr-defined]


async def test_requests_are_counted_by_route_template_and_status_class() -> None:
    app, registry = app_with_metrics()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for thing_id in (1, 2, 0):
            await client.get(f"/things/{thing_id}")
        assert (await client.get("/things/-1")).status_code == 500
        await client.get("/healthz")
        metrics = (await client.get("/metrics")).text
    route = {"method": "GET", "route": "/things/{thing_id}"}
    assert sample(registry, "http_requests_total", status="2xx", **route) == 2
    assert sample(registry, "http_requests_total", status="4xx", **route) == 1
    assert sample(registry, "http_requests_total", status="5xx", **route) == 1
    assert sample(registry, "http_request_duration_seconds_count", **route) == 4
    assert 'route="/healthz"' not in metrics
    assert "/things/1" not in metrics


def test_lag_in_messages_counts_from_the_committed_offset_or_the_first_one_on_the_broker() -> None:
    from clinic.platform.lag import lag_in_messages

    assert lag_in_messages(end=10, committed=6, beginning=0) == 4
    assert lag_in_messages(end=10, committed=None, beginning=3) == 7
    assert lag_in_messages(end=10, committed=-1, beginning=0) == 10
    assert lag_in_messages(end=10, committed=10, beginning=0) == 0
