"""The local platform behind ``make up`` / ``make down`` / ``make logs`` / ``make status``.

``up`` provides PostgreSQL and Kafka through the infrastructure ladder, starts the five
services as separate processes on 127.0.0.1, waits until every ``/readyz`` answers 200, loads
the demo data and prints where to point a client. A second ``up`` finds the running stack
and starts nothing new. ``down`` stops everything ``up`` started, by pid. When a component
cannot become ready, ``up`` names it with its reason and stops what it started.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from clinic.devstack.components import (
    Infrastructure,
    InfrastructureError,
    free_port,
    pid_alive,
    port_open,
    stop_pid,
    tail,
)
from clinic.devstack.infra import Ladder
from clinic.devstack.issuer import DemoUser, mint, write_demo_users
from clinic.devstack.prometheus import running_prometheus, start_prometheus, stop_prometheus


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    default_port: int

    @property
    def env_prefix(self) -> str:
        return self.name.replace("-", "_").upper() + "_"


SINK_SMTP_PORT = 2525
SINK_HTTP_PORT = 8025
MLLP_PORT = 2575
DEMO_EMR_CLIENT = "demo-emr"
ISSUER_PORT = 8079
TRACES_PORT = 4318  # OTLP/HTTP's usual port
JWT_AUDIENCE = "clinic-gateway"
DEMO_TOKEN_SECONDS = 12 * 3600
WEB_BUILD = Path(__file__).resolve().parents[5] / "web" / "dist"
"""The web app as `make web` builds it; the gateway serves it at /app/ when it is there."""
DEMO_ROLES = ("patient", "front_desk", "provider", "clinic_admin", "org_admin", "ops")
LOCAL_PROCESSES = ("sinks", "issuer", "traces", "prometheus")
"""Started beside the services: they are not services (no /docs, no `<NAME>_URL`)."""


def local_secret(state: Path, name: str) -> str:
    """A random secret of the local platform, made once and kept in its state directory
    (readable by its owner only): the bridge's admin token, the demo EMR client's secret."""
    path = state / name
    if not path.exists():
        state.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


ADMIN_TOKEN = ("EMR_BRIDGE_ADMIN_TOKEN", "admin-token")
OPERATIONS_TOKEN = ("OPERATIONS_TOKEN", "operations-token")
"""The local platform's tokens: the variable that sets each, and its file in the state
directory otherwise."""


def bearer(env: Mapping[str, str], state: Path, token: tuple[str, str]) -> dict[str, str]:
    """The Authorization header for one of the local platform's tokens (``ADMIN_TOKEN``,
    ``OPERATIONS_TOKEN``): the environment's, else the one kept in the state directory."""
    variable, name = token
    return {"Authorization": f"Bearer {env.get(variable) or local_secret(state, name)}"}


SERVICES = (
    ServiceSpec("booking", "clinic.booking", 8081),
    ServiceSpec("availability", "clinic.availability", 8082),
    ServiceSpec("notification", "clinic.notification", 8083),
    ServiceSpec("emr-bridge", "clinic.emr_bridge", 8084),
    ServiceSpec("gateway", "clinic.gateway", 8080),
)


