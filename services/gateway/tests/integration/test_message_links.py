"""A message's links through the gateway over HTTP: no bearer token (the signed token is
the credential), notification's answers passed on, malformed tokens refused before it."""

from __future__ import annotations

import pytest
from gateway_platform import Platform

pytestmark = pytest.mark.integration
UNKNOWN = "A" * 86


def test_a_link_needs_no_token_and_one_notification_does_not_know_is_its_problem(
    gateway_platform: Platform,
) -> None:
    with gateway_platform.client(None) as anonymous:
        for answer in (
            anonymous.get(f"/v1/links/{UNKNOWN}"),
            anonymous.post(f"/v1/links/{UNKNOWN}", json={}),
        ):
            assert answer.status_code in (400, 404), answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["type"].startswith("https://")
            assert answer.json()["instance"] == "/v1/links/{token}"  # the token never echoed
            assert "RateLimit" in answer.headers  # counted by the caller's address
            assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/links/short", None),
        ("GET", "/v1/links/" + "x" * 401, None),
        ("GET", "/v1/links/has%20space" + "a" * 20, None),
        ("POST", f"/v1/links/{UNKNOWN}", {"start": "tomorrow"}),
        ("POST", f"/v1/links/{UNKNOWN}", {"start": "2026-12-09T09:30:00"}),  # no offset
        ("POST", f"/v1/links/{UNKNOWN}", {"unknown": 1}),
    ],
)
def test_a_malformed_link_or_body_is_refused_by_the_gateway(
    gateway_platform: Platform, method: str, path: str, body: object
) -> None:
    with gateway_platform.client(None) as anonymous:
        answer = anonymous.request(method, path, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
