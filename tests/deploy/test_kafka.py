"""Kafka in deploy/k8s is what the code uses: a KafkaTopic for exactly the topics of
clinic.events, configured as clinic.events configures them, and for each service that uses
Kafka (all five) a KafkaUser whose ACLs allow exactly what the service's code reads and
writes, a login as that user and the cluster CA. The gateway reads one topic for its live
updates, in no consumer group, and may do nothing else. The patients topic is read by
notification and the EMR bridge only (DESIGN section 4)."""

import ast
import os
from typing import Any

import pytest
from manifests import (
    KAFKA_SERVICES,
    OVERLAYS,
    SECRET,
    SERVICES,
    calls_of,
    container,
    environment,
    objects,
    parsed,
)

from clinic.availability import consumer as availability_consumer
from clinic.emr_bridge import consumer as emr_bridge_consumer
from clinic.events import payload_types
from clinic.events.topics import ALL_TOPICS, Topic, topic_config
from clinic.notification import consumer as notification_consumer
from clinic.platform.kafka import KafkaAccess


def topic_written(node: ast.expr) -> str:
    """A topic as the code names it: `str(Topic.X)`, `Topic.X` or a string literal."""
    if isinstance(node, ast.Call) and ast.unparse(node.func) == "str" and len(node.args) == 1:
        node = node.args[0]
    if isinstance(node, ast.Attribute) and ast.unparse(node.value) == Topic.__name__:
        return str(Topic[node.attr])
    value = ast.literal_eval(node)
    assert isinstance(value, str), ast.unparse(node)
    return value


def subscribed_in_no_group(module: str) -> tuple[str, ...]:
    """The topics that `module`'s one Kafka consumer subscribes to, as written there, once it
    is checked to join no consumer group (`group_id=None`: all partitions assigned, nothing
    committed). Such a consumer asks for the topics' metadata and offsets (Describe) and
    fetches their records (Read), and never asks a group coordinator anything."""
    calls = calls_of(parsed(module), "AIOKafkaConsumer")
    assert len(calls) == 1, f"{module}: {len(calls)} Kafka consumers, expected one"
    (call,) = calls
    written = {k.arg: k.value for k in call.keywords if k.arg is not None}
    assert "group_id" in written, f"{module}: the consumer says which group it joins"
    assert ast.literal_eval(written["group_id"]) is None, f"{module}: a consumer in a group"
    assert call.args, f"{module}: the consumer names the topics it subscribes to"
    return tuple(topic_written(arg) for arg in call.args)


# What each service consumes: the topics it subscribes its projection to (the `TOPICS` its
# main.py passes to subscribe_projection; its lag monitor and availability's rebuild from the
# topics read the same ones) as the consumer group its settings name.
CONSUMES = {
    "availability": availability_consumer.TOPICS,
    "notification": notification_consumer.TOPICS,
    "emr-bridge": emr_bridge_consumer.TOPICS,
}

# What a service reads in no consumer group, with a consumer of its own: the gateway's live
# updates (clinic.gateway.live.KafkaReader) read booking's appointment facts from the topic's
# end, for the streams of GET /v1/live.
READS_IN_NO_GROUP = {"gateway": subscribed_in_no_group("clinic.gateway.live")}

# What each service publishes: booking's relay sends every event to the topic its type
# travels on (Envelope.topic(), from the event catalog); no other service publishes.
PUBLISHES = {"booking": sorted({str(model.topic) for model in payload_types().values()})}

Acl = tuple[str, str, str]
"""(resource type, resource name, operation)."""


def expected_acls(overlay: str, service: str) -> set[Acl]:
    acls: set[Acl] = {("topic", t, "Write") for t in PUBLISHES.get(service, [])}
    if service in CONSUMES:
        settings = SERVICES[service]
        group = environment(overlay, service).get(
            f"{settings.prefix}CONSUMER_GROUP",
            settings.settings.model_fields["consumer_group"].default,
        )
        acls |= {("topic", t, "Read") for t in CONSUMES[service]}
        acls.add(("group", group, "Read"))
    # Read includes the Describe that metadata and offset requests need; a consumer in no
    # group needs no group ACL.
    acls |= {("topic", t, "Read") for t in READS_IN_NO_GROUP.get(service, ())}
    # A service whose runtime connects a FastStream broker (all but the gateway) has an
    # idempotent producer (clinic.platform.kafka.create_broker, KAFKA_ENABLE_IDEMPOTENCE on
    # by default), which asks for a producer id at start-up, publishing or not.
    if SERVICES[service].has_broker:
        acls.add(("cluster", "", "IdempotentWrite"))
    return acls