@dataclass
class RunningService:
    name: str
    pid: int
    port: int
    log_file: str
    smtp_port: int | None = None
    """The mail sink's SMTP port (the sinks only)."""
    mllp_port: int | None = None
    """The EMR bridge's HL7 listener (the bridge only)."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class StackError(RuntimeError):
    def __init__(self, failures: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in failures.items()))
        self.failures = failures


def readiness(url: str) -> tuple[bool, str]:
    try:
        response = httpx.get(f"{url}/readyz", timeout=3)
    except httpx.HTTPError as error:
        return False, f"{type(error).__name__}: {error}"
    if response.status_code == 200:
        return True, "ready"
    try:
        checks = response.json().get("checks", {})
        reason = ", ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
    except ValueError:
        reason = response.text[:200]
    return False, f"/readyz {response.status_code}: {reason}"


class Stack:
    def __init__(
        self,
        state_dir: Path,
        env: Mapping[str, str] | None = None,
        demo: bool = True,
        observability: bool = False,
        booking_replicas: int = 1,
    ) -> None:
        self.demo = demo
        self.booking_replicas = booking_replicas
        """Booking processes on one event store (``booking``, ``booking-2``, ...): the gateway
        calls the first, the EMR bridge the last, and one of them leads the relay."""
        self.observability = observability
        """Also a trace receiver every service exports to, and Prometheus (``make up OBS=1``)."""
        self.state_dir = state_dir.resolve()
        self.env = dict(os.environ if env is None else env)
        self.ladder = Ladder(self.state_dir / "infra", self.env)
        self.state_file = self.state_dir / "services.json"
        self.log_dir = self.state_dir / "logs"

    def _load(self) -> dict[str, RunningService]:
        if not self.state_file.exists():
            return {}
        return {n: RunningService(**s) for n, s in json.loads(self.state_file.read_text()).items()}

    def _save(self, services: dict[str, RunningService]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(
            json.dumps({n: asdict(s) for n, s in services.items()}, indent=2)
        )

    def instances(self) -> list[tuple[str, ServiceSpec]]:
        """Each service process to run, by name, in the order they start."""
        named = []
        for spec in SERVICES:
            named.append((spec.name, spec))
            if spec.name == "booking":
                named += [(f"booking-{n}", spec) for n in range(2, self.booking_replicas + 1)]
        return named

    def _port_for(self, spec: ServiceSpec, name: str | None = None) -> int:
        configured = self.env.get(f"{spec.env_prefix}PORT")
        if name not in (None, spec.name):
            return free_port()  # another replica
        if configured:
            return int(configured)
        return spec.default_port if not port_open("127.0.0.1", spec.default_port) else free_port()

    def _process(self, name: str, args: list[str], env: Mapping[str, str]) -> tuple[int, str]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_dir / f"{name}.log"
        with open(log_file, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", *args],
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return process.pid, str(log_file)

    def _spawn(
        self,
        spec: ServiceSpec,
        infra: Infrastructure,
        urls: dict[str, str],
        sinks: RunningService,
        port: int | None = None,
        issuer: RunningService | None = None,
        traces: RunningService | None = None,
        gateway_port: int | None = None,
        name: str | None = None,
    ) -> RunningService:
        name = name or spec.name
        port = port or self._port_for(spec, name)
        env = {
            **self.env,
            **infra.environment(),
            f"{spec.env_prefix}HOST": "127.0.0.1",
            "BOOKING_LOAD_DEMO_DATA": "true" if self.demo else "false",
            f"{spec.env_prefix}PORT": str(port),
            **{f"{n.replace('-', '_').upper()}_URL": url for n, url in urls.items()},
        }
        # The operations routes (dead letters, projection rebuild) answer this token only.
        env.setdefault("OPERATIONS_TOKEN", local_secret(self.state_dir, "operations-token"))
        if traces is not None:
            # Every span to the local receiver, a second after it ends (not five).
            env.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", traces.url)
            env.setdefault("OTEL_BSP_SCHEDULE_DELAY", "1000")
        if spec.name == "notification":
            env.setdefault("NOTIFICATION_PUBLIC_URL", f"http://127.0.0.1:{port}")
            env.setdefault("NOTIFICATION_SMTP_HOST", "127.0.0.1")
            env.setdefault("NOTIFICATION_SMTP_PORT", str(sinks.smtp_port))
            env.setdefault("NOTIFICATION_SMS_BASE_URL", sinks.url)
            if gateway_port is not None and (WEB_BUILD / "index.html").is_file():
                # A reminder's links open the web app, which asks the gateway.
                env.setdefault("NOTIFICATION_LINKS_URL", f"http://127.0.0.1:{gateway_port}/app")
        if spec.name == "gateway" and issuer is not None:
            # The local development issuer, unless the environment names a real one.
            env.setdefault("GATEWAY_JWT_ISSUER", issuer.url)
            env.setdefault("GATEWAY_JWKS_URL", f"{issuer.url}/.well-known/jwks.json")
            env.setdefault("GATEWAY_JWT_AUDIENCE", JWT_AUDIENCE)
        if spec.name == "gateway" and (WEB_BUILD / "index.html").is_file():
            env.setdefault("GATEWAY_WEB_DIR", str(WEB_BUILD))
        mllp = None
        if spec.name == "emr-bridge":
            mllp = int(env.get("EMR_BRIDGE_MLLP_PORT") or 0) or (
                MLLP_PORT if not port_open("127.0.0.1", MLLP_PORT) else free_port()
            )
            env["EMR_BRIDGE_MLLP_PORT"] = str(mllp)
            env.setdefault("EMR_BRIDGE_ADMIN_TOKEN", local_secret(self.state_dir, "admin-token"))
        if name != spec.name:
            env["BOOKING_LOAD_DEMO_DATA"] = "false"  # the first replica loads it
        if spec.name == "emr-bridge" and self.booking_replicas > 1:
            env["EMR_BRIDGE_BOOKING_URL"] = urls[f"booking-{self.booking_replicas}"]
        pid, log_file = self._process(name, [spec.module], env)
        return RunningService(name, pid, port, log_file, mllp_port=mllp)

    def _spawn_sinks(self, notification_port: int) -> RunningService:
        """The local mail and SMS sinks notification sends to (``clinic.devstack.sinks``)."""
        http = SINK_HTTP_PORT if not port_open("127.0.0.1", SINK_HTTP_PORT) else free_port()
        smtp = SINK_SMTP_PORT if not port_open("127.0.0.1", SINK_SMTP_PORT) else free_port()
        args = [
            "clinic.devstack.sinks",
            "--maildir",
            str(self.state_dir / "mail"),
            "--smtp-port",
            str(smtp),
            "--http-port",
            str(http),
            "--inbound-url",
            f"http://127.0.0.1:{notification_port}/sms/inbound",
        ]
        pid, log_file = self._process("sinks", args, self.env)
        return RunningService("sinks", pid, http, log_file, smtp_port=smtp)

    def _spawn_issuer(self, port: int = ISSUER_PORT) -> RunningService:
        """The local development identity provider the gateway trusts
        (``clinic.devstack.issuer``); its keys stay in the state directory."""
        if port_open("127.0.0.1", port):
            port = free_port()
        args = [
            "clinic.devstack.issuer",
            "--state-dir",
            str(self.state_dir / "issuer"),
            "--port",
            str(port),
            "--issuer",
            f"http://127.0.0.1:{port}",
            "--audience",
            JWT_AUDIENCE,
        ]
        pid, log_file = self._process("issuer", args, self.env)
        return RunningService("issuer", pid, port, log_file)

    def _spawn_traces(self, port: int = TRACES_PORT) -> RunningService:
        """The local trace receiver (``clinic.devstack.traces``); its spans are kept in the
        state directory, so they outlive ``make down``."""
        if port_open("127.0.0.1", port):
            port = free_port()
        store = self.state_dir / "traces" / "spans.jsonl"
        store.parent.mkdir(parents=True, exist_ok=True)
        args = ["clinic.devstack.traces", "--port", str(port), "--store", str(store)]
        pid, log_file = self._process("traces", args, self.env)
        return RunningService("traces", pid, port, log_file)

    def up(self, timeout: float = 90.0) -> tuple[Infrastructure, dict[str, RunningService]]:
        try:
            infra = self.ladder.up()
        except InfrastructureError as error:
            raise StackError({error.component: error.reason}) from None
        services = self._load()
        notification = next(s for s in SERVICES if s.name == "notification")
        known = services.get("notification")
        port = known.port if known is not None else self._port_for(notification)
        # Chosen before notification starts: its messages' links open the gateway's pages.
        gateway = next(s for s in SERVICES if s.name == "gateway")
        known_gateway = services.get("gateway")
        gateway_port = known_gateway.port if known_gateway else self._port_for(gateway)
        sinks = services.get("sinks")
        if sinks is None or not pid_alive(sinks.pid):
            sinks = services["sinks"] = self._spawn_sinks(port)
            self._save(services)
        issuer = services.get("issuer")
        if issuer is None or not pid_alive(issuer.pid):
            issuer_port = issuer.port if issuer is not None else ISSUER_PORT
            issuer = services["issuer"] = self._spawn_issuer(issuer_port)
            self._save(services)
        traces = services.get("traces")
        if self.observability and (traces is None or not pid_alive(traces.pid)):
            already = [
                s.name for s in SERVICES if s.name in services and pid_alive(services[s.name].pid)
            ]
            if already:
                print(
                    f"note: {', '.join(already)} already run without exporting traces; "
                    "`make down` first to trace them too",
                    file=sys.stderr,
                )
            traces = services["traces"] = self._spawn_traces(
                traces.port if traces is not None else TRACES_PORT
            )
            self._save(services)
        for name, spec in self.instances():
            running = services.get(name)
            if running is not None and pid_alive(running.pid):
                continue
            urls = {n: s.url for n, s in services.items() if n != name and n not in LOCAL_PROCESSES}
            chosen = {"notification": port, "gateway": gateway_port}.get(name) or (
                running.port if running is not None else None  # a replica keeps its port
            )
            services[name] = self._spawn(
                spec, infra, urls, sinks, chosen, issuer, traces, gateway_port, name
            )
            self._save(services)
        failures = self._wait_ready(services, timeout)
        if failures:
            raise StackError(failures)
        if self.observability:
            # Scraping every service, with the repository's alert rules loaded.
            targets = {n: s.url for n, s in services.items() if n not in LOCAL_PROCESSES}
            try:
                start_prometheus(self.state_dir / "prometheus", targets)
            except InfrastructureError as error:
                raise StackError({error.component: error.reason}) from None
        return infra, services

    def _wait_ready(self, services: dict[str, RunningService], timeout: float) -> dict[str, str]:
        """Poll every /readyz until all answer 200; return the reason of each that did not."""
        deadline = time.monotonic() + timeout
        pending = dict(services)
        failures: dict[str, str] = {}
        while pending:
            for name, service in list(pending.items()):
                if not pid_alive(service.pid):
                    failures[name] = f"exited; last log lines:\n{tail(service.log_file)}"
                    del pending[name]
                    continue
                ready, reason = readiness(service.url)
                if ready:
                    del pending[name]
                else:
                    failures[name] = reason
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        return {
            name: reason
            for name, reason in failures.items()
            if name in pending or not pid_alive(services[name].pid)
        }

    def down(self) -> list[str]:
        stopped = []
        prometheus = stop_prometheus(self.state_dir / "prometheus")
        if prometheus is not None:
            stopped.append(prometheus)
        for name, service in self._load().items():
            if pid_alive(service.pid):
                stop_pid(service.pid)
                stopped.append(f"{name} (pid {service.pid})")
        if self.state_file.exists():
            self.state_file.unlink()
        stopped += self.ladder.down()
        return stopped

    def status(self) -> dict[str, str]:
        return {
            name: (readiness(s.url)[1] if pid_alive(s.pid) else "not running")
            for name, s in self._load().items()
        }


def _answers(url: str, token: str | None = None) -> bool:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return httpx.get(url, headers=headers, timeout=5).status_code < 400
    except httpx.HTTPError:
        return False


def _shown(path: Path) -> str:
    """A path as short as a shell in the current directory can use it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def demo_tokens(state: Path, issuer: str, demo: Mapping[str, Any]) -> dict[str, Path]:
    """An access token per role for a demo user, signed by the local issuer and valid
    12 h, each in ``state/tokens/<role>.jwt`` (readable by its owner only); made again at
    every ``make up``. The front desk's and provider's are limited to the demo's first
    location; the patient's names its first patient."""
    locations = list(demo["locations"].values())[:1]
    patients = list(demo["patients"])[:1]
    directory = state / "tokens"
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    written = {}
    for role in DEMO_ROLES:
        claims: dict[str, Any] = {
            "sub": f"demo-{role.replace('_', '-')}",
            "org": demo["organization_id"],
            "role": role,
            "azp": "make-up",
        }
        if role in ("front_desk", "provider") and locations:
            claims["locations"] = locations
        if role == "patient":
            if not patients:
                continue
            claims["patient_id"] = patients[0]
        token = mint(state / "issuer", issuer, JWT_AUDIENCE, claims, DEMO_TOKEN_SECONDS)
        path = directory / f"{role}.jwt"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(token)
        written[role] = path
    return written


