"""The platform behind the gateway's process-level tests, started once per test session as
`make up` starts it: the local identity provider, booking, availability, notification (not
sending) and the gateway, each its own process on 127.0.0.1, against the test PostgreSQL and
Kafka. Each test opens its own organisation, so tests never see each other's data.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from clinic.devstack.components import free_port, stop_pid
from clinic.devstack.infra import Infrastructure
from clinic.devstack.issuer import mint
from clinic.devstack.testing import STAFF, ClinicIds, RunningService, command, open_clinic

AUDIENCE = "clinic-gateway"


@dataclass
class Platform:
    gateway: str
    booking: str
    availability: str
    notification: str
    issuer: str
    keys: Path
    services: list[RunningService] = field(default_factory=list)

    def token(
        self, role: str, org: str, subject: str | None = None, expires_in: int = 3600, **claims: Any
    ) -> str:
        body = {"sub": subject or f"{role}-{uuid.uuid4().hex[:6]}", "org": org, "role": role}
        return mint(self.keys, self.issuer, AUDIENCE, {**body, **claims}, expires_in)

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.gateway, headers=headers, timeout=30)


@dataclass(frozen=True)
class Clinic:
    """An organisation with two locations (a doctor at each), a patient-bookable check-up,
    two patients, and a token per role (clinic roles limited to the first location)."""

    ids: ClinicIds
    second_location: str
    second_doctor: str
    patients: tuple[str, str]
    tokens: dict[str, str]


def open_gateway_clinic(platform: Platform, name: str) -> Clinic:
    with httpx.Client(base_url=platform.booking, headers=STAFF, timeout=30) as b:
        ids = open_clinic(b, name)
        base = ids.base
        place = {"name": "Süd", "time_zone": "Europe/Berlin"}
        second = command(b, f"{base}/locations", place)["id"]
        doctor = command(b, f"{base}/resources", {
            "category": "provider", "name": "Dr. B", "kind": "physician",
            "location_ids": [second]})["id"]  # fmt: skip
        hours = [{"location_id": second, "weekday": d, "start": "00:00", "end": "23:59"}
                 for d in range(7)]  # fmt: skip
        command(b, f"{base}/resources/{doctor}/schedule/weekly-hours", {"hours": hours}, "PUT")
        patients = tuple(_patient(b, ids, given) for given in ("ana", "ben"))
    here = [ids.location]
    tokens = {
        "patient": platform.token("patient", ids.org, "patient-ana", patient_id=patients[0]),
        "front_desk": platform.token("front_desk", ids.org, "desk-1", locations=here),
        "provider": platform.token("provider", ids.org, "dr-a", locations=here),
        "clinic_admin": platform.token("clinic_admin", ids.org, "admin-1", locations=here),
        "org_admin": platform.token("org_admin", ids.org, "org-admin"),
        "ops": platform.token("ops", ids.org, "ops-1"),
    }
    return Clinic(ids, second, doctor, (patients[0], patients[1]), tokens)


def _patient(b: httpx.Client, ids: ClinicIds, given: str) -> str:
    body = {
        "given_name": given,
        "family_name": "Lind",
        "birth_date": "1980-01-01",
        "contacts": [{"system": "email", "value": f"{given}.{ids.org[:8]}@example.org"}],
        "consent_email": True,
    }
    found: str = command(b, f"{ids.base}/patients", body)["id"]
    return found


def _serve_issuer(keys: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="issuer-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "clinic.devstack.issuer", "--state-dir", str(keys),
         "--port", str(port), "--audience", AUDIENCE],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/.well-known/jwks.json", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_pid(process.pid)
    raise RuntimeError(f"the issuer did not start: {Path(log.name).read_text()[-2000:]}")


@pytest.fixture(scope="session")
def gateway_platform(infrastructure: Infrastructure) -> Iterator[Platform]:
    keys = Path(tempfile.mkdtemp(prefix="issuer-keys-"))
    issuer, issuer_url = _serve_issuer(keys)
    schema = f"g_{uuid.uuid4().hex[:8]}"
    common = infrastructure.environment()
    started: list[RunningService] = []

    def start(module: str, prefix: str, **env: str) -> RunningService:
        values = {**common, f"{prefix}DATABASE_SCHEMA": f"{schema}_{prefix.lower()[:-1]}", **env}
        service = RunningService(module, values, prefix)
        started.append(service)
        return service.start()

    try:
        booking = start("clinic.booking", "BOOKING_", BOOKING_LOAD_DEMO_DATA="false")
        availability = start(
            "clinic.availability", "AVAILABILITY_", AVAILABILITY_BOOKING_URL=booking.url,
            AVAILABILITY_CONSUMER_GROUP=f"availability-{schema}",
        )  # fmt: skip
        notification = start(
            "clinic.notification", "NOTIFICATION_", NOTIFICATION_BOOKING_URL=booking.url,
            NOTIFICATION_AVAILABILITY_URL=availability.url, NOTIFICATION_DISPATCH_ENABLED="false",
            NOTIFICATION_OFFERS_ENABLED="false",
            NOTIFICATION_CONSUMER_GROUP=f"notification-{schema}",
        )  # fmt: skip
        gateway = start(
            "clinic.gateway", "GATEWAY_", GATEWAY_BOOKING_URL=booking.url,
            GATEWAY_AVAILABILITY_URL=availability.url, GATEWAY_NOTIFICATION_URL=notification.url,
            GATEWAY_JWT_ISSUER=issuer_url, GATEWAY_JWT_AUDIENCE=AUDIENCE,
            GATEWAY_JWKS_URL=f"{issuer_url}/.well-known/jwks.json",
            GATEWAY_LIVE_HEARTBEAT_SECONDS="1", GATEWAY_LIVE_MAX_STREAMS_PER_USER="3",
        )  # fmt: skip
        yield Platform(
            gateway.url, booking.url, availability.url, notification.url, issuer_url, keys, started
        )
    finally:
        for service in started:
            service.stop()
        stop_pid(issuer.pid)


def wait_until(check: Any, within: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy (projections trail booking)."""
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)
