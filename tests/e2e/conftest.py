"""End-to-end fixtures: the services started as processes, as `make up` does."""

from collections.abc import Callable, Iterator

import httpx
import pytest

from clinic.devstack.components import Infrastructure
from clinic.devstack.stack import Stack
from clinic.devstack.testing import RunningService, stack_env

Clients = tuple[httpx.Client, httpx.Client]


@pytest.fixture
def booking_and_availability(
    start_service: Callable[..., RunningService], schema_name: str
) -> Callable[..., Clients]:
    """Start booking (optionally with the demo group) and availability in its own schema and
    consumer group; returns an HTTP client for each."""

    def start(demo: bool = False) -> Clients:
        booking = start_service(
            "clinic.booking", "BOOKING_", BOOKING_LOAD_DEMO_DATA="true" if demo else "false"
        )
        availability = start_service(
            "clinic.availability",
            "AVAILABILITY_",
            schema=f"{schema_name}_av",
            AVAILABILITY_CONSUMER_GROUP=f"availability-{schema_name}",
            BOOKING_URL=booking.url,
        )
        return (
            httpx.Client(base_url=booking.url, timeout=30),
            httpx.Client(base_url=availability.url, timeout=30),
        )

    return start


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, infrastructure: Infrastructure
) -> Iterator[Stack]:
    """The whole platform as `make up OBS=1` starts it (demo data, sinks, issuer, the trace
    receiver every service exports to), shared by a module's tests, stopped after them."""
    env = stack_env(infrastructure)
    stack = Stack(tmp_path_factory.mktemp("up"), env, observability=True)
    yield stack
    stack.down()
