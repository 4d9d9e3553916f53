"""The web app (``web/``, built to ``web/dist``) served at ``/app/``: patients book and
manage their appointments, front desks and clinic admins work, all on ``/v1``.

- ``/app/config.json`` tells the app where to sign in (an OpenID Connect issuer, the
  client id and scope): the same build runs against any identity provider.
- A file of the build is served as it is, its precompressed ``.br`` or ``.gz`` twin when the
  browser takes it; the hashed ``assets/`` are cached for a year, everything else is
  revalidated.
- Any other path under ``/app/`` is the app's own page (its router reads the address), so
  a link into it (a reminder's, a bookmark) opens the page it names.
- Every answer carries a content security policy: scripts, styles and fonts from the
  gateway only; calls to the gateway and to the issuer only.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from clinic.gateway.settings import GatewaySettings
from clinic.platform.problems import Problem

PREFIX = "/app"
IMMUTABLE = "public, max-age=31536000, immutable"
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


class WebAppMissingError(Problem):
    status = 404
    slug = "web-app-not-built"
    title = "The web app is not served here"


class WebFileMissingError(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


def issuer_of(settings: GatewaySettings) -> str:
    return (settings.web_issuer or settings.jwt_issuer).rstrip("/")


def content_security_policy(settings: GatewaySettings) -> str:
    parts = urllib.parse.urlsplit(issuer_of(settings))
    issuer = f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self'; connect-src 'self' {issuer}".rstrip()
        + "; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def takes(accept_encoding: str, encoding: str) -> bool:
    """Whether an Accept-Encoding field takes ``encoding`` (named or ``*``, with q above 0)."""
    for part in accept_encoding.split(","):
        name, _, parameters = part.partition(";")
        if name.strip().lower() not in (encoding, "*"):
            continue
        quality = 1.0
        for parameter in parameters.split(";"):
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


def _root(settings: GatewaySettings) -> Path:
    root = Path(settings.web_dir) if settings.web_dir else None
    if root is None or not (root / "index.html").is_file():
        raise WebAppMissingError(
            "the gateway serves the web app when GATEWAY_WEB_DIR names its build "
            "(`make web` builds web/dist; `make up` serves it)"
        )
    return root.resolve()


def _file(root: Path, path: str) -> Path | None:
    """The build's file at ``path``, never one outside the build."""
    if not path or "\x00" in path:
        return None
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _serve(request: Request, file: Path, cache: str) -> Response:
    settings: GatewaySettings = request.app.state.settings
    headers = {
        "Cache-Control": cache,
        "Content-Security-Policy": content_security_policy(settings),
        "Vary": "Accept-Encoding",
    }
    accepted = request.headers.get("accept-encoding", "")
    media_type = TYPES.get(file.suffix, "application/octet-stream")
    for encoding, suffix in ENCODINGS:
        twin = file.with_name(file.name + suffix)
        if takes(accepted, encoding) and twin.is_file():
            headers["Content-Encoding"] = encoding
            return FileResponse(twin, media_type=media_type, headers=headers)
    return FileResponse(file, media_type=media_type, headers=headers)


@router.get(PREFIX)
async def app_root() -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


@router.get(f"{PREFIX}/config.json")
async def config(request: Request) -> Response:
    settings: GatewaySettings = request.app.state.settings
    _root(settings)
    return JSONResponse(
        {
            "issuer": issuer_of(settings),
            "client_id": settings.web_client_id,
            "scope": settings.web_scope,
        },
        headers={"Cache-Control": "no-cache"},
    )


@router.get(PREFIX + "/{path:path}")
async def page(request: Request, path: str) -> Response:
    root = _root(request.app.state.settings)
    file = _file(root, path)
    if file is not None:
        immutable = path.startswith("assets/")
        return _serve(request, file, IMMUTABLE if immutable else "no-cache")
    if Path(path).suffix and not path.endswith(".html"):
        raise WebFileMissingError(f"the web app has no file {path!r}")
    return _serve(request, root / "index.html", "no-cache")
