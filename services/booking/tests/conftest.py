"""Booking test fixtures.

``app`` is the Bookings application with a controllable clock, on two event stores: the
in-memory one, and PostgreSQL (marked ``integration``), so every rule scenario runs against
both without a line of difference.
"""

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from scenario import MONDAY, Clinic, Clock, at, build_clinic, postgres_env

from clinic.booking.application import Bookings


@pytest.fixture
def clock() -> Clock:
    return Clock(at(MONDAY, 7) - dt.timedelta(days=7))


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.integration)])
def app(request: pytest.FixtureRequest, clock: Clock, schema_name: str) -> Iterator[Bookings]:
    if request.param == "memory":
        env = {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    else:
        env = postgres_env(request, schema_name)
    bookings = Bookings(env=env, clock=clock)
    yield bookings
    bookings.close()


@pytest.fixture
def clinic(app: Bookings, clock: Clock) -> Clinic:
    return build_clinic(app, clock)
