"""A local identity provider for development: it hands out the access tokens the gateway
verifies, so that ``make up`` works on a machine with no identity provider at all.

FOR LOCAL DEVELOPMENT ONLY. NEVER EXPOSE IT. Its ``POST /token`` gives anyone who can reach
it a token for any role of any organisation, with no password. It listens on 127.0.0.1
only. In any shared or production setting the gateway points at a real identity provider
(``GATEWAY_JWT_ISSUER``, ``GATEWAY_JWKS_URL``, ``GATEWAY_JWT_AUDIENCE``).

- ``GET /.well-known/openid-configuration``: the issuer's metadata (OpenID Connect
  Discovery / RFC 8414 shape).
- ``GET /.well-known/jwks.json``: its public signing keys.
- ``GET /authorize``: the start of an OAuth2 authorization code flow with PKCE (RFC 7636,
  ``S256`` only), as a browser app signs in: a page that lists the demo users (``make up``
  writes them to ``demo-users.json`` in the state directory) and a form for any other;
  choosing one redirects to the app's ``redirect_uri`` (on this machine only) with a code
  that is good once, for a minute.
- ``POST /token``: ``grant_type=authorization_code`` with ``code``, ``redirect_uri``,
  ``client_id`` and ``code_verifier`` redeems such a code. Without a grant type (or with
  ``urn:clinic:dev-login``) it is a dev login: form or JSON with ``role``, ``org``,
  ``subject``, optional ``locations`` (a list, or comma-separated in a form),
  ``patient_id``, ``expires_in`` (seconds, at most 24 h), ``client_id``. Both answer an
  OAuth2 token response ``{"access_token", "token_type": "Bearer", "expires_in"}``.
- ``POST /rotate``: makes a new signing key; the previous one stays published, so tokens
  it signed keep verifying until they expire.

Its RS256 key pairs live in a state directory (``keys/``, PEM files of mode 600), made once,
so tokens survive ``make down`` / ``make up``. :func:`mint` signs a token with the current
key without the server (the ``make up`` summary and tests use it).

``python -m clinic.devstack.issuer --state-dir DIR --port N --issuer URL --audience AUD``
serves it with uvicorn on 127.0.0.1; ``... --state-dir DIR --rotate`` rotates and exits.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import html
import json
import os
import re
import secrets
import time
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

ALGORITHM = "RS256"
DEFAULT_AUDIENCE = "clinic-gateway"
MAX_EXPIRES_IN = 24 * 3600
MAX_LOCATIONS = 500
PUBLISHED_KEYS = 2
"""The current key and the one before it: tokens signed before a rotation keep verifying."""
# The gateway's roles (clinic.gateway.principal.Role); a lib does not import a service.
ROLES = ("patient", "front_desk", "provider", "clinic_admin", "org_admin", "ops")
CLINIC_ROLES = ("front_desk", "provider", "clinic_admin")
_KEY_FILE = re.compile(r"^signing-(\d{6})\.pem$")
DEV_LOGIN = "urn:clinic:dev-login"
DEMO_USERS_FILE = "demo-users.json"
CODE_SECONDS = 60
WEB_TOKEN_SECONDS = 3600
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43,128}$")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": ALGORITHM}


class KeyStore:
    """The issuer's RSA key pairs, one PEM file each under ``state_dir/keys``; the newest
    signs. Several processes may share it (the server, ``make up``, tests)."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / "keys"
        self._loaded: dict[str, SigningKey] = {}

    def current(self) -> SigningKey:
        keys = self.published()
        return keys[0] if keys else self._create(1)

    def published(self) -> list[SigningKey]:
        """The keys the JWKS lists, newest first."""
        return [self._load(name) for name in self._names()[:PUBLISHED_KEYS]]

    def rotate(self) -> SigningKey:
        numbers = (int(m.group(1)) for n in self._names() if (m := _KEY_FILE.match(n)))
        key = self._create(max(numbers, default=0) + 1)
        for name in self._names()[PUBLISHED_KEYS:]:
            (self.directory / name).unlink(missing_ok=True)
        return key

    def _names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(
            (p.name for p in self.directory.iterdir() if _KEY_FILE.match(p.name)), reverse=True
        )

    def _load(self, name: str) -> SigningKey:
        if name not in self._loaded:
            private = serialization.load_pem_private_key(
                (self.directory / name).read_bytes(), password=None
            )
            if not isinstance(private, rsa.RSAPrivateKey):
                raise ValueError(f"{self.directory / name} is not an RSA private key")
            self._loaded[name] = SigningKey(_thumbprint(private.public_key()), private)
        return self._loaded[name]

    def _create(self, number: int) -> SigningKey:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        name = f"signing-{number:06d}.pem"
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Written under a private name and linked into place: the file is never seen half
        # written, and when two processes make the first key at once, one key wins for both.
        draft = self.directory / f".{name}.{os.getpid()}.{uuid.uuid4().hex}"
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
        try:
            with contextlib.suppress(FileExistsError):
                os.link(draft, self.directory / name)
        finally:
            draft.unlink()
        return self._load(name)


