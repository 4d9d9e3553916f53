"""What every request to /v1 passes, over HTTP: tokens, idempotency keys, strict bodies,
security headers and rate limit fields."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from gateway_platform import AUDIENCE, Platform, open_gateway_clinic, wait_until
from prometheus_client.parser import text_string_to_metric_families

from clinic.devstack.components import free_port
from clinic.devstack.infra import Infrastructure
from clinic.devstack.issuer import KeyStore
from clinic.devstack.testing import RunningService

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
        replays = _sample(desk.get("/metrics").text, "gateway_idempotent_replays_total")
        assert replays >= 1
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


def test_bookings_arriving_together_are_each_answered_and_audited_once_and_one_key_books_once(
    gateway_platform: Platform,
) -> None:
    """The gateway writes the claims, answers and audit rows of requests arriving together
    in groups: each request still gets its own answer and its own audit row, and one key
    sent by many at once is still one booking."""
    clinic = open_gateway_clinic(gateway_platform, "Crowded Clinic")
    ids = clinic.ids
    with gateway_platform.client(clinic.tokens["front_desk"]) as desk:
        query = {"appointment_type_id": ids.kind, "location_id": ids.location,
                 "from": DAY, "to": DAY, "page_size": 100}  # fmt: skip
        slots = wait_until(lambda: desk.get("/v1/slots", params=query).json().get("slots"))
        starts: list[str] = []  # times that do not overlap: one patient books them all
        ends: list[str] = []
        for slot in sorted(slots, key=lambda slot: slot["start"]):
            if not starts or slot["start"] >= ends[-1]:
                starts.append(slot["start"])
                ends.append(slot["end"])
        starts = starts[:13]
        assert len(starts) == 13

        def book(start: str, key: str) -> httpx.Response:
            body = {"appointment_type_id": ids.kind, "location_id": ids.location,
                    "patient_id": clinic.patients[0], "start": start}  # fmt: skip
            return desk.post("/v1/appointments", json=body, headers={"Idempotency-Key": key})

        with ThreadPoolExecutor(12) as pool:
            crowd = list(pool.map(lambda start: book(start, f"crowd-{uuid.uuid4()}"), starts[:12]))
        assert [answer.status_code for answer in crowd] == [201] * 12, [
            a.text[:300] for a in crowd if a.status_code != 201
        ]
        assert len({answer.json()["id"] for answer in crowd}) == 12

        once = f"once-{uuid.uuid4()}"
        with ThreadPoolExecutor(8) as pool:
            repeats = list(pool.map(lambda _: book(starts[12], once), range(8)))
        assert {answer.status_code for answer in repeats} <= {201, 409}, [r.text for r in repeats]
        decided = {answer.json()["id"] for answer in repeats if answer.status_code == 201}
        assert len(decided) == 1
        later = book(starts[12], once)
        assert later.status_code == 201
        assert later.json()["id"] in decided
        assert later.headers["idempotency-replayed"] == "true"
    with gateway_platform.client(clinic.tokens["org_admin"]) as admin:
        params = {"operation": "appointments.create", "page_size": 100}
        entries = admin.get("/v1/audit-events", params=params).json()["audit_events"]
    first_answers = [e for e in entries if e["outcome"] == 201 and not e["replayed"]]
    booked = {answer.json()["id"] for answer in crowd} | decided
    assert len(first_answers) == len(booked) == 13
    assert all(len(booked.intersection(e["target_ids"])) == 1 for e in first_answers)
    assert booked == {i for e in first_answers for i in e["target_ids"]} & booked
    assert len(entries) == 12 + 8 + 1  # every request, its replays and refusals too


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


def test_a_refused_change_is_audited_with_its_outcome(gateway_platform: Platform) -> None:
    clinic = open_gateway_clinic(gateway_platform, "Refusal Clinic")
    elsewhere = str(uuid.uuid4())
    with gateway_platform.client(clinic.tokens["provider"]) as provider:
        answer = provider.post(f"/v1/appointments/{elsewhere}/cancel", json={"reason": "x"},
                               headers={"Idempotency-Key": "c-1"})  # fmt: skip
        assert answer.status_code == 404
        denied = provider.post("/v1/locations", json={"name": "X", "time_zone": "UTC"},
                               headers={"Idempotency-Key": "l-1"})  # fmt: skip
        assert denied.status_code == 403
    with gateway_platform.client(clinic.tokens["org_admin"]) as admin:
        found = admin.get("/v1/audit-events", params={"actor": "dr-a"}).json()["audit_events"]
    seen = {(e["operation"], e["outcome"], tuple(e["target_ids"])) for e in found}
    assert ("appointments.cancel", 404, (elsewhere,)) in seen
    assert ("locations.write", 403, ()) in seen


def _sample(exposition: str, name: str, **labels: str) -> float:
    """A sample's value from a Prometheus exposition (0 when the series is not there)."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_a_service_that_is_down_is_a_503_with_retry_after_and_a_client_over_its_limit_a_429(
    gateway_platform: Platform, infrastructure: Infrastructure
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    gateway = RunningService(
        "clinic.gateway",
        {
            **infrastructure.environment(),
            "GATEWAY_DATABASE_SCHEMA": f"g_{uuid.uuid4().hex[:8]}",
            "GATEWAY_BOOKING_URL": dead,
            "GATEWAY_AVAILABILITY_URL": dead,
            "GATEWAY_NOTIFICATION_URL": dead,
            "GATEWAY_JWT_ISSUER": gateway_platform.issuer,
            "GATEWAY_JWKS_URL": f"{gateway_platform.issuer}/.well-known/jwks.json",
            "GATEWAY_RATE_LIMIT_CLIENT": "4/minute",
            "GATEWAY_CORS_ORIGINS": "https://portal.example",
            # The gateway makes no Kafka client: a broker nowhere does not concern it.
            "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": dead.removeprefix("http://"),
        },
        "GATEWAY_",
    ).start()
    try:
        org = str(uuid.uuid4())
        token = gateway_platform.token("front_desk", org, "desk-limited")
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=gateway.url, headers=headers, timeout=30) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert "broker" not in ready.json()["checks"]
            down = client.get(f"/v1/appointments/{uuid.uuid4()}")
            assert down.status_code == 503, down.text
            assert down.headers["content-type"] == "application/problem+json"
            assert int(down.headers["retry-after"]) >= 1
            for _ in range(3):
                client.get("/v1/me")
            limited = client.get("/v1/me")
            assert limited.status_code == 429, limited.text
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.headers["ratelimit"].startswith('"client";r=0')
            preflight = client.options("/v1/appointments", headers={
                "Origin": "https://portal.example", "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,idempotency-key"})  # fmt: skip
            assert preflight.status_code == 200
            allowed = preflight.headers["access-control-allow-origin"]
            assert allowed == "https://portal.example"
            evil = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
            stranger = client.options("/v1/appointments", headers=evil)
            assert "access-control-allow-origin" not in stranger.headers
            assert client.get("/v1/me", headers={"Authorization": ""}).status_code == 401
            # What ops see of it (the gateway's own metrics).
            metrics = client.get("/metrics").text
        upstream = "gateway_upstream_requests_total"
        assert _sample(metrics, upstream, service="booking", outcome="unavailable") == 1
        assert _sample(metrics, "gateway_upstream_retries_total", service="booking") == 2
        assert _sample(metrics, "gateway_rate_limited_total", scope="client") == 1
        assert _sample(metrics, "gateway_auth_failures_total", reason="missing") == 1
    finally:
        gateway.stop()


