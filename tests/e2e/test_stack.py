"""`make up` and `make down` as a newcomer runs them: every service ready, then nothing left."""

import asyncio
import datetime as dt
import os
import time
from pathlib import Path

import httpx
import pytest

from clinic.devstack.components import Infrastructure, free_port, pid_alive, port_open
from clinic.devstack.infra import Ladder
from clinic.devstack.stack import SERVICES, Stack, StackError
from clinic.devstack.testing import command, read_topics, stack_env
from clinic.events import Topic


def test_up_makes_every_service_ready_and_down_leaves_no_process_or_port(stack: Stack) -> None:
    _, services = stack.up(timeout=90)
    for service in services.values():
        response = httpx.get(f"{service.url}/readyz", timeout=5)
        assert response.status_code == 200, (service.name, response.text)

    # A second `up` finds the running platform and starts nothing new.
    _, again = stack.up(timeout=30)
    assert {n: s.pid for n, s in again.items()} == {n: s.pid for n, s in services.items()}

    stack.down()
    for service in services.values():
        assert not pid_alive(service.pid), service.name
        assert not port_open("127.0.0.1", service.port), service.name
    mllp = services["emr-bridge"].mllp_port
    assert mllp is not None
    assert not port_open("127.0.0.1", mllp)  # the bridge's HL7 listener went with it
    assert not (stack.state_dir / "services.json").exists()


def test_up_names_the_component_that_cannot_become_ready(
    tmp_path: Path, infrastructure: Infrastructure
) -> None:
    # Each service is given a database that answers nothing (the ladder's own address
    # stays good, so the services themselves must say what they lack).
    dead_database = f"postgresql://clinic@127.0.0.1:{free_port()}/clinic"
    dead = {f"{s.env_prefix}DATABASE_URL": dead_database for s in SERVICES}
    stack = Stack(tmp_path / "bad", stack_env(infrastructure, **dead))
    try:
        # Long enough for five services to start on a slow 2-CPU machine (about 8 s on one)
        # and answer /readyz with their own reason, rather than not answering yet.
        with pytest.raises(StackError) as failure:
            stack.up(timeout=30)
        assert set(failure.value.failures) == {s.name for s in SERVICES}
        reasons = failure.value.failures
        assert all("database" in reason for reason in reasons.values()), reasons
    finally:
        stack.down()


@pytest.mark.parametrize(
    ("variable", "component", "words"),
    [
        ("DATABASE_URL", "postgres", "does not answer"),
        ("KAFKA_BOOTSTRAP_SERVERS", "kafka", "answers no metadata request"),
    ],
)
def test_up_names_an_address_in_the_environment_that_answers_nothing_without_hanging(
    tmp_path: Path, infrastructure: Infrastructure, variable: str, component: str, words: str
) -> None:
    nothing = f"127.0.0.1:{free_port()}"
    address = f"postgresql://clinic@{nothing}/clinic" if component == "postgres" else nothing
    stack = Stack(tmp_path / "bad", stack_env(infrastructure, **{variable: address}))
    started = time.monotonic()
    try:
        with pytest.raises(StackError) as failure:
            stack.up(timeout=30)
    finally:
        stack.down()
    assert time.monotonic() - started < 30
    assert set(failure.value.failures) == {component}
    assert words in failure.value.failures[component]
    assert address in failure.value.failures[component]


def test_down_then_up_brings_back_every_appointment_topic_and_projection(tmp_path: Path) -> None:
    # The stack's own PostgreSQL and Kafka (not the test session's), so that down and up
    # stop and start them on their data under the state directory, as `make up` does.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_PORT", "_URL")) and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env.update({f"{s.env_prefix}PORT": str(free_port()) for s in SERVICES})
    stack = Stack(tmp_path / "up", env)
    try:
        # 1. make up; book the first free slot search offers.
        infra, services = stack.up(timeout=120)
        assert infra.kafka.keeps_data, infra.describe()
        b = httpx.Client(base_url=services["booking"].url, timeout=30)
        a = httpx.Client(base_url=services["availability"].url, timeout=30)
        demo = b.get("/demo").json()
        org, location = demo["organization_id"], demo["locations"]["Berlin Mitte"]
        kind = demo["appointment_types"]["General consultation"]
        day = dt.date.today() + dt.timedelta(days=9)
        day = (
            day + dt.timedelta(days=max(0, 7 - day.weekday()) % 7 if day.weekday() >= 5 else 0)
        ).isoformat()
        query = {"appointment_type_id": kind, "location_id": location, "from": day, "to": day}

        def offered(start: str, physician: str) -> bool:
            """Whether search offers ``start`` with ``physician``."""
            slots = a.get(f"/organizations/{org}/slots", params=query).json()["slots"]
            return any(
                s["start"] == start and s["resources"]["physician"] == physician for s in slots
            )

        deadline = time.monotonic() + 60
        while not (found := a.get(f"/organizations/{org}/slots", params=query).json()).get("slots"):
            assert time.monotonic() < deadline, f"the demo group never reached search: {found}"
            time.sleep(0.2)
        start, physician = found["slots"][0]["start"], found["slots"][0]["resources"]["physician"]
        appointment = command(
            b,
            f"/organizations/{org}/appointments",
            {
                "appointment_type_id": kind,
                "location_id": location,
                "patient_id": demo["patients"][0],
                "start": start,
                "preferred_resources": {"physician": physician},
            },
        )
        deadline = time.monotonic() + 30
        while offered(start, physician):
            assert time.monotonic() < deadline, "the booking never reached search"
            time.sleep(0.1)
        before = b.get(f"/organizations/{org}/appointments/{appointment['id']}").json()

        # 2. make down: nothing left running.
        stack.down()
        assert not pid_alive(infra.kafka.pid)
        assert not pid_alive(infra.postgres.pid)

        # 3. make up again: the appointment, its events on the topic and the projection.
        infra, services = stack.up(timeout=120)
        b = httpx.Client(base_url=services["booking"].url, timeout=30)
        a = httpx.Client(base_url=services["availability"].url, timeout=30)
        assert b.get(f"/organizations/{org}/appointments/{appointment['id']}").json() == before
        assert b.get("/demo").json()["organization_id"] == org  # no second demo group
        assert not offered(start, physician)
        records = asyncio.run(
            read_topics(
                infra.kafka_bootstrap_servers,
                [str(Topic.APPOINTMENTS)],
                lambda rs: any(appointment["id"].encode() in r.value for r in rs),
                within=30,
            )
        )
        assert any(appointment["id"].encode() in r.value for r in records)
    finally:
        stack.down()
        Ladder(tmp_path / "up" / "infra").down(purge=True)
