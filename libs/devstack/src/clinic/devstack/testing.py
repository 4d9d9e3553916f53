"""Pytest fixtures shared by every package's tests (loaded by the root conftest.py).

Integration tests ask for ``infrastructure``: the first one starts PostgreSQL and Kafka
through the same ladder ``make up`` uses (state under ``.local/test``), and the session stops
them at the end, whatever the outcome. Each test then works in a schema of its own, so tests
never see each other's rows.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from clinic.devstack.components import Infrastructure, Source, free_port, stop_pid, tail
from clinic.devstack.infra import Ladder
from clinic.devstack.stack import readiness
from clinic.platform.settings import ServiceSettings

if TYPE_CHECKING:
    import httpx

S = TypeVar("S", bound=ServiceSettings)

REPO_ROOT = Path(__file__).resolve().parents[5]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder: ``integration/``, ``e2e/`` and ``browser/`` need the real
    infrastructure, ``tests/contract`` checks contracts."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts or "e2e" in parts or "browser" in parts:
            item.add_marker(pytest.mark.integration)
        if "contract" in parts:
            item.add_marker(pytest.mark.contract)


_used: list[str] = []
_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add each phase's time to its folder (``services/booking/tests/integration``...)."""
    folder = str(Path(report.nodeid.split("::")[0]).parent)
    _seconds[folder] = _seconds.get(folder, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say where the suite's time went, by folder, and which PostgreSQL and Kafka the
    integration tests ran on (before the counts)."""
    if sum(_seconds.values()) > 60:
        terminalreporter.section("time by folder")
        for folder, seconds in sorted(_seconds.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{seconds:8.1f}s  {folder}")
    for line in _used:
        terminalreporter.write_line(f"infrastructure: {line}")


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    state = Path(os.environ.get("CLINIC_TEST_STATE_DIR", REPO_ROOT / ".local" / "test"))
    ladder = Ladder(state / "infra")
    infra = ladder.up()
    _used.extend(
        [
            f"postgres: {infra.postgres.flavor or '?'} ({infra.postgres.source})",
            f"kafka: {infra.kafka.flavor or '?'} ({infra.kafka.source})",
        ]
    )
    try:
        yield infra
    finally:
        if infra.postgres.source != Source.ENVIRONMENT or infra.kafka.source != Source.ENVIRONMENT:
            ladder.down(purge=True)


@pytest.fixture
def schema_name() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings_for(infrastructure: Infrastructure, schema_name: str) -> Callable[..., Any]:
    """Build a service's settings pointed at the test infrastructure, in a fresh schema."""

    def build(settings_cls: type[S], **overrides: Any) -> S:
        values: dict[str, Any] = {
            "database_url": infrastructure.database_url,
            "database_schema": schema_name,
            "kafka_bootstrap_servers": infrastructure.kafka_bootstrap_servers,
            "kafka_enable_idempotence": infrastructure.kafka.supports_idempotence,
            "kafka_broker_keeps_data": infrastructure.kafka.keeps_data,
            "kafka_partitions": 3,
        }
        values.update(overrides)
        return settings_cls(**values)

    return build


class RunningService:
    """A service started as its own process on 127.0.0.1, as ``make up`` starts it."""

    def __init__(
        self, module: str, env: dict[str, str], prefix: str, port: int | None = None
    ) -> None:
        self.module = module
        self.port = port or free_port()
        self.env = {
            **os.environ,
            **env,
            f"{prefix}HOST": "127.0.0.1",
            f"{prefix}PORT": str(self.port),
        }
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        # Kept open for the child process to write to; removed by the OS temp cleanup.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=f"{module}-", suffix=".log", delete=False
        )

    def start(self, timeout: float = 60.0) -> RunningService:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        reason = "not started"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.module} exited: {tail(self.log.name)}")
            ready, reason = readiness(self.url)
            if ready:
                return self
            time.sleep(0.2)
        self.stop(keep_log=True)
        raise RuntimeError(
            f"{self.module} not ready in {timeout}s: {reason}\n{tail(self.log.name)}"
        )

    def stop(self, keep_log: bool = False) -> None:
        """Stop the process by pid; its log goes too unless asked to keep it."""
        if self.process is not None:
            stop_pid(self.process.pid)
            self.process = None
        self.log.close()
        if not keep_log:
            Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture
def start_service(
    infrastructure: Infrastructure, schema_name: str
) -> Iterator[Callable[..., RunningService]]:
    """Start services as processes against the test infrastructure; all stopped at the end."""
    started: list[RunningService] = []

    def start(
        module: str, prefix: str, schema: str | None = None, port: int | None = None, **env: str
    ) -> RunningService:
        values = {
            **infrastructure.environment(),
            f"{prefix}DATABASE_SCHEMA": schema or schema_name,
            **env,
        }
        service = RunningService(module, values, prefix, port)
        started.append(service)
        return service.start()

    yield start
    keep = os.environ.get("CLINIC_KEEP_SERVICE_LOGS") == "1"  # for a failure's post-mortem
    for service in started:
        service.stop(keep_log=keep)
        if keep:
            print(f"log of {service.module}: {service.log.name}")


