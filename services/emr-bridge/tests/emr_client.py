"""An EMR client as SMART Backend Services describe it, for the tests: its key pair, its
public JWKS, and client assertions it signs (or forges, to show they are refused); and, for
the process-level tests, an operator's admin client and a FHIR client holding a token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class SigningKey:
    algorithm: str
    kid: str
    private: Any = field(repr=False)

    @classmethod
    def rsa(cls, kid: str = "rsa-1", bits: int = 2048) -> SigningKey:
        return cls("RS384", kid, rsa.generate_private_key(public_exponent=65537, key_size=bits))

    @classmethod
    def ec(cls, kid: str = "ec-1", curve: ec.EllipticCurve | None = None) -> SigningKey:
        return cls("ES384", kid, ec.generate_private_key(curve or ec.SECP384R1()))

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        to_jwk = RSAAlgorithm.to_jwk if self.algorithm == "RS384" else ECAlgorithm.to_jwk
        jwk: dict[str, Any] = to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def private_jwk(self) -> dict[str, Any]:
        to_jwk = RSAAlgorithm.to_jwk if self.algorithm == "RS384" else ECAlgorithm.to_jwk
        jwk: dict[str, Any] = to_jwk(self.private, as_dict=True)
        return {**jwk, "kid": self.kid}

    def public_pem(self) -> bytes:
        pem: bytes = self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.public_jwk() for key in keys]}


def claims(client_id: str, audience: str, lifetime: float = 240, **changes: Any) -> dict[str, Any]:
    now = time.time()
    found: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "exp": int(now + lifetime),
        "iat": int(now),
        "jti": str(uuid.uuid4()),
    }
    found.update(changes)
    return {k: v for k, v in found.items() if v is not None}


def sign(key: SigningKey, payload: dict[str, Any], **header: Any) -> str:
    headers = {k: v for k, v in {"kid": key.kid, "typ": "JWT", **header}.items() if v is not None}
    return jwt.encode(payload, key.private, algorithm=key.algorithm, headers=headers)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unsigned(payload: dict[str, Any], kid: str) -> str:
    """``alg: none``: a JWT with no signature at all."""
    header = _b64(json.dumps({"alg": "none", "kid": kid, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def hs256_with(secret: bytes, payload: dict[str, Any], kid: str) -> str:
    """The key-confusion forgery: HS256 with the client's public key as the HMAC secret."""
    header = _b64(json.dumps({"alg": "HS256", "kid": kid, "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


def assertion_form(assertion: str, scope: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


ADMIN_TOKEN = "the-tests-admin-token-of-at-least-32-characters"
"""The admin token the process-level tests start the bridge with (EMR_BRIDGE_ADMIN_TOKEN)."""


def admin_client(url: str) -> httpx.Client:
    """The bridge's admin API, as an operator."""
    return httpx.Client(base_url=url, timeout=30,
                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip


def fhir_client(url: str, org: str, scopes: str = "system/*.cruds") -> httpx.Client:
    """A FHIR client of ``org``: an EMR client registered with a secret by the operator,
    holding an access token for ``scopes``."""
    client_id = f"emr-{uuid.uuid4().hex[:8]}"
    secret = secrets.token_urlsafe(32)
    with admin_client(url) as admin:
        registered = admin.put(f"/admin/organizations/{org}/emr-clients/{client_id}",
                               json={"name": "Test EMR", "scopes": scopes.split(),
                                     "secret": secret})  # fmt: skip
        assert registered.status_code in (200, 201), registered.text
    base = f"{url}/fhir/{org}"
    token = httpx.post(f"{base}/auth/token", timeout=30, auth=(client_id, secret),
                       data={"grant_type": "client_credentials", "scope": scopes})  # fmt: skip
    assert token.status_code == 200, token.text
    access = token.json()["access_token"]
    return httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {access}"})