def granted_acls(user: dict[str, Any]) -> set[Acl]:
    granted = set()
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        assert acl.get("type", "allow") == "allow"
        assert acl.get("host", "*") == "*"
        assert resource.get("patternType", "literal") == "literal", "no prefix wildcards"
        for operation in acl["operations"]:
            granted.add((resource["type"], resource.get("name", ""), operation))
    return granted


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_kafka_topics_are_exactly_the_topics_of_clinic_events(overlay: str) -> None:
    topics = objects(overlay, "KafkaTopic").values()
    assert sorted(t["spec"]["topicName"] for t in topics) == sorted(str(t) for t in ALL_TOPICS)
    # Dead letters are parked in each consumer's own `dead_letters` table
    # (clinic.platform.consumer), never on a topic: no deadletter.* topic exists to create.


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_topic_is_configured_as_clinic_events_configures_it(overlay: str) -> None:
    for topic in objects(overlay, "KafkaTopic").values():
        spec = topic["spec"]
        config = {key: str(value) for key, value in spec["config"].items()}
        assert config == topic_config(spec["topicName"], spec["replicas"]), spec["topicName"]
        assert config["retention.ms"] == "-1", "event topics keep every record"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_topic_asks_for_more_replicas_than_there_are_brokers(overlay: str) -> None:
    brokers = sum(
        pool["spec"]["replicas"]
        for pool in objects(overlay, "KafkaNodePool").values()
        if "broker" in pool["spec"]["roles"]
    )
    for topic in objects(overlay, "KafkaTopic").values():
        assert topic["spec"]["replicas"] <= brokers
    (kafka,) = objects(overlay, "Kafka").values()
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] <= brokers
    assert config["offsets.topic.replication.factor"] <= brokers


def test_production_keeps_three_copies_and_acknowledges_writes_once_two_have_them() -> None:
    brokers = [p["spec"]["replicas"] for p in objects("prod", "KafkaNodePool").values()]
    assert sum(brokers) >= 3
    for topic in objects("prod", "KafkaTopic").values():
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == "2"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_exactly_the_services_that_use_kafka_have_a_kafka_user(overlay: str) -> None:
    assert sorted(objects(overlay, "KafkaUser")) == sorted(KAFKA_SERVICES)
    assert "gateway" in KAFKA_SERVICES, "the gateway's live updates read booking's appointments"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(KAFKA_SERVICES))
def test_each_kafka_user_may_do_exactly_what_its_service_does(overlay: str, service: str) -> None:
    user = objects(overlay, "KafkaUser")[service]
    assert granted_acls(user) == expected_acls(overlay, service)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_may_only_read_the_appointments_topic_and_in_no_group(overlay: str) -> None:
    assert READS_IN_NO_GROUP["gateway"] == (str(Topic.APPOINTMENTS),)
    assert "gateway" not in CONSUMES, "no consumer group: nothing to commit, no group ACL"
    assert not SERVICES["gateway"].has_broker, "no broker: no producer, no IdempotentWrite"
    user = objects(overlay, "KafkaUser")["gateway"]
    assert granted_acls(user) == {("topic", str(Topic.APPOINTMENTS), "Read")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_notification_and_the_emr_bridge_may_read_the_patients_topic(overlay: str) -> None:
    readers = {
        name
        for name, user in objects(overlay, "KafkaUser").items()
        if ("topic", str(Topic.PATIENTS), "Read") in granted_acls(user)
    }
    assert readers == {"notification", "emr-bridge"}
    subscribers = {name for name, topics in CONSUMES.items() if str(Topic.PATIENTS) in topics}
    assert subscribers == readers, "a new reader of personal data needs a decision, not an ACL"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_logs_in_to_kafka_as_its_own_user_over_tls(overlay: str) -> None:
    (kafka,) = objects(overlay, "Kafka").values()
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True
    assert listener["authentication"]["type"] == "scram-sha-512"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"
    prefix = kafka["spec"]["entityOperator"]["userOperator"]["secretPrefix"]
    for name, user in objects(overlay, "KafkaUser").items():
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        env = environment(overlay, name)
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == bootstrap
        assert env["KAFKA_SASL_USERNAME"] == name
        deployment = objects(overlay, "Deployment")[name]
        (password,) = (
            v["valueFrom"]["secretKeyRef"]
            for v in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            if v["name"] == "KAFKA_SASL_PASSWORD"
        )
        assert password == {"name": f"{prefix}{name}", "key": "password"}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(KAFKA_SERVICES))
def test_each_service_that_uses_kafka_trusts_the_brokers_by_the_cluster_ca_alone(
    overlay: str, service: str
) -> None:
    (kafka,) = objects(overlay, "Kafka").values()
    deployment = objects(overlay, "Deployment")[service]
    ca_file = environment(overlay, service)["KAFKA_SSL_CAFILE"]
    mounts = [
        m
        for m in container(deployment)["volumeMounts"]
        if ca_file.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    assert len(mounts) == 1, f"{ca_file}: mounted once"
    (mount,) = mounts
    assert mount.get("readOnly") is True
    (volume,) = (
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )
    # Only the CA's certificate, never its key (Strimzi's cluster CA key is another Secret).
    assert volume["secret"] == {
        "secretName": f"{kafka['metadata']['name']}-cluster-ca-cert",
        "items": [
            {"key": "ca.crt", "path": ca_file.removeprefix(mount["mountPath"].rstrip("/") + "/")}
        ],
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(KAFKA_SERVICES))
def test_each_service_that_uses_kafka_makes_its_kafka_login_from_what_its_deployment_gives_it(
    overlay: str, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = ("KAFKA_", SERVICES[service].prefix or "KAFKA_")
    for name in list(os.environ):
        if name.startswith(own):
            monkeypatch.delenv(name)
    env = environment(overlay, service)
    for name, value in env.items():
        monkeypatch.setenv(name, "s3cret-" * 8 if value == SECRET else value)
    # What every Kafka client the service makes is made with; it refuses SASL without a
    # login, which is how a service missing its KafkaUser would fail to start.
    access = KafkaAccess.of(SERVICES[service].settings())
    assert access.security_protocol == "SASL_SSL"
    assert access.tls
    assert access.username == service
    assert access.password == "s3cret-" * 8
    assert access.cafile == env["KAFKA_SSL_CAFILE"]
