"""The web app served at /app/: its files, deep links into it, its configuration, and the
headers every answer carries; over HTTP (the app's ASGI stack, no services needed)."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from clinic.gateway.main import create_app
from clinic.gateway.settings import GatewaySettings

ISSUER = "http://127.0.0.1:8079"
SCRIPT = b"console.log('the app');\n" * 50


@pytest.fixture
def build(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>app</title>")
    (root / "assets" / "index-abc123.js").write_bytes(SCRIPT)
    (root / "assets" / "index-abc123.js.gz").write_bytes(gzip.compress(SCRIPT))
    (root / "assets" / "index-abc123.js.br").write_bytes(b"brotli bytes")
    (tmp_path / "secret.txt").write_text("not to be served")
    return root


async def client(**settings: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(GatewaySettings(jwt_issuer=ISSUER, **settings))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


@pytest.fixture
async def http(build: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for c in client(web_dir=str(build)):
        yield c


async def test_the_app_is_served_at_app_with_a_policy_that_allows_only_the_gateway_and_issuer(
    http: httpx.AsyncClient,
) -> None:
    moved = await http.get("/app")
    assert moved.status_code == 308
    assert moved.headers["location"] == "/app/"

    page = await http.get("/app/")
    assert page.status_code == 200
    assert page.text.startswith("<!doctype html>")
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert f"connect-src 'self' {ISSUER}" in policy
    assert "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_a_link_into_the_app_opens_the_app_whose_router_reads_the_address(
    http: httpx.AsyncClient,
) -> None:
    for path in ("/app/appointments", "/app/callback?code=x&state=y", "/app/desk/week.html"):
        answer = await http.get(path)
        assert answer.status_code == 200, path
        assert answer.text.startswith("<!doctype html>")


async def test_a_built_file_is_sent_precompressed_when_the_browser_takes_it_and_cached_a_year(
    http: httpx.AsyncClient,
) -> None:
    path = "/app/assets/index-abc123.js"
    brotli = await http.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert brotli.headers["content-encoding"] == "br"
    assert brotli.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert brotli.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "Accept-Encoding" in brotli.headers["vary"]

    zipped = await http.get(path, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == SCRIPT  # httpx decodes it

    plain = await http.get(path, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == SCRIPT


@pytest.mark.parametrize(
    "path",
    [
        "/app/assets/missing-0000.js",
        "/app/../secret.txt",
        "/app/%2e%2e/secret.txt",
        "/app/assets/..%2f..%2fsecret.txt",
        "/app/..%5csecret.txt",
    ],
)
async def test_a_file_the_build_has_not_is_a_404_problem_and_nothing_outside_it_is_served(
    http: httpx.AsyncClient, path: str
) -> None:
    answer = await http.get(path)

    assert "not to be served" not in answer.text
    assert answer.status_code in (200, 404), path
    if answer.status_code == 404:
        assert answer.headers["content-type"] == "application/problem+json"


async def test_the_config_names_where_the_app_signs_in(build: Path) -> None:
    async for http in client(
        web_dir=str(build), web_issuer="https://login.example/realms/clinic/", web_client_id="web"
    ):
        config = (await http.get("/app/config.json")).json()
        assert config == {
            "issuer": "https://login.example/realms/clinic",
            "client_id": "web",
            "scope": "openid",
        }
        page = await http.get("/app/")
        assert (
            "connect-src 'self' https://login.example;" in page.headers["content-security-policy"]
        )


async def test_without_a_build_the_app_is_a_404_problem_that_says_how_to_build_it() -> None:
    async for http in client():
        for path in ("/app/", "/app/config.json", "/app/appointments"):
            answer = await http.get(path)
            assert answer.status_code == 404
            assert answer.json()["type"].endswith("/web-app-not-built")
            assert "make web" in answer.json()["detail"]


def test_the_app_is_not_part_of_the_public_api_document() -> None:
    paths = create_app().openapi()["paths"]
    assert not [p for p in paths if p.startswith("/app")]


@pytest.mark.parametrize(
    ("field", "encoding", "taken"),
    [
        ("gzip, deflate, br", "br", True),
        ("br;q=0, gzip", "br", False),
        ("br;q=0, gzip", "gzip", True),
        ("*", "br", True),
        ("identity", "gzip", False),
        ("BR;q=0.5", "br", True),
        ("br;q=nonsense", "br", False),
        ("", "gzip", False),
    ],
)
def test_an_encoding_is_sent_only_when_the_browser_takes_it(
    field: str, encoding: str, taken: bool
) -> None:
    from clinic.gateway.web import takes

    assert takes(field, encoding) is taken
