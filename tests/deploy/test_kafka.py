"""Kafka in deploy/k8s is what the code uses: a KafkaTopic for exactly the topics of
clinic.events, configured as clinic.events configures them, and for each service that uses
Kafka a KafkaUser whose ACLs allow exactly what the service's code reads and writes. The
gateway makes no Kafka client, so it has no KafkaUser, no Kafka login and no Kafka CA. The
patients topic is read by notification and the EMR bridge only (DESIGN section 4)."""

from typing import Any

import pytest
from manifests import (
    KAFKA_SERVICES,
    OVERLAYS,
    SERVICES,
    WITHOUT_KAFKA,
    container,
    environment,
    objects,
    secret_refs,
)

from clinic.availability import consumer as availability_consumer
from clinic.emr_bridge import consumer as emr_bridge_consumer
from clinic.events import payload_types
from clinic.events.topics import ALL_TOPICS, Topic, topic_config
from clinic.notification import consumer as notification_consumer

# What each service consumes: the topics it subscribes its projection to (the `TOPICS` its
# main.py passes to subscribe_projection; its lag monitor and availability's rebuild from the
# topics read the same ones) as the consumer group its settings name.
CONSUMES = {
    "availability": availability_consumer.TOPICS,
    "notification": notification_consumer.TOPICS,
    "emr-bridge": emr_bridge_consumer.TOPICS,
}

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
    # Every Kafka-using service's runtime connects a FastStream broker with an idempotent
    # producer (clinic.platform.kafka.create_broker, KAFKA_ENABLE_IDEMPOTENCE on by default),
    # which asks for a producer id at start-up, publishing or not.
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
    assert "gateway" not in KAFKA_SERVICES, "the gateway calls the others over HTTP only"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("service", sorted(KAFKA_SERVICES))
def test_each_kafka_user_may_do_exactly_what_its_service_does(overlay: str, service: str) -> None:
    user = objects(overlay, "KafkaUser")[service]
    assert granted_acls(user) == expected_acls(overlay, service)


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
@pytest.mark.parametrize("service", sorted(WITHOUT_KAFKA))
def test_a_service_without_kafka_has_no_kafka_login_and_no_kafka_ca(
    overlay: str, service: str
) -> None:
    (kafka,) = objects(overlay, "Kafka").values()
    prefix = kafka["spec"]["entityOperator"]["userOperator"]["secretPrefix"]
    deployment = objects(overlay, "Deployment")[service]
    main = container(deployment)
    env = environment(overlay, service)
    assert "KAFKA_SASL_USERNAME" not in env
    assert "KAFKA_SASL_PASSWORD" not in env
    # The shared ConfigMap's KAFKA_* (protocol, bootstrap) reach it too, unused: it makes no
    # Kafka client, and clinic.platform asks for a login only where a service uses Kafka
    # (KafkaAccess.of).
    kafka_secrets = {
        name
        for name in secret_refs(deployment)
        if name.startswith(prefix) or name == f"{kafka['metadata']['name']}-cluster-ca-cert"
    }
    assert kafka_secrets == set()
    # Nor is anything mounted where the shared ConfigMap's KAFKA_SSL_CAFILE points.
    ca_file = env.get("KAFKA_SSL_CAFILE", "")
    mounts = [m["mountPath"] for m in main["volumeMounts"]]
    assert [m for m in mounts if ca_file.startswith(m.rstrip("/") + "/")] == []
