"""Authentication of EMR clients over HTTP, on the bridge's app served on 127.0.0.1 with the
real PostgreSQL and broker: an operator registers clients with the admin token; an EMR
discovers the token endpoint, gets a token with a signed assertion (SMART Backend Services)
or its secret, and reads the audit trail with it; tokens of another organisation, too few
scopes, a replayed assertion and a removed client are refused; token errors are RFC 6749
JSON, FHIR errors OperationOutcomes, admin errors problem+json."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from emr_client import SigningKey, assertion_form, claims, jwks, sign
from fastapi import FastAPI

from clinic.devstack.components import free_port
from clinic.devstack.stack import readiness
from clinic.emr_bridge.fhir import validated
from clinic.emr_bridge.main import create_app
from clinic.emr_bridge.settings import EmrBridgeSettings

ADMIN = "an-admin-token-of-at-least-32-characters"
SECRET = "a-client-secret-of-more-than-32-characters"
ORG = str(uuid.uuid4())
OTHER_ORG = str(uuid.uuid4())
KEY = SigningKey.ec("ec-1")
PRIVATE_KEYS = {"keys": [KEY.private_jwk()]}


class Served:
    """The app under uvicorn in a thread of the test process, on 127.0.0.1."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="bridge", daemon=True)

    def start(self, within: float = 60.0) -> Served:
        self.thread.start()
        deadline = time.monotonic() + within
        reason = "not started"
        while time.monotonic() < deadline:
            ready, reason = readiness(self.url)
            if ready:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the bridge was not ready in {within}s: {reason}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def bridge(settings_for: Callable[..., Any], schema_name: str) -> Iterator[str]:
    settings = settings_for(
        EmrBridgeSettings,
        admin_token=ADMIN,
        consumer_group=f"bridge-{schema_name}",
        hl7_send_enabled=False,
        mllp_port=0,
    )
    served = Served(create_app(settings)).start()
    yield served.url
    served.stop()


class KeyServer:
    """A client's jwks_url: serves whatever key set it is given."""

    def __init__(self, key_set: dict[str, Any]) -> None:
        self.key_set = key_set
        self.requests = 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                body = json.dumps(owner.key_set).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Operator:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(
            base_url=url, timeout=30, headers={"Authorization": f"Bearer {ADMIN}"}
        )

    def register(self, org: str, client_id: str, **body: Any) -> dict[str, Any]:
        response = self.http.put(f"/admin/organizations/{org}/emr-clients/{client_id}", json=body)
        assert response.status_code in (200, 201), response.text
        answer: dict[str, Any] = response.json()
        return answer