def demo_users(demo: Mapping[str, Any]) -> list[DemoUser]:
    """The users the local issuer's sign-in page offers: each demo patient, then a user of
    each staff role (the front desk and provider at the demo's first location)."""
    org = demo["organization_id"]
    names: Mapping[str, str] = demo.get("patient_names") or {}
    users = [
        DemoUser(
            f"{names.get(patient, 'Patient ' + str(n + 1))}, patient",
            {"role": "patient", "org": org, "patient_id": patient, "subject": f"demo-patient-{n}"},
        )
        for n, patient in enumerate(demo["patients"])
    ]
    first = list(demo["locations"].items())[:1]
    for role in DEMO_ROLES[1:]:
        fields: dict[str, Any] = {
            "role": role,
            "org": org,
            "subject": f"demo-{role.replace('_', '-')}",
        }
        label = role.replace("_", " ").capitalize()
        if role in ("front_desk", "provider") and first:
            fields["locations"] = [first[0][1]]
            label += f", {first[0][0]}"
        users.append(DemoUser(label, fields))
    return users


def _print_tokens(
    gateway: RunningService,
    issuer: RunningService | None,
    demo: Mapping[str, Any] | None,
    state: Path,
) -> None:
    if issuer is None or os.environ.get("GATEWAY_JWT_ISSUER", issuer.url) != issuer.url:
        return  # the gateway trusts another identity provider: it hands out the tokens
    tokens = demo_tokens(state, issuer.url, demo) if demo is not None else {}
    if demo is not None:
        write_demo_users(state / "issuer", demo_users(demo))
    if tokens:
        print("    a token per demo user (valid 12 h, made again at every `make up`):")
    for role, path in tokens.items():
        url = f"{gateway.url}/v1/me"
        if not _answers(url, path.read_text()):
            url = f"{gateway.url}/v1"
        print(f'      {role:<13} curl -H "Authorization: Bearer $(cat {_shown(path)})" {url}')
    if _answers(f"{issuer.url}/.well-known/openid-configuration"):
        org, locations = "<organisation id>", "<id>,<id>"
        if demo is not None:
            org, locations = (
                demo["organization_id"],
                ",".join(list(demo["locations"].values())[1:3]),
            )
        print(f"    another token (role={'|'.join(DEMO_ROLES)}; a patient's with patient_id=):")
        print(
            f"      curl -s -d role=provider -d subject=dr.who -d org={org} "
            f"-d locations={locations} {issuer.url}/token"
        )