def _thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 thumbprint: a key id that follows from the key itself."""
    jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def mint(
    state_dir: Path,
    issuer: str,
    audience: str,
    claims: Mapping[str, Any],
    expires_in: int = 3600,
) -> str:
    """An access token signed with the issuer's current key (made when there is none).

    ``claims`` are added as they are (``sub`` and the platform's ``org``, ``role``,
    ``locations``, ``patient_id``); ``iss``, ``aud``, ``iat``, ``nbf``, ``exp`` and ``jti``
    are set here.
    """
    if not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise ValueError(f"expires_in must be 1 to {MAX_EXPIRES_IN} seconds")
    return _signed(KeyStore(state_dir).current(), issuer, audience, claims, expires_in)


def _signed(
    key: SigningKey, issuer: str, audience: str, claims: Mapping[str, Any], expires_in: int
) -> str:
    now = int(time.time())
    payload = {
        **claims,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + expires_in,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(payload, key.private_key, algorithm=ALGORITHM, headers={"kid": key.kid})


class LoginError(ValueError):
    """A dev login request the issuer will not sign (answered as OAuth2 ``invalid_request``)."""


def login_claims(fields: Mapping[str, Any], claim_prefix: str = "") -> dict[str, Any]:
    """The claims of a dev login, checked the way the gateway checks them, so that a token
    the issuer hands out is one the gateway accepts."""
    role = fields.get("role")
    if role not in ROLES:
        raise LoginError(f"role must be one of {', '.join(ROLES)}")
    subject = fields.get("subject") or fields.get("sub") or f"dev-{str(role).replace('_', '-')}"
    if not (isinstance(subject, str) and 1 <= len(subject) <= 200 and subject.isprintable()):
        raise LoginError("subject must be 1 to 200 printable characters")
    claims: dict[str, Any] = {"sub": subject, claim_prefix + "role": role}
    claims[claim_prefix + "org"] = _uuid(fields.get("org"), "org")
    locations = fields.get("locations")
    if isinstance(locations, str):
        locations = [part.strip() for part in locations.split(",") if part.strip()]
    if locations:
        if role not in CLINIC_ROLES:
            raise LoginError(
                f"locations apply to the clinic roles only ({', '.join(CLINIC_ROLES)})"
            )
        if not isinstance(locations, list) or len(locations) > MAX_LOCATIONS:
            raise LoginError(f"locations must be a list of at most {MAX_LOCATIONS} ids")
        claims[claim_prefix + "locations"] = [_uuid(v, "locations") for v in locations]
    patient = fields.get("patient_id")
    if role == "patient":
        claims[claim_prefix + "patient_id"] = _uuid(patient, "patient_id")
    elif patient:
        raise LoginError("patient_id applies to the patient role only")
    client = fields.get("client_id") or "dev-login"
    if not (isinstance(client, str) and len(client) <= 200):
        raise LoginError("client_id must be at most 200 characters")
    claims["azp"] = client
    return claims


def _uuid(value: Any, name: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise LoginError(f"{name} must be a UUID") from None


def _expires_in(value: Any) -> int:
    try:
        seconds = int(value if value is not None and value != "" else 3600)
    except (TypeError, ValueError):
        raise LoginError("expires_in must be a number of seconds") from None
    if not 1 <= seconds <= MAX_EXPIRES_IN:
        raise LoginError(f"expires_in must be 1 to {MAX_EXPIRES_IN} seconds (24 h)")
    return seconds


class GrantError(LoginError):
    """An authorization code that cannot be redeemed (OAuth2 ``invalid_grant``)."""


@dataclass(frozen=True)
class DemoUser:
    """A user the sign-in page offers: a label and a dev login's fields (``role``, ``org``,
    ``subject``, ``patient_id``, ``locations``)."""

    label: str
    fields: dict[str, Any]


def write_demo_users(state_dir: Path, users: list[DemoUser]) -> None:
    """The users the sign-in page offers (``make up`` writes the demo organisation's)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / DEMO_USERS_FILE
    draft = path.with_name(f".{DEMO_USERS_FILE}.{os.getpid()}")
    draft.write_text(json.dumps([{"label": u.label, "fields": u.fields} for u in users], indent=2))
    draft.replace(path)


def read_demo_users(state_dir: Path) -> list[DemoUser]:
    try:
        listed = json.loads((state_dir / DEMO_USERS_FILE).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(listed, list):
        return []
    return [
        DemoUser(str(u["label"]), dict(u["fields"]))
        for u in listed
        if isinstance(u, dict) and "label" in u and isinstance(u.get("fields"), dict)
    ]


@dataclass(frozen=True)
class Authorization:
    """What a browser app asks for at /authorize (RFC 6749 4.1.1 with RFC 7636 PKCE)."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    state: str

    @classmethod
    def parse(cls, fields: Mapping[str, Any]) -> Authorization:
        if fields.get("response_type") != "code":
            raise LoginError("response_type must be code")
        client = str(fields.get("client_id") or "")
        if not (1 <= len(client) <= 200 and client.isprintable()):
            raise LoginError("client_id must be 1 to 200 printable characters")
        redirect = str(fields.get("redirect_uri") or "")
        try:
            parts = urllib.parse.urlsplit(redirect)
            host = parts.hostname
        except ValueError:
            host = None
        if host not in LOOPBACK or parts.scheme not in ("http", "https") or parts.fragment:
            raise LoginError(
                "redirect_uri must be an http(s) address on this machine (127.0.0.1 or "
                "localhost), without a fragment"
            )
        if fields.get("code_challenge_method") != "S256":
            raise LoginError("code_challenge_method must be S256 (PKCE is required)")
        challenge = str(fields.get("code_challenge") or "")
        if not _CHALLENGE.match(challenge):
            raise LoginError("code_challenge must be 43 to 128 base64url characters")
        state = str(fields.get("state") or "")
        if len(state) > 500 or not state.isprintable():
            raise LoginError("state must be at most 500 printable characters")
        return cls(client, redirect, challenge, state)

    def query(self) -> dict[str, str]:
        return {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
            "state": self.state,
        }

    def redirect(self, code: str) -> str:
        params = {"code": code, **({"state": self.state} if self.state else {})}
        joiner = "&" if urllib.parse.urlsplit(self.redirect_uri).query else "?"
        return f"{self.redirect_uri}{joiner}{urllib.parse.urlencode(params)}"


@dataclass(frozen=True)
class _Grant:
    authorization: Authorization
    claims: dict[str, Any]
    expires: float


class Codes:
    """Authorization codes handed out and not yet redeemed: each is good once, for
    ``CODE_SECONDS``, by the client it was issued to with the verifier of its challenge."""

    def __init__(self) -> None:
        self._grants: dict[str, _Grant] = {}

    def issue(self, authorization: Authorization, claims: dict[str, Any]) -> str:
        now = time.monotonic()
        self._grants = {c: g for c, g in self._grants.items() if g.expires > now}
        code = secrets.token_urlsafe(32)
        self._grants[code] = _Grant(authorization, claims, now + CODE_SECONDS)
        return code

    def redeem(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        grant = self._grants.pop(str(fields.get("code") or ""), None)
        if grant is None or grant.expires <= time.monotonic():
            raise GrantError("the code is unknown, already used or expired")
        asked = grant.authorization
        if fields.get("client_id") != asked.client_id:
            raise GrantError("client_id is not the one the code was issued to")
        if fields.get("redirect_uri") != asked.redirect_uri:
            raise GrantError("redirect_uri is not the one the code was issued for")
        if not pkce_matches(str(fields.get("code_verifier") or ""), asked.code_challenge):
            raise GrantError("code_verifier does not match the code_challenge")
        return grant.claims


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 4.6: BASE64URL(SHA256(verifier)) is the challenge."""
    if not re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier):
        return False
    digest = hashlib.sha256(verifier.encode()).digest()
    return secrets.compare_digest(base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), challenge)


