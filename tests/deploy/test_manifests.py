"""deploy/k8s builds, and everything it builds is valid: Kubernetes objects against the
Kubernetes schemas (strict: an unknown field fails), Strimzi and CloudNativePG resources
against the operators' own models plus a check for fields those models do not declare. No
Secret is committed: the manifests only name the Secrets they read."""

import copy
import json
import re
import subprocess
from typing import Any

import kubernetes_validate
import pytest
from manifests import (
    K8S,
    KAFKA_SERVICES,
    KUBERNETES_VERSION,
    OVERLAYS,
    SERVICES,
    VALIDATE_CRDS,
    build,
    is_operator_resource,
    objects,
    require_tools,
    secret_refs,
)


def check_operator_resources(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    require_tools()
    done = subprocess.run(
        ["node", str(VALIDATE_CRDS)],
        input=json.dumps(resources),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_builds_the_whole_platform(overlay: str) -> None:
    kinds = {o["kind"] for o in build(overlay)}
    assert {"Namespace", "Kafka", "KafkaNodePool", "Cluster"} <= kinds
    assert set(objects(overlay, "Deployment")) == set(SERVICES)
    assert set(objects(overlay, "KafkaUser")) == set(KAFKA_SERVICES)
    namespaces = {
        o["metadata"].get("namespace") for o in build(overlay) if o["kind"] != "Namespace"
    }
    assert namespaces == set(objects(overlay, "Namespace")), "one namespace holds everything"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_kubernetes_object_is_valid_against_the_kubernetes_schemas(overlay: str) -> None:
    errors = []
    for obj in build(overlay):
        if is_operator_resource(obj):
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {error.message}")
    assert errors == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_strimzi_and_cloudnativepg_resource_uses_only_real_fields(overlay: str) -> None:
    resources = [o for o in build(overlay) if is_operator_resource(o)]
    assert {o["apiVersion"] for o in resources} == {"kafka.strimzi.io/v1", "postgresql.cnpg.io/v1"}
    problems = [r for r in check_operator_resources(resources) if r["errors"] or r["unknownFields"]]
    assert problems == []


def test_the_operator_resource_check_finds_a_misspelt_field_and_a_wrong_value() -> None:
    user = copy.deepcopy(objects("prod", "KafkaUser")["notification"])
    user["spec"]["authorization"]["acls"][0]["resource"]["nmae"] = "booking.patients.v1"
    cluster = copy.deepcopy(next(iter(objects("prod", "Cluster").values())))
    cluster["spec"]["instances"] = "three"
    user_result, cluster_result = check_operator_resources([user, cluster])
    assert user_result["unknownFields"] == ["/spec/authorization/acls/0/resource/nmae"]
    assert cluster_result["errors"] != []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_committed_only_named(overlay: str) -> None:
    assert objects(overlay, "Secret") == {}
    for kustomization in K8S.rglob("kustomization.yaml"):
        assert "secretGenerator" not in kustomization.read_text(), kustomization
    for manifest in K8S.rglob("*.yaml"):
        assert not re.search(r"^kind:\s*Secret\s*$", manifest.read_text(), re.M), manifest


# Secrets the operators make: each KafkaUser's credentials (the User Operator, with the
# Kafka's secretPrefix), the Kafka cluster CA's certificate (Strimzi) and the PostgreSQL
# cluster's CA (CloudNativePG).
def operator_made_secrets(overlay: str) -> set[str]:
    (kafka,) = objects(overlay, "Kafka").values()
    prefix = kafka["spec"]["entityOperator"]["userOperator"]["secretPrefix"]
    made = {f"{prefix}{name}" for name in objects(overlay, "KafkaUser")}
    made |= {f"{name}-cluster-ca-cert" for name in objects(overlay, "Kafka")}
    made |= {f"{name}-ca" for name in objects(overlay, "Cluster")}
    return made


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_read_is_made_by_an_operator_or_explained_in_the_runbook(overlay: str) -> None:
    runbook = (K8S / "README.md").read_text()
    read = set()
    for deployment in objects(overlay, "Deployment").values():
        read |= set(secret_refs(deployment))
    for cluster in objects(overlay, "Cluster").values():
        read |= {r["passwordSecret"]["name"] for r in cluster["spec"]["managed"]["roles"]}
    by_hand = read - operator_made_secrets(overlay)
    unexplained = sorted(s for s in by_hand if f"`{s}`" not in runbook)
    assert unexplained == [], "deploy/k8s/README.md must say how these are made"
