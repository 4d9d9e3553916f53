"""The observability tests' platform: started once for the package as `make up` starts it
(one platform for every test here), put under a short load through the gateway
(``platform_load``), scraped by a local Prometheus (``clinic.devstack.prometheus``) loaded
with the repository's alert rules. The tests import ``monitoring_queries`` and
``platform_load`` from this folder."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clinic.devstack.components import Infrastructure
from clinic.devstack.mllp_peer import Peer
from clinic.devstack.prometheus import LocalPrometheus, RunningPrometheus
from clinic.devstack.stack import Stack
from clinic.devstack.testing import stack_env

sys.path.insert(0, str(Path(__file__).parent))

from monitoring_queries import Exposition, parse_exposition
from platform_load import Load, Platform, drive_load, wait_for_scrapes


@pytest.fixture(scope="package")
def platform(
    tmp_path_factory: pytest.TempPathFactory, infrastructure: Infrastructure
) -> Iterator[Platform]:
    """The whole platform, once for these tests. KPI gauges every 5 s, so the load shows in
    them before the tests read them."""
    env = stack_env(infrastructure, AVAILABILITY_KPI_GAUGE_SECONDS="5")
    stack = Stack(tmp_path_factory.mktemp("observability") / "up", env)
    try:
        _, services = stack.up(timeout=180)
        yield Platform(stack, services)
    finally:
        stack.down()


@pytest.fixture(scope="package")
def emr_listener() -> Iterator[Peer]:
    with Peer() as listener:
        yield listener


@pytest.fixture(scope="package")
def prometheus(
    platform: Platform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPrometheus]:
    """Prometheus scraping every service of the platform every 5 s, with the alert rules."""
    with LocalPrometheus(tmp_path_factory.mktemp("prometheus"), platform.scraped) as running:
        yield running


@pytest.fixture(scope="package")
def load(platform: Platform, prometheus: RunningPrometheus, emr_listener: Peer) -> Load:
    """The load, twice: the first run makes every series it touches (a labelled counter
    appears with its first event, and ``rate()`` counts nothing across its appearance),
    Prometheus scrapes them, then the second run increments them and Prometheus scrapes
    twice more, so every ``rate()`` over the window sees it."""
    drive_load(platform, emr_listener)
    wait_for_scrapes(prometheus, after=time.time(), scrapes=1)
    done = drive_load(platform, emr_listener)
    wait_for_scrapes(prometheus, after=done.ended, scrapes=2)
    return done


@pytest.fixture(scope="package")
def exported(platform: Platform, load: Load) -> dict[str, Exposition]:
    """What each service's ``/metrics`` exports after the load."""
    return {
        name: parse_exposition(httpx.get(f"{url}/metrics", timeout=30).text)
        for name, url in platform.scraped.items()
    }
