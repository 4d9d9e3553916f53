"""PostgreSQL in deploy/k8s: each service logs in as its own role to its own database (DESIGN
section 2: no shared databases), production loses no commit when an instance fails, and the
services' pools fit in the server's connections at their largest scale."""

import pytest
from manifests import OVERLAYS, SECRET, SERVICES, container, database_url, environment, objects

# Connections a replica opens besides its pools: the platform's migrations, readiness check
# and LISTEN connections (clinic.platform.database), and booking's relay leader lock and
# outbox LISTEN (clinic.booking.relay, clinic.booking.outbox), with room to spare.
DEDICATED_CONNECTIONS = 5
# What PostgreSQL keeps for itself and CloudNativePG: superuser_reserved_connections (3), the
# standbys' replication and the operator's checks.
RESERVED_CONNECTIONS = 20


def connections_per_replica(overlay: str, service: str) -> int:
    settings = SERVICES[service].settings.model_fields
    env = environment(overlay, service)
    prefix = SERVICES[service].prefix

    def setting(name: str) -> int:
        return int(env.get(f"{prefix}{name.upper()}", settings[name].default))

    pools = setting("database_pool_size")
    if "event_store_pool_size" in settings:
        pools += 2 * setting("event_store_pool_size")  # booking's event store: pool + overflow
    return pools + DEDICATED_CONNECTIONS


def largest_scale(overlay: str, service: str) -> int:
    autoscaler = objects(overlay, "HorizontalPodAutoscaler").get(service)
    if autoscaler is not None:
        return int(autoscaler["spec"]["maxReplicas"])
    return int(objects(overlay, "Deployment")[service]["spec"].get("replicas", 1))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_logs_in_as_its_own_role_to_its_own_database(overlay: str) -> None:
    (cluster,) = objects(overlay, "Cluster").values()
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d["spec"] for d in objects(overlay, "Database").values()}
    logins = {}
    for service in SERVICES:
        url = database_url(overlay, service)
        user, database = str(url.username), url.path.lstrip("/")
        logins[service] = user
        assert url.password == SECRET
        assert databases[database]["owner"] == user
        assert databases[database]["cluster"] == {"name": cluster["metadata"]["name"]}
        role = roles[user]
        assert role["login"] is True
        for power in ("superuser", "createdb", "createrole", "replication", "bypassrls"):
            assert not role.get(power), f"{user} needs no {power}"
        (password,) = (
            v["valueFrom"]["secretKeyRef"]
            for v in container(objects(overlay, "Deployment")[service])["env"]
            if v["name"] == "PGPASSWORD"
        )
        assert password == {"name": role["passwordSecret"]["name"], "key": "password"}
    assert len(set(logins.values())) == len(SERVICES), "no two services share a role"
    assert set(roles) == set(logins.values())
    assert set(databases) == {database_url(overlay, s).path.lstrip("/") for s in SERVICES}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deleting_a_database_resource_never_drops_the_database(overlay: str) -> None:
    for database in objects(overlay, "Database").values():
        assert database["spec"]["databaseReclaimPolicy"] == "retain"


def test_production_postgres_survives_an_instance_without_losing_a_commit() -> None:
    (cluster,) = objects("prod", "Cluster").values()
    spec = cluster["spec"]
    assert spec["instances"] >= 3
    synchronous = spec["postgresql"]["synchronous"]
    assert synchronous["number"] >= 1
    assert synchronous["dataDurability"] == "required"


def test_dev_postgres_waits_for_no_standby_it_does_not_have() -> None:
    (cluster,) = objects("dev", "Cluster").values()
    assert cluster["spec"]["instances"] == 1
    assert "synchronous" not in cluster["spec"]["postgresql"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pool_fits_in_postgres_at_the_largest_scale(overlay: str) -> None:
    (cluster,) = objects(overlay, "Cluster").values()
    available = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    wanted = {s: largest_scale(overlay, s) * connections_per_replica(overlay, s) for s in SERVICES}
    assert sum(wanted.values()) <= available - RESERVED_CONNECTIONS, wanted