_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
}
_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:34rem;padding:1rem;"
    "color:#1a1a1a}button{font:inherit;display:block;width:100%;text-align:left;margin:.5rem 0;"
    "padding:.75rem 1rem;border:1px solid #555;border-radius:.5rem;background:#fff;"
    "cursor:pointer}button:focus,button:hover{outline:3px solid #0b57d0;outline-offset:2px}"
    "label{display:block;margin-top:.75rem}input,select{font:inherit;width:100%;"
    "box-sizing:border-box;padding:.5rem}.warning{background:#fff4e5;border-left:4px solid "
    "#8a4b00;padding:.5rem 1rem}.error{color:#a4000f;font-weight:600}"
)


def _sign_in_page(
    authorization: Authorization, users: list[DemoUser], error: str = "", status: int = 200
) -> Response:
    e = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
        for k, v in authorization.query().items()
    )
    buttons = "".join(
        f'<button type="submit" name="user" value="{n}">{e(u.label)}</button>'
        for n, u in enumerate(users)
    )
    roles = "".join(f'<option value="{r}">{r}</option>' for r in ROLES)
    problem = f'<p class="error" role="alert">{e(error)}</p>' if error else ""
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Sign in (development)</title><style>{_STYLE}</style></head><body><main>"
        f"<h1>Sign in</h1>{problem}"
        '<p class="warning">Development sign-in: no passwords. It hands out a token for any '
        "user, so it runs on this machine only. A real deployment uses your identity "
        "provider.</p>"
        f'<form method="post" action="authorize">{hidden}'
        + (f"<h2>Demo users</h2>{buttons}" if users else "")
        + "<h2>Another user</h2>"
        f'<label for="role">Role</label><select id="role" name="role">{roles}</select>'
        '<label for="org">Organisation id</label><input id="org" name="org">'
        '<label for="subject">Subject</label><input id="subject" name="subject">'
        '<label for="patient_id">Patient id (patients)</label>'
        '<input id="patient_id" name="patient_id">'
        '<label for="locations">Location ids, comma-separated (clinic roles)</label>'
        '<input id="locations" name="locations">'
        '<button type="submit" name="user" value="other">Sign in as this user</button>'
        "</form></main></body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=_PAGE_HEADERS)


