"""A message link's signed token never reaches a trace or a log line: it is shown by its
name, whether a route matched the request or not, and an unexpected error's log line says
the path that way too."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

from clinic.platform.paths import shown_path
from clinic.platform.problem_handlers import install_problem_handlers

TOKEN = "eyJhcHBvaW50bWVudCI6IjEifQ.c2lnbmVk"


def test_a_token_is_shown_by_its_name_with_or_without_a_matched_route() -> None:
    assert shown_path({"path": f"/v1/links/{TOKEN}"}) == "/v1/links/{token}"
    assert shown_path({"path": f"/links/{TOKEN}/x"}) == "/links/{token}/x"
    routed = {"path": f"/r/{TOKEN}", "path_params": {"token": TOKEN}}
    assert shown_path(routed) == "/r/{token}"
    assert shown_path({"path": "/v1/appointments/42"}) == "/v1/appointments/42"


async def test_an_unexpected_errors_log_line_hides_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()

    @app.get("/links/{token}")
    async def link(token: str) -> None:
        raise RuntimeError("boom")

    install_problem_handlers(app)
    with caplog.at_level(logging.ERROR, logger="clinic.platform.problem_handlers"):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            answer = await client.get(f"/links/{TOKEN}")
    assert answer.status_code == 500
    (record,) = [r for r in caplog.records if r.getMessage().startswith("unexpected error")]
    assert record.path == "/links/{token}"  # type: ignore[attr-defined]
    assert TOKEN not in caplog.text