def _print_summary(infra: Infrastructure, services: dict[str, RunningService], state: Path) -> None:
    gateway = services["gateway"]
    try:
        demo = httpx.get(f"{services['booking'].url}/demo", timeout=5)
    except httpx.HTTPError:
        demo = None
    listed = demo.json() if demo is not None and demo.status_code == 200 else None
    print("\nThe clinic platform is up.\n")
    # Only URLs that answer are printed as places to point a client.
    if _answers(f"{gateway.url}/app/"):
        print(f"  Open the web pages:  {gateway.url}/app/")
        print(
            "    sign in as a demo patient (book on a phone-sized window) or the front desk"
            " (the day's calendar); no passwords"
        )
    if _answers(f"{gateway.url}/v1"):
        print(f"  Point a client at the gateway:  {gateway.url}/v1   (OpenAPI: {gateway.url}/docs)")
        _print_tokens(gateway, services.get("issuer"), listed, state)
    else:
        booking, availability = services["booking"], services["availability"]
        print("  The public gateway API (/v1) is not built yet. Point a client at the services:")
        print(f"    booking (commands):     {booking.url}/docs")
        print(f"    availability (search):  {availability.url}/docs")
    print("\n  Services (the OpenAPI of each; each also serves /healthz /readyz /metrics):")
    for name, service in services.items():
        if name not in LOCAL_PROCESSES:
            print(f"    {name:<13} {service.url}/docs   log: {service.log_file}")
    print(
        "    their /operations routes (dead letters, rebuild) need the operations token:  "
        f'-H "Authorization: Bearer $(cat {_shown(state / "operations-token")})"'
    )
    traces = services.get("traces")
    if traces is not None and _answers(f"{traces.url}/healthz"):
        print("\n  Observability (make up OBS=1):")
        print(
            f"    traces (every service exports here):  {traces.url}/   "
            f"(JSON: {traces.url}/traces; every span also a line in "
            f"{state / 'traces' / 'spans.jsonl'})"
        )
        prometheus = running_prometheus(state / "prometheus")
        if prometheus is not None and _answers(f"{prometheus.url}/-/ready"):
            # Debian's build serves its HTTP API, not the web pages.
            print(
                f"    Prometheus ({prometheus.flavor}; every service, alert rules "
                f"loaded):  {prometheus.url}/api/v1/query?query=up   "
                f"(alerts: {prometheus.url}/api/v1/alerts)"
            )
            print(
                "    dashboards to import into your Grafana: deploy/observability/grafana/"
                "dashboards/*.json"
            )
    sinks = services.get("sinks")
    if sinks is not None:
        print("\n  What notification sends stays on this machine:")
        print(
            f"    email (SMTP 127.0.0.1:{sinks.smtp_port}):  {sinks.url}/mail   "
            f"(each message also a file in {state / 'mail' / 'new'})"
        )
        print(f"    SMS (Twilio-style API):       {sinks.url}/sms")
        print(
            f"    reply as a patient's phone:   curl -X POST {sinks.url}/replies "
            """-d '{"from": "+4915112345678", "body": "STOP"}'"""
        )
    if listed is not None:
        print(f"\n  Demo organisation: {listed['organization_id']}")
        for name, location_id in listed["locations"].items():
            print(f"    location {name:<18} {location_id}")
        print(
            f"    {len(listed['providers'])} providers, "
            f"{len(listed['appointment_types'])} appointment types, "
            f"{len(listed['patients'])} patients: {services['booking'].url}/demo"
        )
    else:
        print(
            "\n  No demo data listed: booking found an earlier version of it in this state "
            "(its log says so). `make reset` starts afresh with the current one."
        )
    bridge = services.get("emr-bridge")
    if bridge is not None and listed is not None:
        _print_bridge(bridge, listed["organization_id"], state)
    for label, component in (("PostgreSQL", infra.postgres), ("Kafka", infra.kafka)):
        what = f"{component.flavor}, {component.source}" if component.flavor else component.source
        print(f"\n  {label + ':':<11} {component.address}   ({what})", end="")
    print(
        f"\n\n  Data is kept across `make down` / `make up` under {state}; `make reset` wipes it."
    )
    print(f"  Follow the logs: make logs     Stop everything: make down     State: {state}\n")