def _refused_page(error: str) -> Response:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in request '
        f"refused</title><style>{_STYLE}</style></head><body><main><h1>This sign-in request "
        f'cannot be served</h1><p class="error" role="alert">{html.escape(error)}</p>'
        "</main></body></html>"
    )
    return HTMLResponse(page, status_code=400, headers=_PAGE_HEADERS)


def create_app(
    state_dir: Path,
    issuer: str,
    audience: str = DEFAULT_AUDIENCE,
    claim_prefix: str = "",
) -> Starlette:
    """The issuer's HTTP API (see the module's docstring). Local development only."""
    issuer = issuer.rstrip("/")
    keys = KeyStore(state_dir)
    keys.current()  # the first key is made at start, not by the first request
    codes = Codes()

    def configuration(request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": issuer,
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "authorization_endpoint": f"{issuer}/authorize",
                "token_endpoint": f"{issuer}/token",
                "grant_types_supported": ["authorization_code", DEV_LOGIN],
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": [ALGORITHM],
                "token_endpoint_auth_methods_supported": ["none"],
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nbf",
                    "jti",
                    "azp",
                    *(claim_prefix + c for c in ("org", "role", "locations", "patient_id")),
                ],
            }
        )

    def jwks(request: Request) -> Response:
        return JSONResponse(
            {"keys": [key.jwk() for key in keys.published()]},
            headers={"Cache-Control": "public, max-age=60"},
        )

    async def authorize(request: Request) -> Response:
        fields = dict(request.query_params)
        if request.method == "POST":
            fields = await _fields(request)
        try:
            asked = Authorization.parse(fields)
        except LoginError as error:
            return _refused_page(str(error))  # never redirected to an address not checked
        users = await run_in_threadpool(read_demo_users, state_dir)
        if request.method == "GET":
            return _sign_in_page(asked, users)
        chosen = str(fields.get("user") or "")
        login: dict[str, Any] = {
            k: fields[k]
            for k in ("role", "org", "subject", "patient_id", "locations")
            if fields.get(k)
        }
        if chosen.isdigit() and int(chosen) < len(users):
            login = users[int(chosen)].fields
        try:
            claims = login_claims({**login, "client_id": asked.client_id}, claim_prefix)
        except LoginError as error:
            return _sign_in_page(asked, users, str(error), 400)
        return RedirectResponse(asked.redirect(codes.issue(asked, claims)), status_code=303)

    async def token(request: Request) -> Response:
        try:
            fields = await _fields(request)
            grant = fields.get("grant_type") or DEV_LOGIN
            if grant == "authorization_code":
                claims, expires_in = codes.redeem(fields), WEB_TOKEN_SECONDS
            elif grant == DEV_LOGIN:
                claims = login_claims(fields, claim_prefix)
                expires_in = _expires_in(fields.get("expires_in"))
            else:
                return _oauth_error(
                    "grant_type must be authorization_code or " + DEV_LOGIN,
                    "unsupported_grant_type",
                )
        except GrantError as error:
            return _oauth_error(str(error), "invalid_grant")
        except LoginError as error:
            return _oauth_error(str(error))
        # Keys are files: read them off the event loop.
        key = await run_in_threadpool(keys.current)
        access_token = _signed(key, issuer, audience, claims, expires_in)
        return JSONResponse(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def rotate(request: Request) -> Response:
        key = keys.rotate()
        return JSONResponse({"kid": key.kid, "published": [k.kid for k in keys.published()]})

    def ready(request: Request) -> Response:
        return JSONResponse({"status": "ready"})

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", configuration),
            Route("/.well-known/jwks.json", jwks),
            Route("/authorize", authorize, methods=["GET", "POST"]),
            Route("/token", token, methods=["POST"]),
            Route("/rotate", rotate, methods=["POST"]),
            Route("/healthz", ready),
            Route("/readyz", ready),
        ],
        # Browser apps read the metadata and keys and redeem their codes; only apps on this
        # machine (a page elsewhere must not read a dev login's token).
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origin_regex=r"^https?://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$",
                allow_methods=["GET", "POST"],
                allow_headers=["Content-Type"],
                max_age=600,
            )
        ],
    )


async def _fields(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise LoginError("the body is not JSON") from None
        if not isinstance(body, dict):
            raise LoginError("the body must be a JSON object")
        return body
    form = await request.form()
    fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
    repeated = [v for v in form.getlist("locations") if isinstance(v, str)]
    if len(repeated) > 1:
        fields["locations"] = repeated
    return fields


def _oauth_error(description: str, error: str = "invalid_request") -> Response:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=400,
        headers={"Cache-Control": "no-store"},
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m clinic.devstack.issuer", description=__doc__)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8079)
    parser.add_argument("--issuer", help="the `iss` of its tokens (default: its own URL)")
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE)
    parser.add_argument("--claim-prefix", default="")
    parser.add_argument("--rotate", action="store_true", help="make a new signing key and exit")
    args = parser.parse_args(argv)
    if args.rotate:
        print(f"signing with key {KeyStore(args.state_dir).rotate().kid}")
        return
    issuer = args.issuer or f"http://127.0.0.1:{args.port}"
    app = create_app(args.state_dir, issuer, args.audience, args.claim_prefix)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