async def read_topics(
    bootstrap_servers: str,
    topics: list[str],
    done: Callable[[list[Any]], bool],
    within: float = 60.0,
) -> list[Any]:
    """Every record of ``topics`` from the beginning, until ``done(records)`` is true."""
    import asyncio

    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        assigned: set[TopicPartition] = set()
        looked = -1.0
        while not done(records):
            if loop.time() > deadline:
                if not assigned:
                    raise TimeoutError(f"none of {topics} exists after {within}s")
                raise TimeoutError(f"only {len(records)} records arrived in {within}s")
            # Topics may appear while we read (a broker that restarted empty gets them back
            # one by one): look for new partitions every second and read them from the start.
            if loop.time() - looked > 1.0:
                looked = loop.time()
                await consumer._client.force_metadata_update()
                found = {
                    TopicPartition(topic, p)
                    for topic in topics
                    for p in consumer.partitions_for_topic(topic) or ()
                }
                if found - assigned:
                    kept = {tp: await consumer.position(tp) for tp in assigned}
                    consumer.assign(sorted(found | assigned))
                    for tp, position in kept.items():
                        consumer.seek(tp, position)
                    await consumer.seek_to_beginning(*(found - assigned))
                    assigned |= found
            if not assigned:
                await asyncio.sleep(0.2)
                continue
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                records.extend(messages)
    finally:
        await consumer.stop()
    return records


def command(http: Any, path: str, body: dict[str, Any], method: str = "POST") -> dict[str, Any]:
    """Send a command with a fresh Idempotency-Key and return its JSON answer; any status but
    200 or 201 fails the test with the problem the service sent."""
    response = http.request(method, path, json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def interleave(events: list[Any], seed: int) -> list[Any]:
    """Envelopes in a random order that keeps each aggregate's own events in order (Kafka's
    guarantee, per partition key): what a projection may see across its topics."""
    import random

    queues: dict[Any, list[Any]] = {}
    for event in events:
        queues.setdefault(event.aggregate_id, []).append(event)
    rng = random.Random(seed)
    out = []
    while queues:
        key = rng.choice(sorted(queues, key=str))
        out.append(queues[key].pop(0))
        if not queues[key]:
            del queues[key]
    return out


# -- a clinic set up through booking's API, for the services' process-level tests -------------

STAFF = {"X-Actor-Id": "desk-1", "X-Actor-Role": "front_desk", "X-Actor-Channel": "front-desk"}


@dataclass(frozen=True)
class ClinicIds:
    org: str
    location: str
    doctor: str
    kind: str

    @property
    def base(self) -> str:
        return f"/organizations/{self.org}"


def open_clinic(
    b: httpx.Client,
    name: str,
    *,
    address: dict[str, str] | None = None,
    minutes: int = 30,
    reminder_plan: list[dict[str, Any]] | None = None,
) -> ClinicIds:
    """An organisation with one location in Berlin, a doctor working every hour of every
    day there, and a check-up of ``minutes`` with the doctor."""
    org = command(b, "/organizations", {"name": name})["id"]
    base = f"/organizations/{org}"
    place = {"name": name.split()[-1], "time_zone": "Europe/Berlin", "address": address or {}}
    location = command(b, f"{base}/locations", place)["id"]
    doctor = command(
        b,
        f"{base}/resources",
        {"category": "provider", "name": "Dr. A", "kind": "physician", "location_ids": [location]},
    )["id"]
    hours = [
        {"location_id": location, "weekday": d, "start": "00:00", "end": "23:59"} for d in range(7)
    ]
    command(b, f"{base}/resources/{doctor}/schedule/weekly-hours", {"hours": hours}, "PUT")
    step = {
        "name": "visit",
        "duration_minutes": minutes,
        "requirements": [{"role": "physician", "category": "provider"}],
    }
    body: dict[str, Any] = {"name": "Check-up", "steps": [step]}
    if reminder_plan is not None:
        body["reminder_plan"] = reminder_plan
    kind = command(b, f"{base}/appointment-types", body)["id"]
    return ClinicIds(org, location, doctor, kind)


def days_ahead(days: int, hour: int = 9) -> dt.datetime:
    """``days`` days from today at ``hour``:00 UTC: a time far from midnight in Berlin (where
    the tests' clinics work until 23:59), so a test booking a row of visits from it passes
    at whatever hour it runs."""
    today = dt.datetime.now(dt.UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today + dt.timedelta(days=days)


NO_QUIET_HOURS = {
    "NOTIFICATION_QUIET_HOURS_START": "00:00",
    "NOTIFICATION_QUIET_HOURS_END": "00:00",
}


def stack_env(infrastructure: Infrastructure, **extra: str) -> dict[str, str]:
    """The environment `make up` would see, on the test infrastructure and free ports (for a
    ``clinic.devstack.stack.Stack`` started by a test), without quiet hours: a test runs at
    any hour, and a confirmation booked at night in Berlin would wait for the morning (quiet
    hours have tests of their own in notification, on a clock the test sets)."""
    from clinic.devstack.stack import SERVICES

    env = {k: v for k, v in os.environ.items() if not k.endswith(("_PORT", "_URL"))}
    env.update(infrastructure.environment())
    env.update({f"{s.env_prefix}PORT": str(free_port()) for s in SERVICES})
    env.update(NO_QUIET_HOURS)
    env.update(extra)
    return env


def caught_up(url: str) -> bool:
    """Whether the service's consumer group has consumed everything on the broker (its
    ``kafka_consumer_lag_messages`` on /metrics are all 0, and there is at least one)."""
    import httpx

    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
    except httpx.HTTPError:
        return False
    lags = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("kafka_consumer_lag_messages{")
    ]
    return bool(lags) and not any(lags)


def wait_caught_up(url: str, within: float = 600.0) -> None:
    """Wait until the service has caught up with the broker (benchmarks measure a service
    at work, not one replaying what earlier runs left on the topics)."""
    deadline = time.monotonic() + within
    while not caught_up(url):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not catch up with the broker within {within}s")
        time.sleep(1)
