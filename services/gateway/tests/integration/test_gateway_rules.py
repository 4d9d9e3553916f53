"""What every request to /v1 passes, over HTTP: tokens, idempotency keys, strict bodies,
security headers and rate limit fields."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from gateway_platform import AUDIENCE, Platform, open_gateway_clinic, wait_until

from clinic.devstack.issuer import KeyStore

pytestmark = pytest.mark.integration

DAY = (dt.date.today() + dt.timedelta(days=5)).isoformat()


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_expired_wrongly_signed_wrong_audience_and_unsigned_tokens_are_refused_with_401(
    gateway_platform: Platform,
) -> None:
    org = str(uuid.uuid4())
    now = int(time.time())
    claims = {"sub": "desk-9", "org": org, "role": "front_desk", "iss": gateway_platform.issuer,
              "aud": AUDIENCE, "iat": now, "exp": now + 600}  # fmt: skip
    good = gateway_platform.token("front_desk", org, "desk-9")
    key = KeyStore(gateway_platform.keys).current()
    kid = {"kid": key.kid}
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    expired = {**claims, "iat": now - 3600, "exp": now - 120}
    refused = {
        "expired": jwt.encode(expired, key.private_key, "RS256", headers=kid),
        "wrongly signed": jwt.encode(claims, stranger, "RS256", headers=kid),
        "wrong audience": jwt.encode(
            {**claims, "aud": "another-api"}, key.private_key, "RS256", headers=kid
        ),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.",
        "garbage": "not-a-token",
    }
    with gateway_platform.client(good) as client:
        assert client.get("/v1/me").status_code == 200
    for what, token in refused.items():
        with gateway_platform.client(token) as client:
            answer = client.get("/v1/me")
        assert answer.status_code == 401, (what, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"].startswith('Bearer realm="clinic"'), what
    with gateway_platform.client(None) as anonymous:
        answer = anonymous.post("/v1/appointments", content=b"{not json")
        assert answer.status_code == 401, "a token is asked for before the body is read"


def test_a_repeated_idempotency_key_gets_the_first_answer_and_another_body_gets_422(
    gateway_platform: Platform,
) -> None:
    clinic = open_gateway_clinic(gateway_platform, "Idempotent Clinic")
    ids = clinic.ids
    with gateway_platform.client(clinic.tokens["front_desk"]) as desk:
        query = {"appointment_type_id": ids.kind, "location_id": ids.location,
                 "from": DAY, "to": DAY}  # fmt: skip
        slots = wait_until(lambda: desk.get("/v1/slots", params=query).json().get("slots"))
        body = {"appointment_type_id": ids.kind, "location_id": ids.location,
                "patient_id": clinic.patients[0], "start": slots[0]["start"]}  # fmt: skip
        key = {"Idempotency-Key": f"book-{uuid.uuid4()}"}
        first = desk.post("/v1/appointments", json=body, headers=key)
        assert first.status_code == 201, first.text
        again = desk.post("/v1/appointments", json=dict(reversed(body.items())), headers=key)
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["idempotency-replayed"] == "true"
        assert again.headers["location"] == first.headers["location"]
        other = desk.post("/v1/appointments", json={**body, "start": slots[1]["start"]},
                          headers=key)  # fmt: skip
        assert other.status_code == 422
        assert other.json()["type"].endswith("/idempotency-key-reused")
        missing = desk.post("/v1/appointments", json=body)
        assert missing.status_code == 422
        assert missing.json()["errors"][0]["location"] == ["header", "Idempotency-Key"]
        mine = desk.get(f"/v1/patients/{clinic.patients[0]}/appointments").json()
        assert [a["id"] for a in mine["appointments"]] == [first.json()["id"]]
    with gateway_platform.client(clinic.tokens["clinic_admin"]) as someone_else:
        # The same key from another caller is another request.
        theirs = someone_else.post("/v1/appointments", json={**body, "start": slots[2]["start"]},
                                   headers=key)  # fmt: skip
        assert theirs.status_code == 201, theirs.text
        assert theirs.json()["id"] != first.json()["id"]


def test_unknown_fields_control_characters_and_wrong_types_are_refused_and_nothing_is_written(
    gateway_platform: Platform,
) -> None:
    clinic = open_gateway_clinic(gateway_platform, "Strict Clinic")
    with gateway_platform.client(clinic.tokens["front_desk"]) as desk:
        base = {"given_name": "Dora", "family_name": "Strict", "birth_date": "1990-01-01"}
        for bad in (
            {**base, "favourite_colour": "blue"},
            {**base, "given_name": "Do\x00ra"},
            {**base, "consent_sms": "yes"},
            {**base, "birth_date": "0001-01-01"},
        ):
            answer = desk.post(
                "/v1/patients", json=bad, headers={"Idempotency-Key": str(uuid.uuid4())}
            )
            assert answer.status_code == 422, (bad, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
        headers = {"Idempotency-Key": "x", "Content-Type": "application/json"}
        huge = desk.post("/v1/patients", content=b"[" + b"1," * 70000 + b"1]", headers=headers)
        assert huge.status_code == 413
        answer = desk.get("/v1/patients", params={"identifier": "urn:x|none"})
        assert answer.status_code == 200
        assert answer.json()["patients"] == []


def test_every_answer_carries_security_headers_and_where_the_client_stands_on_its_rate_limit(
    gateway_platform: Platform,
) -> None:
    org = str(uuid.uuid4())
    with gateway_platform.client(gateway_platform.token("ops", org)) as client:
        answer = client.get("/v1/me")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["ratelimit-policy"].startswith('"client";q=')
    assert answer.headers["ratelimit"].startswith('"client";r=')