class Emr:
    """An EMR client: discovers the token endpoint, signs assertions, calls FHIR."""

    def __init__(self, url: str, org: str, client_id: str, key: SigningKey = KEY) -> None:
        self.base = f"{url}/fhir/{org}"
        self.client_id = client_id
        self.key = key
        self.http = httpx.Client(timeout=30)
        configuration = self.http.get(f"{self.base}/.well-known/smart-configuration")
        assert configuration.status_code == 200, configuration.text
        self.token_endpoint: str = configuration.json()["token_endpoint"]

    def assertion(self, **changes: Any) -> str:
        return sign(self.key, claims(self.client_id, self.token_endpoint, **changes))

    def ask(self, body: dict[str, str], **headers: str) -> httpx.Response:
        return self.http.post(self.token_endpoint, data=body, headers=headers)

    def token(self, scope: str, assertion: str | None = None) -> str:
        response = self.ask(assertion_form(assertion or self.assertion(), scope))
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def get(self, path: str, token: str | None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(f"{self.base}{path}", params=params, headers=headers)


def oauth_error(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error, body
    description: str = body["error_description"]
    return description


def outcome(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = validated(response.json())
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code
    diagnostics: str = body["issue"][0]["diagnostics"]
    return diagnostics


def test_smart_configuration_says_how_an_emr_gets_a_token(bridge: str) -> None:
    response = httpx.get(f"{bridge}/fhir/{ORG}/.well-known/smart-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    configuration = response.json()
    assert configuration["token_endpoint"] == f"{bridge}/fhir/{ORG}/auth/token"
    assert configuration["grant_types_supported"] == ["client_credentials"]
    assert "private_key_jwt" in configuration["token_endpoint_auth_methods_supported"]
    assert configuration["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert "client-confidential-asymmetric" in configuration["capabilities"]
    assert "system/Appointment.rs" in configuration["scopes_supported"]
    missing = httpx.get(f"{bridge}/fhir/not-an-org/.well-known/smart-configuration")
    outcome(missing, 404, "not-found")


def test_an_emr_registered_with_its_keys_reads_the_audit_trail_with_a_signed_assertion(
    bridge: str,
) -> None:
    # 1. The operator registers the EMR with its public keys and the scopes it may ask for.
    operator = Operator(bridge)
    registered = operator.register(
        ORG,
        "epic",
        name="Epic at Mitte",
        scopes=["system/Appointment.rs", "system/AuditEvent.rs"],
        jwks=jwks(KEY),
    )
    assert registered["authentication"] == "private_key_jwt"
    assert registered["jwks"]["keys"][0]["kid"] == "ec-1"
    listed = operator.http.get(f"/admin/organizations/{ORG}/emr-clients").json()["items"]
    assert [c["client_id"] for c in listed] == ["epic"]

    # 2. The EMR signs an assertion and gets a bearer token for what it asks for.
    emr = Emr(bridge, ORG, "epic")
    assertion = emr.assertion()
    response = emr.ask(assertion_form(assertion, "system/AuditEvent.rs"))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    granted = response.json()
    assert granted["token_type"] == "bearer"
    assert granted["scope"] == "system/AuditEvent.rs"
    assert granted["expires_in"] == 300

    # 3. With it, the EMR reads the audit trail: its own log-in is in it.
    trail = emr.get("/AuditEvent", granted["access_token"], agent="epic")
    assert trail.status_code == 200, trail.text
    bundle = validated(trail.json())
    assert bundle["type"] == "searchset"
    events = [validated(e["resource"]) for e in bundle["entry"]]
    assert [(e["subtype"][0]["code"], e["outcome"]) for e in events] == [("110122", "0")]
    assert events[0]["agent"][0]["network"]["address"] == "127.0.0.1"
    read = emr.get(f"/AuditEvent/{events[0]['id']}", granted["access_token"])
    assert read.status_code == 200, read.text
    assert validated(read.json())["id"] == events[0]["id"]

    # 4. The same assertion again is refused: one use only.
    replayed = emr.ask(assertion_form(assertion, "system/AuditEvent.rs"))
    assert "used already" in oauth_error(replayed, 401, "invalid_client")

    # 5. Without a token, with a made-up one, with another organisation's: refused as FHIR.
    outcome(emr.get("/AuditEvent", None), 401, "login")
    outcome(emr.get("/AuditEvent", "made-up"), 401, "login")
    operator.register(OTHER_ORG, "epic", name="Epic", scopes=["system/*.rs"], jwks=jwks(KEY))
    elsewhere = Emr(bridge, OTHER_ORG, "epic").token("system/AuditEvent.rs")
    assert "another organisation" in outcome(emr.get("/AuditEvent", elsewhere), 403, "forbidden")

    # 6. A token without system/AuditEvent.rs may not read the trail; the refusal is audited.
    appointments_only = emr.token("system/Appointment.rs")
    refused = outcome(emr.get("/AuditEvent", appointments_only), 403, "forbidden")
    assert "system/AuditEvent.s" in refused
    failures = audited(emr, granted["access_token"], outcome="4")
    assert [d[:4] for code, d in failures if code == "search-type"] == ["403:"]

    # 7. Scopes beyond the registered ones are refused; the refusal is audited as a log-in.
    wider = emr.ask(assertion_form(emr.assertion(), "system/Appointment.cud"))
    assert "not allowed" in oauth_error(wider, 400, "invalid_scope")
    failures = audited(emr, granted["access_token"], outcome="4")
    logins = [d for code, d in failures if code == "110122"]
    assert len(logins) == 2
    assert "not allowed" in logins[0]  # newest first
    assert "used already" in logins[1]


def audited(emr: Emr, token: str, **params: str) -> list[tuple[str, str]]:
    """(subtype, outcome text) of the audit events found, newest first."""
    response = emr.get("/AuditEvent", token, **params)
    assert response.status_code == 200, response.text
    return [
        (e["resource"]["subtype"][0]["code"], e["resource"].get("outcomeDesc", ""))
        for e in validated(response.json())["entry"]
    ]


def test_token_errors_are_oauth_json_and_never_an_operation_outcome(bridge: str) -> None:
    Operator(bridge).register(
        ORG, "epic", name="Epic", scopes=["system/Appointment.rs"], jwks=jwks(KEY)
    )
    emr = Emr(bridge, ORG, "epic")
    good = assertion_form(emr.assertion(), "system/Appointment.rs")
    oauth_error(emr.ask({**good, "grant_type": "password"}), 400, "unsupported_grant_type")
    oauth_error(
        emr.http.post(emr.token_endpoint, json=good), 400, "invalid_request"
    )  # JSON is not a form
    twice = emr.http.post(
        emr.token_endpoint,
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "more than once" in oauth_error(twice, 400, "invalid_request")
    oauth_error(emr.ask({**good, "scope": "patient/*.read"}), 400, "invalid_scope")
    expired = assertion_form(emr.assertion(lifetime=-120), "system/Appointment.rs")
    assert "expired" in oauth_error(emr.ask(expired), 401, "invalid_client")
    stranger = Emr(bridge, ORG, "stranger")
    unknown = oauth_error(
        stranger.ask(assertion_form(stranger.assertion(), "system/Appointment.rs")),
        401,
        "invalid_client",
    )
    assert "no client 'stranger'" in unknown
    elsewhere = Emr(bridge, OTHER_ORG, "epic")
    oauth_error(
        emr.ask(assertion_form(elsewhere.assertion(), "system/Appointment.rs")),
        401,
        "invalid_client",
    )  # an assertion for another organisation's endpoint
    response = emr.ask({"grant_type": "client_credentials", "scope": "system/Appointment.rs"})
    oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


def test_a_client_with_a_secret_gets_tokens_until_it_is_removed(bridge: str) -> None:
    operator = Operator(bridge)
    registered = operator.register(
        ORG, "front-desk-emr", name="Small EMR", scopes=["system/*.rs"], secret=SECRET
    )
    assert registered["authentication"] == "client_secret"
    assert SECRET not in json.dumps(registered)
    assert "secret" not in registered
    emr = Emr(bridge, ORG, "front-desk-emr")
    basic = "Basic " + base64.b64encode(f"front-desk-emr:{SECRET}".encode()).decode()
    form = {"grant_type": "client_credentials", "scope": "system/AuditEvent.rs"}
    response = emr.ask(form, Authorization=basic)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert emr.get("/AuditEvent", token).status_code == 200
    wrong = "Basic " + base64.b64encode(b"front-desk-emr:not-the-secret").decode()
    oauth_error(emr.ask(form, Authorization=wrong), 401, "invalid_client")
    posted = emr.ask({**form, "client_id": "front-desk-emr", "client_secret": SECRET})
    assert posted.status_code == 200, posted.text

    deleted = operator.http.delete(f"/admin/organizations/{ORG}/emr-clients/front-desk-emr")
    assert deleted.status_code == 204
    outcome(emr.get("/AuditEvent", token), 401, "login")
    oauth_error(emr.ask(form, Authorization=basic), 401, "invalid_client")
    again = operator.http.delete(f"/admin/organizations/{ORG}/emr-clients/front-desk-emr")
    assert again.status_code == 404
    assert again.headers["content-type"] == "application/problem+json"


def test_keys_published_at_a_jwks_url_are_fetched_by_the_bridge(bridge: str) -> None:
    keys = KeyServer(jwks(KEY))
    try:
        Operator(bridge).register(
            ORG, "cerner", name="Cerner", scopes=["system/AuditEvent.rs"], jwks_url=keys.url
        )
        emr = Emr(bridge, ORG, "cerner")
        for _ in range(3):
            emr.token("system/AuditEvent.rs")
        assert keys.requests == 1  # kept for EMR_BRIDGE_JWKS_CACHE_SECONDS
        keys.key_set = {"keys": []}
        other = Emr(bridge, ORG, "cerner", SigningKey.ec("ec-2"))
        refused = other.ask(assertion_form(other.assertion(), "system/AuditEvent.rs"))
        assert "no key 'ec-2'" in oauth_error(refused, 401, "invalid_client")
    finally:
        keys.close()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"name": "X", "scopes": ["system/*.rs"], "secret": SECRET, "colour": "red"}, "extra"),
        ({"name": "X\u0007", "scopes": ["system/*.rs"], "secret": SECRET}, "control"),
        ({"name": "X", "scopes": ["system/*.rs"]}, "exactly one"),
        ({"name": "X", "scopes": ["system/*.rs"], "secret": SECRET, "jwks": jwks(KEY)}, "exactly"),
        ({"name": "X", "scopes": ["system/*.rs"], "secret": "short"}, "32"),
        ({"name": "X", "scopes": ["patient/*.rs"], "secret": SECRET}, "system scope"),
        ({"name": "X", "scopes": [], "secret": SECRET}, "at least 1"),
        (
            {"name": "X", "scopes": ["system/*.rs"], "jwks": {"keys": [KEY.private_jwk()]}},
            "private",
        ),
        ({"name": "X", "scopes": ["system/*.rs"], "jwks_url": "http://keys.example/"}, "https"),
    ],
)
def test_the_admin_api_refuses_a_malformed_client_and_changes_nothing(
    bridge: str, body: dict[str, Any], reason: str
) -> None:
    operator = Operator(bridge)
    response = operator.http.put(f"/admin/organizations/{ORG}/emr-clients/x", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert reason in response.text
    assert operator.http.get(f"/admin/organizations/{ORG}/emr-clients").json() == {"items": []}


def test_the_admin_api_needs_the_admin_token(bridge: str) -> None:
    path = f"/admin/organizations/{ORG}/emr-clients"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {ADMIN}"}):
        response = httpx.get(f"{bridge}{path}", headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"].endswith("/admin-unauthorized")
    operator = Operator(bridge)
    bad_id = operator.http.put(f"{path}/bad%20id", json={})
    assert bad_id.status_code == 422
    bad_org = operator.http.get("/admin/organizations/not-an-org/emr-clients")
    assert bad_org.status_code == 422


def test_a_401_challenges_the_emr_to_send_a_bearer_token(bridge: str) -> None:
    response = httpx.get(f"{bridge}/fhir/{ORG}/AuditEvent")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith('Bearer realm="clinic emr-bridge"')
