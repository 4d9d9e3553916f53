"""Each service's Deployment runs it hardened and healthy-checked, gives it only settings it
reads (and that it accepts), and its NetworkPolicy lets it reach exactly what those settings
name (the Kafka brokers if it uses Kafka: all five do, the gateway for its live updates), and
be reached by exactly the services whose settings name it."""

from typing import Any
from urllib.parse import urlsplit

import pytest
from manifests import (
    KAFKA_SERVICES,
    OVERLAYS,
    SECRET,
    SERVICES,
    container,
    database_url,
    environment,
    http_port,
    objects,
)

# Variables read by something other than the service's settings: libpq reads these itself
# (the database URL is built from PGPASSWORD by the kubelet).
LIBPQ = {"PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT"}

CLUSTER_NAMESPACES = {"monitoring"}
"""Namespaces whose Services the manifests address by cluster DNS (`name.namespace`)."""

Peer = tuple[str, str]
"""Who: ("pods", "label=value"), ("namespace", "name[/label=value]") or ("anywhere", cidr)."""
Reach = tuple[Peer, str, int]
"""Who, protocol, port."""
ANYWHERE: Peer = ("anywhere", "0.0.0.0/0")

# What a service reaches that no setting names: the EMR bridge sends SIU messages to each
# EMR endpoint registered through its admin API (host and port are data; 2575 is MLLP's
# registered port) and fetches EMR clients' keys from the jwks_url each registered.
REACHED_BY_DATA: dict[str, set[Reach]] = {
    "emr-bridge": {(ANYWHERE, "TCP", 2575), (ANYWHERE, "TCP", 443)},
}


def settings_names(service: str) -> set[str]:
    """Every variable the service's settings read: prefixed, and the shared fallbacks."""
    names: set[str] = set()
    for field_name, field in SERVICES[service].settings.model_fields.items():
        names.add(f"{SERVICES[service].prefix}{field_name}".upper())
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        shared = extra.get("shared_env")
        if isinstance(shared, str):
            names.add(shared)
    return names


def peers(selector_holder: dict[str, Any]) -> set[Peer]:
    """A NetworkPolicy peer as comparable keys (an `In` expression gives one per value)."""
    if "ipBlock" in selector_holder:
        assert "except" not in selector_holder["ipBlock"]
        return {("anywhere", selector_holder["ipBlock"]["cidr"])}
    namespace = selector_holder.get("namespaceSelector")
    pods = selector_holder.get("podSelector", {})
    labels = ",".join(f"{k}={v}" for k, v in sorted(pods.get("matchLabels", {}).items()))
    keys = {labels} if labels else set()
    for expression in pods.get("matchExpressions", []):
        assert expression["operator"] == "In"
        keys |= {f"{expression['key']}={value}" for value in expression["values"]}
    if namespace is not None:
        name = namespace["matchLabels"]["kubernetes.io/metadata.name"]
        return {("namespace", f"{name}/{key}") for key in keys} or {("namespace", name)}
    return {("pods", key) for key in keys}


def reaches(rules: list[dict[str, Any]], side: str) -> set[Reach]:
    allowed = set()
    for rule in rules:
        for peer in rule[side]:
            # A rule without ports allows every port: ("any", 0).
            for port in rule.get("ports", [{"protocol": "any", "port": 0}]):
                allowed |= {(p, port.get("protocol", "TCP"), port["port"]) for p in peers(peer)}
    return allowed


def pod_port(overlay: str, host: str, port: int) -> Reach | None:
    """The pods and the container port behind one of the platform's Services."""
    service = objects(overlay, "Service").get(host)
    if service is None:
        return None
    (selector,) = service["spec"]["selector"].items()
    (service_port,) = (p for p in service["spec"]["ports"] if p["port"] == port)
    deployment = objects(overlay, "Deployment")[selector[1]]
    (target,) = (
        p["containerPort"]
        for p in container(deployment)["ports"]
        if p["name"] == service_port["targetPort"]
    )
    return (("pods", f"{selector[0]}={selector[1]}"), "TCP", target)


def connects_to(variable: str) -> bool:
    """Whether the variable holds an address the service connects to (the database's is
    checked on its own; a PUBLIC_URL is where others reach the service)."""
    addresses = variable.endswith(("_URL", "_ENDPOINT"))
    return addresses and not variable.endswith(("DATABASE_URL", "PUBLIC_URL"))


def egress_needs(overlay: str, service: str) -> set[Reach]:
    """What the service's settings make it connect to."""
    env = environment(overlay, service)
    prefix = SERVICES[service].prefix
    (postgres,) = objects(overlay, "Cluster")
    (kafka,) = objects(overlay, "Kafka")
    needs = {
        (("namespace", "kube-system/k8s-app=kube-dns"), "UDP", 53),
        (("namespace", "kube-system/k8s-app=kube-dns"), "TCP", 53),
    }
    database = database_url(overlay, service)
    assert database.hostname == f"{postgres}-rw", "the primary's Service, made by CloudNativePG"
    needs.add((("pods", f"cnpg.io/cluster={postgres}"), "TCP", database.port or 5432))
    # Every pod gets KAFKA_BOOTSTRAP_SERVERS (the shared ConfigMap); a service that made no
    # Kafka client would ignore it.
    if SERVICES[service].uses_kafka:
        for server in env["KAFKA_BOOTSTRAP_SERVERS"].split(","):
            bootstrap, bootstrap_port = server.rsplit(":", 1)
            assert bootstrap == f"{kafka}-kafka-bootstrap", "the bootstrap Service (Strimzi's)"
            brokers = f"strimzi.io/broker-role=true,strimzi.io/cluster={kafka}"
            needs.add((("pods", brokers), "TCP", int(bootstrap_port)))
    for name, value in env.items():
        if not connects_to(name):
            continue
        url = urlsplit(value)
        port = url.port or {"https": 443, "http": 80}[url.scheme]
        host = str(url.hostname)
        namespace = host.split(".")[1] if "." in host else ""
        inside = pod_port(overlay, host, port)
        if inside is not None:
            needs.add(inside)
        elif namespace in CLUSTER_NAMESPACES:
            needs.add((("namespace", namespace), "TCP", port))
        else:
            needs.add((ANYWHERE, "TCP", port))
    if f"{prefix}SMTP_PORT" in env:
        needs.add((ANYWHERE, "TCP", int(env[f"{prefix}SMTP_PORT"])))
    return needs | REACHED_BY_DATA.get(service, set())