def test_the_waitlist_lists_who_waits_and_a_patient_sees_only_their_own_entries(
    gateway_platform: Platform,
) -> None:
    clinic = open_gateway_clinic(gateway_platform, "Waitlist Clinic")
    ana, ben = clinic.patients
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    body = {"appointment_type_id": clinic.ids.kind, "location_ids": [clinic.ids.location],
            "earliest": DAY, "latest": later}  # fmt: skip
    with gateway_platform.client(clinic.tokens["front_desk"]) as desk:
        for patient in (ana, ben):
            joined = desk.post("/v1/waitlist-entries", json={**body, "patient_id": patient},
                               headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip
            assert joined.status_code == 201, joined.text
        listed = wait_until(
            lambda: (
                len(desk.get("/v1/waitlist-entries").json()["entries"]) == 2
                and desk.get("/v1/waitlist-entries").json()
            )
        )
        assert listed, "the desk never saw both entries"
        assert [e["patient_id"] for e in listed["entries"]] == [ana, ben]
    with gateway_platform.client(clinic.tokens["patient"]) as patient:
        mine = patient.get("/v1/waitlist-entries").json()["entries"]
        assert [e["patient_id"] for e in mine] == [ana]
        assert patient.get("/v1/waitlist-entries", params={"patient_id": ben}).status_code == 403