def demo_emr_client(bridge: RunningService, org: str, state: Path) -> str | None:
    """Register the demo organisation's EMR client with a secret kept in the state directory
    (so the token command printed keeps working across ``make up``); its secret, or None when
    the bridge would not take it."""
    secret = local_secret(state, "demo-emr-secret")
    body = {"name": "Demo EMR (make up)", "scopes": ["system/*.cruds"], "secret": secret}
    try:
        answer = httpx.put(
            f"{bridge.url}/admin/organizations/{org}/emr-clients/{DEMO_EMR_CLIENT}",
            json=body,
            headers=bearer(os.environ, state, ADMIN_TOKEN),
            timeout=10,
        )
    except httpx.HTTPError:
        return None
    return secret if answer.status_code in (200, 201) else None


def _print_bridge(bridge: RunningService, org: str, state: Path) -> None:
    secret = demo_emr_client(bridge, org, state)
    base = f"{bridge.url}/fhir/{org}"
    print("\n  EMR vendors (FHIR R4 with SMART Backend Services; HL7 v2 over MLLP):")
    print(f"    FHIR base of the demo organisation:  {base}   (capabilities: {base}/metadata)")
    if secret is not None and _answers(f"{base}/metadata"):
        print(
            f"    a token for the demo EMR client:     curl -s -u {DEMO_EMR_CLIENT}:{secret} "
            f"-d grant_type=client_credentials -d 'scope=system/*.rs' {base}/auth/token"
        )
    print(f"    its admin API (clients, HL7 endpoints):  Bearer token in {state / 'admin-token'}")
    if bridge.mllp_port:
        print(
            f"    HL7 v2 (SRM, ADT^A08) over MLLP:     127.0.0.1:{bridge.mllp_port}   "
            f"(SIU out: PUT {bridge.url}/admin/organizations/{org}/hl7-endpoints/<name>)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clinic.devstack.stack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--state-dir", type=Path, default=Path(".local/up"))
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument(
        "--observability",
        action="store_true",
        help="also a trace receiver the services export to, and Prometheus (make up OBS=1)",
    )
    args = parser.parse_args(argv)
    stack = Stack(args.state_dir, observability=args.observability)
    if args.command == "down":
        stopped = stack.down()
        print("\n".join(f"stopped {s}" for s in stopped) or "nothing was running")
        return 0
    if args.command == "status":
        for name, state in (stack.status() or {"platform": "not running"}).items():
            print(f"{name:<13} {state}")
        return 0
    try:
        infra, services = stack.up(timeout=args.timeout)
    except StackError as error:
        print("\nmake up FAILED; these components are not ready:", file=sys.stderr)
        for component, reason in error.failures.items():
            print(f"  {component}: {reason}", file=sys.stderr)
        print("\nstopping what was started ...", file=sys.stderr)
        for line in stack.down():
            print(f"  stopped {line}", file=sys.stderr)
        return 1
    _print_summary(infra, services, stack.state_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