def ingress_needs(overlay: str, service: str) -> set[Reach]:
    """Who the platform's settings make connect to the service, and who must from outside."""
    http = http_port(objects(overlay, "Deployment")[service])
    needs = {(("namespace", "monitoring"), "TCP", http)}  # Prometheus scrapes /metrics
    for caller in SERVICES:
        if caller != service:
            mine = ("pods", f"app.kubernetes.io/name={service}")
            if any(r[0] == mine for r in egress_needs(overlay, caller)):
                needs.add((("pods", f"app.kubernetes.io/name={caller}"), "TCP", http))
    # The public API, and every service with a public address, through the ingress controller.
    if service == "gateway" or any(n.endswith("PUBLIC_URL") for n in environment(overlay, service)):
        needs.add((("namespace", "ingress-nginx"), "TCP", http))
    for exposed in objects(overlay, "Service").values():
        if exposed["spec"].get("type") == "LoadBalancer" and exposed["spec"]["selector"] == {
            "app.kubernetes.io/name": service
        }:
            for port in exposed["spec"]["ports"]:
                target = pod_port(overlay, exposed["metadata"]["name"], port["port"])
                assert target is not None
                needs.add((ANYWHERE, port.get("protocol", "TCP"), target[2]))
    return needs


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_deployment_runs_its_service_hardened(overlay: str, service: str) -> None:
    pod = objects(overlay, "Deployment")[service]["spec"]["template"]["spec"]
    main = container(objects(overlay, "Deployment")[service])
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = main["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["runAsNonRoot"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in security
    writable = {m["mountPath"] for m in main["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp"}
    assert {"cpu", "memory"} <= set(main["resources"]["requests"])
    assert "memory" in main["resources"]["limits"]
    image = main["image"]
    assert "/" in image, f"{image}: from a registry"
    assert ":" in image.rsplit("/", 1)[1], f"{image}: a tag"
    assert not image.endswith(":latest")


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_deployment_checks_liveness_and_readiness_where_the_service_listens(
    overlay: str, service: str
) -> None:
    deployment = objects(overlay, "Deployment")[service]
    main = container(deployment)
    prefix = SERVICES[service].prefix
    assert environment(overlay, service)[f"{prefix}PORT"] == str(http_port(deployment))
    assert main["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    # /readyz waits up to READINESS_TIMEOUT_SECONDS per dependency.
    timeout = SERVICES[service].settings.model_fields["readiness_timeout_seconds"].default
    assert main["readinessProbe"]["timeoutSeconds"] > timeout
    service_object = objects(overlay, "Service")[service]
    assert service_object["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_variable_a_deployment_sets_is_one_its_service_reads(
    overlay: str, service: str
) -> None:
    unread = set(environment(overlay, service)) - settings_names(service) - LIBPQ
    assert unread == set()


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_accepts_the_settings_its_deployment_gives_it(
    overlay: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in settings_names(service):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment(overlay, service).items():
        monkeypatch.setenv(name, "s3cret-" * 8 if value == SECRET else value)
    settings = SERVICES[service].settings()
    assert settings.host == "127.0.0.1", "the image, not the manifest, binds 0.0.0.0"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_may_connect_to_exactly_what_its_settings_name(
    overlay: str, service: str
) -> None:
    policy = objects(overlay, "NetworkPolicy")[service]["spec"]
    assert policy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": service}}
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    assert reaches(policy["egress"], "to") == egress_needs(overlay, service)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(SERVICES))
def test_each_service_is_reachable_by_exactly_those_whose_settings_name_it(
    overlay: str, service: str
) -> None:
    policy = objects(overlay, "NetworkPolicy")[service]["spec"]
    assert reaches(policy["ingress"], "from") == ingress_needs(overlay, service)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_database_admits_the_five_services_and_kafka_those_that_use_it(overlay: str) -> None:
    (postgres,) = objects(overlay, "Cluster")
    policy = objects(overlay, "NetworkPolicy")[postgres]["spec"]
    clients = {(("pods", f"app.kubernetes.io/name={s}"), "TCP", 5432) for s in SERVICES}
    assert clients <= reaches(policy["ingress"], "from")
    (kafka,) = objects(overlay, "Kafka").values()
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    admitted = set().union(*(peers(p) for p in listener["networkPolicyPeers"]))
    assert admitted == {("pods", f"app.kubernetes.io/name={s}") for s in KAFKA_SERVICES}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_emr_peers_reach_the_mllp_listener_from_their_own_address(overlay: str) -> None:
    env = environment(overlay, "emr-bridge")
    mllp = objects(overlay, "Service")["emr-bridge-mllp"]["spec"]
    assert mllp["type"] == "LoadBalancer"
    assert mllp["externalTrafficPolicy"] == "Local", "allowed_addresses sees the peer's address"
    (port,) = mllp["ports"]
    target = pod_port(overlay, "emr-bridge-mllp", port["port"])
    assert target is not None
    assert str(target[2]) == env["EMR_BRIDGE_MLLP_PORT"]
